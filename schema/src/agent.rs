//! What an agent says before the conversation: its system blocks, in one deterministic order, and
//! the sampling in force (call override > personality > agent).
//!
//! Pure: it reads a [`DesiredState`] and nothing else, so the gateway (chat), the CLI preview
//! (`mcpctl describe agent NAME --personality P`) and the tests all see the same blocks.
//!
//! # Order (documented as a table in `docs/personalities.md`)
//! 1. the agent's `systemPrompt`
//! 2. project-scope prompts of the agent's project
//! 3. agent-scope prompts naming this agent
//! 4. the personality's `systemPrompt`
//! 5. personality-scope prompts naming this agent and personality
//! 6. the per-call system override
//!
//! Inside each prompt group (2, 3, 5): by `priority` (lower first), then by name. Empty texts are
//! skipped (a block of whitespace tells the model nothing). The personality is the one asked for,
//! else the agent's `defaultPersonality`, else none (groups 4 and 5 are then empty).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::DesiredState;
use crate::kind::Kind;
use crate::resource::{Resource, ResourceKey, Spec};
use crate::spec::{AgentSpec, PersonalitySpec, PromptScope, PromptSpec, Sampling};

/// Where a system block comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BlockSource {
    /// The agent's `spec.systemPrompt`.
    AgentSystemPrompt,
    /// A `Prompt` with `scope: project` in the agent's project.
    ProjectPrompt,
    /// A `Prompt` with `scope: agent` naming the agent.
    AgentPrompt,
    /// The personality's `spec.systemPrompt`.
    PersonalitySystemPrompt,
    /// A `Prompt` with `scope: personality` naming the agent and the personality.
    PersonalityPrompt,
    /// The `system` text given with one chat call.
    Override,
}

impl BlockSource {
    /// The name shown by `describe agent` and in the docs' table.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockSource::AgentSystemPrompt => "agentSystemPrompt",
            BlockSource::ProjectPrompt => "projectPrompt",
            BlockSource::AgentPrompt => "agentPrompt",
            BlockSource::PersonalitySystemPrompt => "personalitySystemPrompt",
            BlockSource::PersonalityPrompt => "personalityPrompt",
            BlockSource::Override => "override",
        }
    }
}

/// One block of system text, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemBlock {
    pub source: BlockSource,
    /// The prompt's name; the agent's or personality's name for their `systemPrompt`; none for
    /// the override.
    pub name: Option<String>,
    /// The prompt's `priority`; 0 for the other sources.
    pub priority: i32,
    pub content: String,
}

/// An agent or personality that a chat or preview names does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("no agent `{agent}` in project `{project}`{hint}")]
    UnknownAgent { project: String, agent: String, hint: String },
    #[error("agent `{agent}` in project `{project}` has no personality `{personality}`{hint}")]
    UnknownPersonality { project: String, agent: String, personality: String, hint: String },
}

/// The agent `agent` of `project`.
///
/// # Errors
/// [`AgentError::UnknownAgent`], with the closest agent name of the project as a hint.
pub fn agent<'a>(state: &'a DesiredState, project: &str, agent: &str) -> Result<&'a AgentSpec, AgentError> {
    match state.get(&ResourceKey::new(Kind::Agent, Some(project), agent)) {
        Some(Resource { spec: Spec::Agent(a), .. }) => Ok(a),
        _ => {
            let names = in_project(state, Kind::Agent, project).map(Resource::name);
            Err(AgentError::UnknownAgent { project: project.into(), agent: agent.into(), hint: crate::did_you_mean(agent, names) })
        }
    }
}

