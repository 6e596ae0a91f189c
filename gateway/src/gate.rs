//! What `begin_session` answers when the session names its `task`: the project's instructions
//! plus the project prompts most relevant to that task — ranked locally (BM25 over names,
//! descriptions and contents, `schema::rank`) or chosen by the `Llm` the project names in
//! `spec.gate.llm`, falling back to the local ranking when that `Llm` fails.
//!
//! # Limits
//! A task is read up to [`MAX_TASK_CHARS`] characters. At most `spec.gate.maxPrompts` prompts
//! (default [`schema::spec::GateSpec::DEFAULT_MAX_PROMPTS`]) are returned. The `Llm` has
//! [`LLM_TIMEOUT`] for its whole answer and sees each prompt as its name, description and the
//! first [`EXCERPT_CHARS`] characters of its content.
//!
//! # Guarantees
//! Without a task the answer is the instructions alone, as before. The `Llm` can only choose
//! among the project's prompts: names it invents are dropped, and an answer naming none counts as
//! a failure (BM25 then chooses). The audit event of the call names the method and the prompts
//! ([`Selection::detail`]).

use std::future::Future;
use std::time::Duration;

use schema::spec::{PromptSpec, Sampling};

use crate::catalog::{Catalog, ProjectView};
use crate::chat::provider::{Llm, LlmError, Request, Role, Turn};

/// Characters of a task that are read; the rest is ignored.
pub const MAX_TASK_CHARS: usize = 2000;
/// Time the gate `Llm` has for its whole answer.
pub const LLM_TIMEOUT: Duration = Duration::from_secs(30);
/// Characters of each prompt's content shown to the gate `Llm`.
pub const EXCERPT_CHARS: usize = 300;

/// How the prompts were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Bm25,
    Llm,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Bm25 => "bm25",
            Method::Llm => "llm",
        }
    }
}

/// The prompts chosen for a task, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub prompts: Vec<String>,
    pub method: Method,
    /// Why the `Llm` was not used although the project names one.
    pub fallback: Option<String>,
}

impl Selection {
    /// One line for the audit log: `bm25: a, b`, `llm: a`, `bm25 (llm failed): a`.
    pub fn detail(&self) -> String {
        let method = if self.fallback.is_some() { format!("{} (llm failed)", self.method.as_str()) } else { self.method.as_str().into() };
        let names = if self.prompts.is_empty() { "(none)".to_string() } else { self.prompts.join(", ") };
        format!("{method}: {names}")
    }
}

/// Why the gate `Llm` chose nothing.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("the gate Llm cannot be used: {0}")]
    Setup(String),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("the gate Llm gave no answer within {0:?}")]
    Timeout(Duration),
    #[error("the gate Llm's answer names no prompt of the project: {0}")]
    Answer(String),
}

/// Something that picks prompts for a task: the seam between the selection and the model.
pub trait Chooser {
    /// Names among `candidates` relevant to `task`, best first, at most `max`.
    fn choose(
        &self,
        task: &str,
        candidates: &[(String, PromptSpec)],
        max: usize,
    ) -> impl Future<Output = Result<Vec<String>, GateError>> + Send;
}

/// The project's gate `Llm` asked through the chat providers.
pub struct LlmChooser(pub Llm);

impl Chooser for LlmChooser {
    async fn choose(&self, task: &str, candidates: &[(String, PromptSpec)], max: usize) -> Result<Vec<String>, GateError> {
        let system = format!(
            "You select which of a project's prompts are relevant to a task. Answer with only a JSON array of prompt names, \
             most relevant first, at most {max}. Answer [] when none is relevant."
        );
        let mut listing = format!("Task: {task}\n\nPrompts:\n");
        for (name, p) in candidates {
            let excerpt: String = p.content.chars().take(EXCERPT_CHARS).collect();
            let excerpt = excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
            listing.push_str(&format!("- {name}: {} — {excerpt}\n", p.description.as_deref().unwrap_or("")));
        }
        let messages = [Turn { role: Role::User, content: listing, tool_calls: Vec::new(), tool_call_id: None, is_error: false }];
        let sampling = Sampling { temperature: Some(0.0), max_tokens: Some(200), ..Sampling::default() };
        let request = Request { system: &system, messages: &messages, tools: &[], allow_tools: true, sampling: &sampling };
        let mut stream = self.0.stream(request).await?;
        while stream.next_text().await?.is_some() {}
        let answer = stream.finish().content;
        parse_choice(&answer, candidates, max)
    }
}