/// The personality in force: `personality` if given, else the agent's `defaultPersonality`, else
/// none. Returned with its name.
///
/// # Errors
/// [`AgentError::UnknownAgent`]; [`AgentError::UnknownPersonality`] when the name is no
/// personality of this agent (one of another agent counts as unknown), with a hint among the
/// agent's own personalities.
pub fn personality<'a>(
    state: &'a DesiredState,
    project: &str,
    agent_name: &str,
    personality: Option<&str>,
) -> Result<Option<(&'a str, &'a PersonalitySpec)>, AgentError> {
    let spec = agent(state, project, agent_name)?;
    let Some(name) = personality.or(spec.default_personality.as_deref()) else { return Ok(None) };
    let own: Vec<(&'a str, &'a PersonalitySpec)> = in_project(state, Kind::Personality, project)
        .filter_map(|r| match &r.spec {
            Spec::Personality(p) if p.agent == agent_name => Some((r.name(), p)),
            _ => None,
        })
        .collect();
    own.iter().find(|(n, _)| *n == name).copied().map(Some).ok_or_else(|| AgentError::UnknownPersonality {
        project: project.into(),
        agent: agent_name.into(),
        personality: name.into(),
        hint: crate::did_you_mean(name, own.iter().map(|(n, _)| *n)),
    })
}

/// The system blocks of one chat call, in the order of the module documentation.
///
/// # Errors
/// An unknown agent or personality ([`AgentError`]).
pub fn system_blocks(
    state: &DesiredState,
    project: &str,
    agent_name: &str,
    personality_name: Option<&str>,
    system_override: Option<&str>,
) -> Result<Vec<SystemBlock>, AgentError> {
    let spec = agent(state, project, agent_name)?;
    let persona = personality(state, project, agent_name, personality_name)?;
    let mut blocks = Vec::new();
    if let Some(text) = &spec.system_prompt {
        push(&mut blocks, BlockSource::AgentSystemPrompt, Some(agent_name), 0, text);
    }
    let prompts: Vec<(&str, &PromptSpec)> = in_project(state, Kind::Prompt, project)
        .filter_map(|r| match &r.spec {
            Spec::Prompt(p) => Some((r.name(), p)),
            _ => None,
        })
        .collect();
    let group = |blocks: &mut Vec<SystemBlock>, source, applies: &dyn Fn(&PromptSpec) -> bool| {
        let mut chosen: Vec<&(&str, &PromptSpec)> = prompts.iter().filter(|(_, p)| applies(p)).collect();
        chosen.sort_by(|(an, ap), (bn, bp)| ap.priority.cmp(&bp.priority).then_with(|| an.cmp(bn)));
        for (name, p) in chosen {
            push(blocks, source, Some(name), p.priority, &p.content);
        }
    };
    let of_agent = |p: &PromptSpec| p.agent.as_deref() == Some(agent_name);
    group(&mut blocks, BlockSource::ProjectPrompt, &|p| p.scope == PromptScope::Project);
    group(&mut blocks, BlockSource::AgentPrompt, &|p| p.scope == PromptScope::Agent && of_agent(p));
    if let Some((pname, pspec)) = persona {
        if let Some(text) = &pspec.system_prompt {
            push(&mut blocks, BlockSource::PersonalitySystemPrompt, Some(pname), 0, text);
        }
        group(&mut blocks, BlockSource::PersonalityPrompt, &|p| {
            p.scope == PromptScope::Personality && of_agent(p) && p.personality.as_deref() == Some(pname)
        });
    }
    if let Some(text) = system_override {
        push(&mut blocks, BlockSource::Override, None, 0, text);
    }
    Ok(blocks)
}

/// Append a block unless its text is blank.
fn push(blocks: &mut Vec<SystemBlock>, source: BlockSource, name: Option<&str>, priority: i32, content: &str) {
    if !content.trim().is_empty() {
        blocks.push(SystemBlock { source, name: name.map(str::to_string), priority, content: content.to_string() });
    }
}

/// The blocks as one system message: their contents, trimmed, separated by a blank line.
pub fn system_text(blocks: &[SystemBlock]) -> String {
    blocks.iter().map(|b| b.content.trim()).collect::<Vec<_>>().join("\n\n")
}