/// The names of a `["a", "b"]` answer (possibly wrapped in prose or a code fence) that are
/// candidates, deduplicated, at most `max`.
fn parse_choice(answer: &str, candidates: &[(String, PromptSpec)], max: usize) -> Result<Vec<String>, GateError> {
    let short = || answer.chars().take(200).collect::<String>();
    let (Some(start), Some(end)) = (answer.find('['), answer.rfind(']')) else { return Err(GateError::Answer(short())) };
    let names: Vec<String> = serde_json::from_str(answer.get(start..=end).unwrap_or_default()).map_err(|_| GateError::Answer(short()))?;
    let mut chosen: Vec<String> = Vec::new();
    for n in names {
        if candidates.iter().any(|(c, _)| *c == n) && !chosen.contains(&n) && chosen.len() < max {
            chosen.push(n);
        }
    }
    if chosen.is_empty() {
        return Err(GateError::Answer(short()));
    }
    Ok(chosen)
}

/// The local ranking: the best `max` prompts sharing a word with the task.
pub fn bm25(task: &str, prompts: &[(String, PromptSpec)], max: usize) -> Vec<String> {
    let docs: Vec<schema::rank::Doc<'_>> = prompts
        .iter()
        .map(|(name, p)| schema::rank::Doc { name, description: p.description.as_deref().unwrap_or(""), content: &p.content })
        .collect();
    schema::rank::rank(task, &docs).into_iter().take(max).map(|(i, _)| prompts[i].0.clone()).collect()
}

/// Choose with `chooser` when there is one, else (or when it fails) with BM25.
pub async fn select<C: Chooser>(
    task: &str,
    prompts: &[(String, PromptSpec)],
    max: usize,
    chooser: Result<Option<C>, GateError>,
) -> Selection {
    let fallback = match chooser {
        Ok(None) => None,
        Err(e) => Some(e.to_string()),
        Ok(Some(c)) => match tokio::time::timeout(LLM_TIMEOUT, c.choose(task, prompts, max)).await {
            Ok(Ok(names)) => return Selection { prompts: names, method: Method::Llm, fallback: None },
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(GateError::Timeout(LLM_TIMEOUT).to_string()),
        },
    };
    if let Some(reason) = &fallback {
        tracing::warn!(reason = %reason, "gate Llm failed; prompts ranked by BM25");
    }
    Selection { prompts: bm25(task, prompts, max), method: Method::Bm25, fallback }
}

/// The text of `begin_session` for `view`, and the selection when a task was given.
pub async fn begin_session(
    app: &crate::AppState,
    catalog: &Catalog,
    view: &ProjectView,
    task: Option<&str>,
) -> (String, Option<Selection>) {
    let base = view.spec.instructions.clone().unwrap_or_else(|| format!("Session open for project `{}`.", view.name));
    let Some(task) = task.map(str::trim).filter(|t| !t.is_empty()) else { return (base, None) };
    let task: String = task.chars().take(MAX_TASK_CHARS).collect();
    let gate = view.spec.gate.clone().unwrap_or_default();
    let chooser = match &gate.llm {
        None => Ok(None),
        Some(name) => app
            .chat
            .llm(&catalog.state, &view.name, name, &catalog.revision)
            .map(|llm| Some(LlmChooser(llm)))
            .map_err(|e| GateError::Setup(e.to_string())),
    };
    let selection = select(&task, &view.prompts, gate.max_prompts(), chooser).await;
    (answer_text(&base, view, &selection), Some(selection))
}

/// The instructions, then each chosen prompt under its name.
fn answer_text(base: &str, view: &ProjectView, selection: &Selection) -> String {
    let mut text = base.trim_end().to_string();
    if selection.prompts.is_empty() {
        return text;
    }
    text.push_str("\n\nPrompts relevant to your task:\n");
    for name in &selection.prompts {
        if let Some((_, p)) = view.prompts.iter().find(|(n, _)| n == name) {
            text.push_str(&format!("\n## {name}\n{}\n", p.content.trim_end()));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(content: &str) -> PromptSpec {
        PromptSpec {
            content: content.into(),
            description: None,
            scope: Default::default(),
            agent: None,
            personality: None,
            priority: 0,
            arguments: vec![],
        }
    }

    #[test]
    fn an_answer_keeps_only_known_names_in_order() {
        let c = vec![("a".to_string(), prompt("x")), ("b".to_string(), prompt("y")), ("c".to_string(), prompt("z"))];
        assert_eq!(parse_choice("Sure:\n```json\n[\"b\", \"zz\", \"a\", \"b\"]\n```", &c, 3).unwrap(), ["b", "a"]);
        assert_eq!(parse_choice("[\"c\", \"b\", \"a\"]", &c, 2).unwrap(), ["c", "b"]);
        assert!(matches!(parse_choice("[]", &c, 3), Err(GateError::Answer(_))));
        assert!(matches!(parse_choice("I think b", &c, 3), Err(GateError::Answer(_))));
    }

    #[test]
    fn the_detail_names_method_and_prompts() {
        let s = Selection { prompts: vec!["a".into(), "b".into()], method: Method::Llm, fallback: None };
        assert_eq!(s.detail(), "llm: a, b");
        let s = Selection { prompts: vec![], method: Method::Bm25, fallback: Some("timeout".into()) };
        assert_eq!(s.detail(), "bm25 (llm failed): (none)");
    }
}