/// Sampling in force, field by field: the call's `overrides`, else the personality's, else the
/// agent's; a field none sets stays unset (the provider's default). `stop` counts as set when
/// non-empty.
pub fn effective_sampling(agent: &AgentSpec, personality: Option<&PersonalitySpec>, overrides: &Sampling) -> Sampling {
    let none = Sampling::default();
    let layers = [overrides, personality.map_or(&none, |p| &p.sampling), &agent.sampling];
    fn first<T: Clone>(layers: &[&Sampling; 3], field: impl Fn(&Sampling) -> Option<&T>) -> Option<T> {
        layers.iter().find_map(|s| field(s)).cloned()
    }
    Sampling {
        temperature: first(&layers, |s| s.temperature.as_ref()),
        top_p: first(&layers, |s| s.top_p.as_ref()),
        max_tokens: first(&layers, |s| s.max_tokens.as_ref()),
        stop: first(&layers, |s| (!s.stop.is_empty()).then_some(&s.stop)).unwrap_or_default(),
        presence_penalty: first(&layers, |s| s.presence_penalty.as_ref()),
        frequency_penalty: first(&layers, |s| s.frequency_penalty.as_ref()),
        seed: first(&layers, |s| s.seed.as_ref()),
        extra: effective_extra(&layers),
    }
}

/// `extra` in force, key by key: the lowest layer first, each higher one overwriting; a `null`
/// in a higher layer removes the key.
fn effective_extra(layers: &[&Sampling; 3]) -> BTreeMap<String, serde_json::Value> {
    let mut extra = BTreeMap::new();
    for layer in layers.iter().rev() {
        for (k, v) in &layer.extra {
            if v.is_null() {
                extra.remove(k);
            } else {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    extra
}

/// Most keys one `sampling.extra` may hold.
pub const MAX_EXTRA_KEYS: usize = 32;
/// Longest JSON text of one `sampling.extra` value.
pub const MAX_EXTRA_VALUE_BYTES: usize = 4096;

/// Request fields the gateway writes itself (the typed sampling fields, in both wire formats,
/// and the conversation), so `sampling.extra` may not set them.
const RESERVED_EXTRA: &[&str] = &[
    "model",
    "messages",
    "system",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "n",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stop_sequences",
    "seed",
    "presence_penalty",
    "frequency_penalty",
];

/// Checks one `sampling.extra` map: at most [`MAX_EXTRA_KEYS`] keys, each a non-empty name of at
/// most 64 characters not in the reserved set, each value's JSON at most
/// [`MAX_EXTRA_VALUE_BYTES`].
///
/// # Errors
/// The offending key and why, as one sentence (the caller adds where it was found).
pub fn check_extra(extra: &BTreeMap<String, serde_json::Value>) -> Result<(), (String, String)> {
    if extra.len() > MAX_EXTRA_KEYS {
        return Err((String::new(), format!("at most {MAX_EXTRA_KEYS} extra parameters, found {}", extra.len())));
    }
    for (k, v) in extra {
        if k.is_empty() || k.len() > 64 {
            return Err((k.clone(), "an extra parameter's name must be 1 to 64 characters".into()));
        }
        if RESERVED_EXTRA.contains(&k.as_str()) {
            return Err((k.clone(), format!("`{k}` is set by the gateway (use the sampling field or the chat call), not by `extra`")));
        }
        let len = serde_json::to_string(v).map_or(0, |s| s.len());
        if len > MAX_EXTRA_VALUE_BYTES {
            return Err((k.clone(), format!("the value of `{k}` is {len} bytes of JSON; at most {MAX_EXTRA_VALUE_BYTES}")));
        }
    }
    Ok(())
}

fn in_project<'a: 'p, 'p>(state: &'a DesiredState, kind: Kind, project: &'p str) -> impl Iterator<Item = &'a Resource> + 'p {
    state.of_kind(kind).filter(move |r| r.metadata.project.as_deref() == Some(project))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceFile;

    /// A project `lab` with two agents, personalities of both, and prompts of every scope
    /// (priorities and names chosen so that sorting by either alone would give another order).
    const REPO: &str = "\
apiVersion: mcpctl.io/v1
project: lab
projects:
  - metadata: {name: lab}
  - metadata: {name: other}
llms:
  - metadata: {name: m}
    spec: {provider: openai, model: x}
agents:
  - metadata: {name: helper}
    spec:
      llm: m
      systemPrompt: HELPER
      sampling: {temperature: 0.3, maxTokens: 100, seed: 7}
      defaultPersonality: terse
  - metadata: {name: plain}
    spec: {llm: m}
personalities:
  - metadata: {name: terse}
    spec: {agent: helper, systemPrompt: TERSE, sampling: {temperature: 0.1, stop: [END]}}
  - metadata: {name: teacher}
    spec: {agent: helper, systemPrompt: TEACHER}
  - metadata: {name: grumpy}
    spec: {agent: plain, systemPrompt: GRUMPY}
prompts:
  - metadata: {name: zeta}
    spec: {content: P-ZETA, priority: -5}
  - metadata: {name: alpha}
    spec: {content: P-ALPHA}
  - metadata: {name: beta}
    spec: {content: P-BETA}
  - metadata: {name: blank}
    spec: {content: '   '}
  - metadata: {name: a-late}
    spec: {scope: agent, agent: helper, content: A-LATE, priority: 9}
  - metadata: {name: z-early}
    spec: {scope: agent, agent: helper, content: A-EARLY, priority: 1}
  - metadata: {name: plain-only}
    spec: {scope: agent, agent: plain, content: A-PLAIN}
  - metadata: {name: teach-2}
    spec: {scope: personality, agent: helper, personality: teacher, content: T-2, priority: 2}
  - metadata: {name: teach-1}
    spec: {scope: personality, agent: helper, personality: teacher, content: T-1, priority: 1}
  - metadata: {name: terse-1}
    spec: {scope: personality, agent: helper, personality: terse, content: TERSE-1}
---
apiVersion: mcpctl.io/v1
kind: Prompt
metadata: {name: elsewhere, project: other}
spec: {content: OTHER-PROJECT}
";

    fn state() -> DesiredState {
        crate::check(&[SourceFile::new("lab.yaml", REPO)]).unwrap_or_else(|d| panic!("{d}"))
    }

    fn show(blocks: &[SystemBlock]) -> Vec<(BlockSource, Option<&str>, i32, &str)> {
        blocks.iter().map(|b| (b.source, b.name.as_deref(), b.priority, b.content.as_str())).collect()
    }

    use BlockSource::*;

    #[test]
    fn blocks_come_in_the_documented_order_block_by_block() {
        let state = state();
        type Want = Vec<(BlockSource, Option<&'static str>, i32, &'static str)>;
        let project = [
            (ProjectPrompt, Some("zeta"), -5, "P-ZETA"),
            (ProjectPrompt, Some("alpha"), 0, "P-ALPHA"),
            (ProjectPrompt, Some("beta"), 0, "P-BETA"),
        ];
        let agent = [(AgentPrompt, Some("z-early"), 1, "A-EARLY"), (AgentPrompt, Some("a-late"), 9, "A-LATE")];
        let with = |head: &[(BlockSource, Option<&'static str>, i32, &'static str)],
                    tail: &[(BlockSource, Option<&'static str>, i32, &'static str)]|
         -> Want { head.iter().chain(project.iter()).chain(agent.iter()).chain(tail.iter()).copied().collect() };
        let helper = [(AgentSystemPrompt, Some("helper"), 0, "HELPER")];
        let cases: Vec<(&str, Option<&str>, Option<&str>, Want)> = vec![
            // No personality named: the default (terse) applies.
            (
                "helper",
                None,
                None,
                with(&helper, &[(PersonalitySystemPrompt, Some("terse"), 0, "TERSE"), (PersonalityPrompt, Some("terse-1"), 0, "TERSE-1")]),
            ),
            // A named personality replaces the default; its prompts by priority, not name.
            (
                "helper",
                Some("teacher"),
                Some("Be brief."),
                with(
                    &helper,
                    &[
                        (PersonalitySystemPrompt, Some("teacher"), 0, "TEACHER"),
                        (PersonalityPrompt, Some("teach-1"), 1, "T-1"),
                        (PersonalityPrompt, Some("teach-2"), 2, "T-2"),
                        (Override, None, 0, "Be brief."),
                    ],
                ),
            ),
            // No systemPrompt, no default personality: project prompts, its own agent prompt.
            ("plain", None, None, [&project[..], &[(AgentPrompt, Some("plain-only"), 0, "A-PLAIN")]].concat()),
            // A blank override adds nothing.
            (
                "plain",
                Some("grumpy"),
                Some(" \n"),
                [&project[..], &[(AgentPrompt, Some("plain-only"), 0, "A-PLAIN"), (PersonalitySystemPrompt, Some("grumpy"), 0, "GRUMPY")]]
                    .concat(),
            ),
        ];
        for (agent_name, persona, over, want) in cases {
            let blocks = system_blocks(&state, "lab", agent_name, persona, over).unwrap();
            assert_eq!(show(&blocks), want, "agent {agent_name}, personality {persona:?}, override {over:?}");
        }
    }

    #[test]
    fn system_text_joins_blocks_with_blank_lines() {
        let blocks = system_blocks(&state(), "lab", "plain", None, Some("  last  ")).unwrap();
        assert_eq!(system_text(&blocks), "P-ZETA\n\nP-ALPHA\n\nP-BETA\n\nA-PLAIN\n\nlast");
    }

    #[test]
    fn unknown_names_are_errors_that_name_them() {
        let state = state();
        let cases: Vec<(&str, &str, Option<&str>, &str)> = vec![
            ("lab", "helpr", None, "no agent `helpr` in project `lab` (did you mean `helper`?)"),
            ("other", "helper", None, "no agent `helper` in project `other`"),
            ("lab", "helper", Some("teachr"), "agent `helper` in project `lab` has no personality `teachr` (did you mean `teacher`?)"),
            // A personality of another agent is not this agent's.
            ("lab", "helper", Some("grumpy"), "agent `helper` in project `lab` has no personality `grumpy`"),
        ];
        for (project, agent_name, persona, want) in cases {
            let err = system_blocks(&state, project, agent_name, persona, None).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn the_default_personality_is_reported_with_its_name() {
        let state = state();
        assert_eq!(personality(&state, "lab", "helper", None).unwrap().map(|(n, _)| n), Some("terse"));
        assert_eq!(personality(&state, "lab", "helper", Some("teacher")).unwrap().map(|(n, _)| n), Some("teacher"));
        assert_eq!(personality(&state, "lab", "plain", None).unwrap(), None);
    }

    #[test]
    fn sampling_takes_override_then_personality_then_agent_field_by_field() {
        let state = state();
        let agent_spec = agent(&state, "lab", "helper").unwrap();
        let (_, terse) = personality(&state, "lab", "helper", Some("terse")).unwrap().unwrap();
        let (_, teacher) = personality(&state, "lab", "helper", Some("teacher")).unwrap().unwrap();
        let over = Sampling { max_tokens: Some(5), top_p: Some(0.5), ..Sampling::default() };
        let unset = Sampling::default();
        let hot = Sampling { temperature: Some(1.5), stop: vec!["X".into()], ..Sampling::default() };
        let cases: Vec<(Option<&PersonalitySpec>, &Sampling, Sampling)> = vec![
            (None, &unset, agent_spec.sampling.clone()),
            (
                Some(terse),
                &unset,
                Sampling { temperature: Some(0.1), max_tokens: Some(100), seed: Some(7), stop: vec!["END".into()], ..Sampling::default() },
            ),
            (
                Some(teacher),
                &over,
                Sampling { temperature: Some(0.3), max_tokens: Some(5), top_p: Some(0.5), seed: Some(7), ..Sampling::default() },
            ),
            (
                Some(terse),
                &hot,
                Sampling { temperature: Some(1.5), max_tokens: Some(100), seed: Some(7), stop: vec!["X".into()], ..Sampling::default() },
            ),
        ];
        for (persona, overrides, want) in cases {
            assert_eq!(effective_sampling(agent_spec, persona, overrides), want, "personality {persona:?}, overrides {overrides:?}");
        }
    }

    #[test]
    fn extra_merges_key_by_key_and_null_removes() {
        let layer = |pairs: &[(&str, serde_json::Value)]| Sampling {
            extra: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            ..Sampling::default()
        };
        let agent_layer = layer(&[("top_k", 40.into()), ("num_ctx", 4096.into()), ("keep", true.into())]);
        let persona_layer = layer(&[("top_k", 10.into()), ("num_ctx", serde_json::Value::Null)]);
        let call_layer = layer(&[("top_k", 1.into()), ("min_p", 0.05.into())]);
        let got = effective_extra(&[&call_layer, &persona_layer, &agent_layer]);
        let want: BTreeMap<String, serde_json::Value> = [("keep", true.into()), ("min_p", 0.05.into()), ("top_k", 1.into())]
            .into_iter()
            .map(|(k, v): (&str, serde_json::Value)| (k.to_string(), v))
            .collect();
        assert_eq!(got, want);
        let none = Sampling::default();
        assert_eq!(effective_extra(&[&none, &persona_layer, &none]), BTreeMap::from([("top_k".to_string(), 10.into())]));
    }

    #[test]
    fn extra_refuses_reserved_keys_and_oversized_values() {
        let one = |k: &str, v: serde_json::Value| BTreeMap::from([(k.to_string(), v)]);
        assert_eq!(check_extra(&one("top_k", 5.into())), Ok(()));
        for reserved in ["model", "messages", "tools", "stream", "temperature", "max_tokens", "stop_sequences"] {
            let (key, why) = check_extra(&one(reserved, 1.into())).unwrap_err();
            assert_eq!(key, reserved);
            assert!(why.contains("set by the gateway"), "{why}");
        }
        let (key, why) = check_extra(&one("blob", "x".repeat(MAX_EXTRA_VALUE_BYTES).into())).unwrap_err();
        assert_eq!(key, "blob");
        assert!(why.contains("bytes of JSON"), "{why}");
        let many: BTreeMap<String, serde_json::Value> = (0..=MAX_EXTRA_KEYS).map(|i| (format!("k{i}"), 1.into())).collect();
        assert!(check_extra(&many).unwrap_err().1.contains("at most"));
        assert!(check_extra(&one("", 1.into())).is_err());
    }

    #[test]
    fn a_reserved_extra_key_in_yaml_is_an_error_at_its_line() {
        let yaml = REPO.replace(
            "sampling: {temperature: 0.3, maxTokens: 100, seed: 7}",
            "sampling:\n        temperature: 0.3\n        extra:\n          model: other",
        );
        let err = crate::check(&[SourceFile::new("lab.yaml", yaml.clone())]).unwrap_err().to_string();
        let line = yaml.lines().position(|l| l.trim() == "model: other").unwrap() + 1;
        assert!(err.contains(&format!("lab.yaml:{line}:")), "{err}");
        assert!(err.contains("`model` is set by the gateway"), "{err}");
    }

    #[test]
    fn blocks_serialize_in_camel_case() {
        let blocks = system_blocks(&state(), "lab", "helper", Some("teacher"), None).unwrap();
        let json = serde_json::to_value(&blocks[0]).unwrap();
        assert_eq!(json, serde_json::json!({"source": "agentSystemPrompt", "name": "helper", "priority": 0, "content": "HELPER"}));
        assert_eq!(serde_json::to_value(BlockSource::PersonalitySystemPrompt).unwrap(), BlockSource::PersonalitySystemPrompt.as_str());
    }
}
