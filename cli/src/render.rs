//! Everything the CLI prints: diagnostics, plans (text and markdown), tables, descriptions,
//! progress. Colors go through `anstream`, which strips them when stdout is not a terminal.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use reconciler::plan::{Action, Change, FieldChange, StoredResource};
use reconciler::{Deploy, Plan};
use schema::{Diagnostics, Kind, Resource, Spec};

const RED: Style = AnsiColor::Red.on_default();
const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn paint(style: Style, text: &str) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

pub fn error_line(msg: &str) {
    let _ = writeln!(anstream::stderr(), "{} {msg}", paint(RED.bold(), "error:"));
}

/// A warning on stderr.
pub fn warn_line(msg: &str) {
    let _ = writeln!(anstream::stderr(), "{} {msg}", paint(YELLOW.bold(), "warning:"));
}

pub fn ok_line(msg: &str) {
    let _ = writeln!(anstream::stdout(), "{} {msg}", paint(GREEN, "✓"));
}

/// One line per problem: `path:line:column: Kind/name: message`.
pub fn diagnostics(diags: &Diagnostics) {
    let mut err = anstream::stderr();
    for d in diags.iter() {
        // Line 0: no position (a resource read from the store or a saved plan, not from YAML).
        let at = if d.line == 0 { format!("{}:", d.file) } else { format!("{}:{}:{}:", d.file, d.line, d.column) };
        let _ = writeln!(
            err,
            "{}",
            paint(BOLD, &at) + " " + &d.subject.as_ref().map(|s| format!("{s}: ")).unwrap_or_default() + &paint(RED, &d.message)
        );
    }
}

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    }
}

fn is_multiline(v: &Option<Value>) -> bool {
    matches!(v, Some(Value::String(s)) if s.contains('\n'))
}

/// Lines describing one field change (without indentation).
fn field_lines(f: &FieldChange) -> Vec<(Style, String)> {
    if f.sensitive {
        return vec![(YELLOW, format!("{}: (sensitive value changed)", f.path))];
    }
    if is_multiline(&f.before) || is_multiline(&f.after) {
        let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).unwrap_or("").to_string();
        let (a, b) = (text(&f.before), text(&f.after));
        let diff = similar::TextDiff::from_lines(&a, &b);
        let mut lines = vec![(Style::new(), format!("{}:", f.path))];
        for c in diff.iter_all_changes() {
            let (style, sign) = match c.tag() {
                similar::ChangeTag::Delete => (RED, "-"),
                similar::ChangeTag::Insert => (GREEN, "+"),
                similar::ChangeTag::Equal => (DIM, " "),
            };
            lines.push((style, format!("  {sign} {}", c.value().trim_end_matches('\n'))));
        }
        return lines;
    }
    let line = match (&f.before, &f.after) {
        (None, after) => (GREEN, format!("{}: {}", f.path, show(after))),
        (before, None) => (RED, format!("{}: {} → (removed)", f.path, show(before))),
        (before, after) => (YELLOW, format!("{}: {} → {}", f.path, show(before), show(after))),
    };
    vec![line]
}

fn head(c: &Change) -> (Style, &'static str, &'static str) {
    match c.action {
        Action::Create => (GREEN, "+", "create"),
        Action::Update => (YELLOW, "~", "update"),
        Action::Delete => (RED, "-", "destroy"),
    }
}

/// Terraform-like text plan, ending with `Plan: N to add, N to change, N to destroy.`
pub fn plan_text(out: &mut impl Write, plan: &Plan) -> io::Result<()> {
    if plan.is_empty() {
        return writeln!(out, "{} The store matches the repo.", paint(GREEN.bold(), "No changes."));
    }
    for c in &plan.changes {
        let (style, sign, verb) = head(c);
        let src = c.source.as_ref().map(|s| paint(DIM, &format!("  ({s})"))).unwrap_or_default();
        writeln!(out, "  {} {}{src}", paint(style.bold(), &format!("{sign} {verb}")), paint(BOLD, &c.key().to_string()))?;
        if c.action != Action::Delete {
            for f in &c.fields {
                for (style, line) in field_lines(f) {
                    writeln!(out, "      {}", paint(style, &line))?;
                }
            }
        }
        for e in &c.effects {
            writeln!(out, "      {}", paint(YELLOW, e))?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{} {}.", paint(BOLD, "Plan:"), plan.summary)
}

/// A plan as Markdown, for a pull-request comment.
pub fn plan_markdown(out: &mut impl Write, plan: &Plan) -> io::Result<()> {
    writeln!(out, "### mcpctl plan\n")?;
    if plan.is_empty() {
        return writeln!(out, "**No changes.** The store matches the repo.");
    }
    writeln!(out, "**Plan: {}.**\n", plan.summary)?;
    writeln!(out, "| Action | Resource | Changed fields |\n|---|---|---|")?;
    for c in &plan.changes {
        let (_, _, verb) = head(c);
        let fields = if c.action == Action::Delete {
            String::new()
        } else {
            c.fields.iter().map(|f| format!("`{}`", f.path)).collect::<Vec<_>>().join(", ")
        };
        writeln!(out, "| {verb} | `{}` | {fields} |", c.key())?;
    }
    writeln!(out, "\n<details><summary>Details</summary>\n\n```diff")?;
    for c in &plan.changes {
        let (_, sign, verb) = head(c);
        writeln!(out, "{sign} {verb} {}", c.key())?;
        if c.action != Action::Delete {
            for f in &c.fields {
                for (_, line) in field_lines(f) {
                    writeln!(out, "{sign}     {line}")?;
                }
            }
        }
        for e in &c.effects {
            writeln!(out, "{sign}     {e}")?;
        }
    }
    writeln!(out, "```\n</details>")
}

/// A progress bar on stderr, hidden when stderr is not a terminal or the work is small.
pub fn progress(total: usize) -> ProgressBar {
    if total < 50 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} applying [{bar:30}] {pos}/{len} changes").expect("template").progress_chars("=> "),
    );
    bar
}

pub fn apply_done(out: &mut impl Write, plan: &Plan, d: &Deploy) -> io::Result<()> {
    if plan.is_empty() {
        return writeln!(
            out,
            "{} The store matches the repo (deploy #{} recorded as unchanged).",
            paint(GREEN.bold(), "No changes."),
            d.id
        );
    }
    let s = plan.summary;
    writeln!(
        out,
        "{} Resources: {} added, {} changed, {} destroyed. (deploy #{}, revision {})",
        paint(GREEN.bold(), "Apply complete!"),
        s.add,
        s.change,
        s.destroy,
        d.id,
        short(&d.revision)
    )
}

fn short(rev: &str) -> &str {
    let r = rev.strip_prefix("sha256:").unwrap_or(rev);
    &r[..r.len().min(12)]
}

/// One line summing up a resource for tables.
pub fn summary(res: &Resource) -> String {
    match &res.spec {
        Spec::Server(s) => {
            let what = s
                .command
                .clone()
                .map(|c| format!("command {c}"))
                .or_else(|| s.package_name.clone().map(|p| format!("package {p}")))
                .or_else(|| s.image.clone().map(|i| format!("image {i}")))
                .or_else(|| s.url.clone().map(|u| format!("url {u}")))
                .or_else(|| s.from_template.as_ref().map(|t| format!("template {}", t.name)))
                .unwrap_or_default();
            format!(
                "{} {what}",
                serde_json::to_value(s.effective_transport()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            )
        }
        Spec::Project(p) => {
            let mut parts = vec![format!("{} servers", p.servers.len())];
            if p.gated {
                parts.push("gated".into());
            }
            if p.public {
                parts.push("public".into());
            }
            parts.join(", ")
        }
        Spec::Agent(a) => format!("llm {}", a.llm),
        Spec::Personality(p) => format!("agent {}", p.agent),
        Spec::Prompt(p) => match (&p.agent, &p.personality) {
            (Some(a), Some(pe)) => format!("personality {a}/{pe}"),
            (Some(a), None) => format!("agent {a}"),
            _ => "project".into(),
        },
        Spec::Secret(s) => format!("{} keys", s.data.len()),
        Spec::SecretBackend(b) => format!(
            "{}{}",
            serde_json::to_value(b.backend_type).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            if b.is_default { " (default)" } else { "" }
        ),
        Spec::Llm(l) => format!(
            "{}/{}",
            serde_json::to_value(l.provider).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            l.model
        ),
        Spec::McpToken(t) => format!("{}…{}", t.prefix, if t.revoked { " (revoked)" } else { "" }),
        Spec::User(u) => u.email.clone().unwrap_or_default(),
        Spec::Group(g) => format!("{} members", g.members.len()),
        Spec::Template(t) => format!("{} parameters", t.parameters.len()),
        Spec::RbacDefinition(r) => format!("{} subjects, {} bindings", r.subjects.len(), r.role_bindings.len()),
    }
}

/// kubectl-like table.
pub fn table(out: &mut impl Write, kind: Option<Kind>, items: &[(StoredResource, Resource)]) -> io::Result<()> {
    if items.is_empty() {
        return writeln!(out, "No resources found.");
    }
    let mut rows: Vec<Vec<String>> = vec![];
    let mut header = vec![];
    if kind.is_none() {
        header.push("KIND");
    }
    header.extend(["NAME", "PROJECT", "DETAILS", "REVISION", "UPDATED"]);
    rows.push(header.iter().map(|s| s.to_string()).collect());
    for (row, res) in items {
        let mut r = vec![];
        if kind.is_none() {
            r.push(res.kind().to_string());
        }
        r.extend([
            res.name().to_string(),
            res.metadata.project.clone().unwrap_or_else(|| "-".into()),
            summary(res),
            short(&row.revision).to_string(),
            row.updated_at.get(..19).unwrap_or(&row.updated_at).replace('T', " "),
        ]);
        rows.push(r);
    }
    print_rows(out, &rows)
}

/// A table with a bold header row, columns padded to their widest cell.
pub fn columns(out: &mut impl Write, header: &[&str], body: &[Vec<String>]) -> io::Result<()> {
    if body.is_empty() {
        return writeln!(out, "No resources found.");
    }
    let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    rows.extend(body.iter().cloned());
    print_rows(out, &rows)
}

fn print_rows(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let line = line.join("   ");
        let line = line.trim_end();
        if i == 0 {
            writeln!(out, "{}", paint(BOLD, line))?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Secret values replaced by a note of their size, for human-facing output.
fn redacted(res: &Resource) -> Value {
    let mut v = res.to_json();
    if let Some(Value::Object(data)) = v.pointer_mut("/spec/data") {
        for val in data.values_mut() {
            let n = val.as_str().map_or(0, str::len);
            *val = Value::String(format!("(encrypted, {n} bytes)"));
        }
    }
    v
}

pub fn describe(out: &mut impl Write, row: &StoredResource, res: &Resource, all: &[(StoredResource, Resource)]) -> io::Result<()> {
    let label = |out: &mut dyn Write, k: &str, v: &str| writeln!(out, "{} {v}", paint(BOLD, &format!("{k:<10}")));
    label(out, "Kind:", res.kind().as_str())?;
    label(out, "Name:", res.name())?;
    label(out, "Project:", res.metadata.project.as_deref().unwrap_or("-"))?;
    label(out, "Source:", row.source.as_deref().unwrap_or("-"))?;
    label(out, "Revision:", &row.revision)?;
    label(out, "Updated:", &row.updated_at)?;
    let mut related: Vec<String> = vec![];
    let project = res.metadata.project.as_deref();
    for (_, other) in all {
        let o_project = other.metadata.project.as_deref();
        let rel = match (&res.spec, &other.spec) {
            (Spec::Project(_), Spec::Prompt(p)) if o_project == Some(res.name()) && p.agent.is_none() => Some("prompt"),
            (Spec::Project(_), Spec::Agent(_)) if o_project == Some(res.name()) => Some("agent"),
            (Spec::Project(_), Spec::McpToken(_)) if o_project == Some(res.name()) => Some("token"),
            (Spec::Agent(_), Spec::Personality(p)) if o_project == project && p.agent == res.name() => Some("personality"),
            (Spec::Agent(_), Spec::Prompt(p)) if o_project == project && p.agent.as_deref() == Some(res.name()) => Some("prompt"),
            (Spec::Personality(pe), Spec::Prompt(p))
                if o_project == project && p.personality.as_deref() == Some(res.name()) && p.agent.as_deref() == Some(&pe.agent) =>
            {
                Some("prompt")
            }
            _ => None,
        };
        if let Some(r) = rel {
            related.push(format!("{r} {}", other.name()));
        }
    }
    if !related.is_empty() {
        label(out, "Related:", &related.join(", "))?;
    }
    writeln!(out, "{}", paint(BOLD, "Spec:"))?;
    let doc = schema::emit::yaml_document(redacted(res).get("spec").unwrap_or(&Value::Null));
    for line in doc.lines().skip_while(|l| *l == "---") {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// Audit events as a table, newest first.
pub fn audit(out: &mut impl Write, events: &[reconciler::audit::AuditEvent]) -> io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "No audit events.");
    }
    writeln!(
        out,
        "{}",
        paint(
            BOLD,
            &format!(
                "{:<19}  {:<12} {:<16} {:<14} {:<12} {:<28} {:>9}  {:<7} {}",
                "TIME", "PROJECT", "TOKEN", "METHOD", "SERVER", "TARGET", "MS", "OUTCOME", "REVISION"
            )
        )
    )?;
    for e in events {
        let style = match e.outcome.as_str() {
            "ok" => GREEN,
            _ => RED,
        };
        writeln!(
            out,
            "{:<19}  {:<12} {:<16} {:<14} {:<12} {:<28} {:>9.1}  {} {}{}",
            escape_controls(e.at.get(..19).unwrap_or(&e.at)).replace('T', " "),
            escape_controls(&e.project),
            escape_controls(&e.token),
            escape_controls(&e.method),
            escape_controls(&e.server),
            escape_controls(&e.target),
            e.duration_us as f64 / 1000.0,
            paint(style, &format!("{:<7}", escape_controls(&e.outcome))),
            escape_controls(short(&e.revision)),
            e.error.as_deref().map(|x| format!("  {}", escape_controls(x))).unwrap_or_default(),
        )?;
    }
    Ok(())
}

/// `text` with control characters (escape sequences, carriage returns, newlines) and invisible
/// direction/format marks written as Rust escapes (`\u{1b}`, `\r`, `\n`), so a value chosen by
/// a caller (a tool name, an upstream error) cannot move the cursor, rewrite earlier lines or
/// reorder the table on the terminal of whoever reads the audit log.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden =
        |c: char| c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars().map(|c| if hidden(c) { c.escape_default().to_string() } else { c.to_string() }).collect::<String>().into()
}

/// The deploy history as a table.
pub fn history(out: &mut impl Write, deploys: &[Deploy]) -> io::Result<()> {
    if deploys.is_empty() {
        return writeln!(out, "No deploys yet.");
    }
    writeln!(
        out,
        "{}",
        paint(BOLD, &format!("{:<5} {:<12}  {:<9}  {:<19}  {:<24}  {}", "ID", "REVISION", "OUTCOME", "FINISHED", "CHANGES", "MESSAGE"))
    )?;
    for d in deploys {
        let style = match d.outcome.as_str() {
            "failed" => RED,
            "applied" => GREEN,
            _ => Style::new(),
        };
        let s = d.summary;
        let msg = d.message.as_deref().unwrap_or("").lines().next().unwrap_or("");
        writeln!(
            out,
            "{:<5} {:<12}  {}  {:<19}  {:<24}  {msg}",
            d.id,
            short(&d.revision),
            paint(style, &format!("{:<9}", d.outcome)),
            d.finished_at.get(..19).unwrap_or(&d.finished_at).replace('T', " "),
            format!("+{} ~{} -{}", s.add, s.change, s.destroy),
        )?;
    }
    Ok(())
}

/// `mcpctl status` as text.
pub fn status(out: &mut impl Write, s: &Value) -> io::Result<()> {
    let get = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_string);
    writeln!(out, "{} {}", paint(BOLD, "Deployed:      "), get("deployed").unwrap_or_else(|| "(nothing yet)".into()))?;
    if let Some(at) = get("deployedAt") {
        writeln!(out, "{} {at}", paint(BOLD, "Deployed at:   "))?;
    }
    let outcome = get("lastOutcome").unwrap_or_default();
    writeln!(out, "{} {} ({})", paint(BOLD, "Last attempted:"), get("lastAttempted").unwrap_or_else(|| "-".into()), outcome)?;
    match get("drift") {
        Some(d) => writeln!(out, "{} {}", paint(BOLD, "Drift:         "), paint(YELLOW, &d))?,
        None => writeln!(out, "{} none", paint(BOLD, "Drift:         "))?,
    }
    if let Some(rs) = s.get("reconcilers").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        writeln!(out, "{}", paint(BOLD, "Reconcilers:"))?;
        for r in rs {
            writeln!(out, "  {:<8} {}", r["role"].as_str().unwrap_or("?"), r["name"].as_str().unwrap_or(""))?;
        }
    }
    if let Some(servers) = s.get("servers").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        writeln!(out, "{}", paint(BOLD, "Servers:"))?;
        for sv in servers {
            let st = &sv["status"];
            let replicas =
                st.get("replicas").and_then(Value::as_array).filter(|r| r.iter().all(|x| x.get("state").is_some_and(Value::is_object)));
            let state = replicas
                .map(|r| {
                    format!("replicas: {}", r.iter().map(|x| x["state"]["state"].as_str().unwrap_or("?")).collect::<Vec<_>>().join(", "))
                })
                .or_else(|| {
                    st.get("state").and_then(|x| x.get("state")).or_else(|| st.get("state")).and_then(Value::as_str).map(str::to_string)
                })
                .or_else(|| st.get("ready").map(|r| format!("{r}/{} ready", st["replicas"])))
                .or_else(|| {
                    st.get("health").and_then(Value::as_str).map(|h| {
                        format!(
                            "{h} (health restarts {}{})",
                            st["check"]["restarts"],
                            st["check"]["lastError"].as_str().map(|e| format!("; last error: {e}")).unwrap_or_default()
                        )
                    })
                })
                .unwrap_or_else(|| st.to_string());
            writeln!(out, "  {:<11} {:<24} {state}", sv["runtime"].as_str().unwrap_or(""), sv["server"].as_str().unwrap_or(""))?;
        }
    }
    if let (Some(e), "failed") = (get("lastError"), outcome.as_str()) {
        writeln!(out, "{}", paint(BOLD, "Last error:"))?;
        for line in e.lines() {
            writeln!(out, "  {}", paint(RED, line))?;
        }
    }
    Ok(())
}

/// The "Access changes" section of a PR review (`plan --base --format markdown`): a table of
/// each subject's gains and losses, escalations flagged ⚠️, the servers projects gain or lose,
/// and the blast radius when a gateway was asked.
pub fn access_markdown(
    out: &mut impl Write,
    a: &schema::access::AccessDiff,
    blast: Option<&crate::commands::review::Blast>,
) -> io::Result<()> {
    writeln!(out, "\n### Access changes\n")?;
    if a.is_empty() {
        return writeln!(out, "No subject gains or loses a permission.");
    }
    let flagged = a.subjects.iter().filter(|s| !s.escalations.is_empty()).count();
    if flagged > 0 {
        writeln!(out, "> [!WARNING]\n> ⚠️ **{flagged} escalation(s)** need a reviewer's eye.\n")?;
    }
    if !a.subjects.is_empty() {
        writeln!(out, "| Subject | Gains | Losses | Flags |\n|---|---|---|---|")?;
        let cell = |g: &[schema::access::Grant]| g.iter().map(ToString::to_string).collect::<Vec<_>>().join("<br>");
        for s in &a.subjects {
            let mark = if s.escalations.is_empty() { "" } else { "⚠️ " };
            let flags = s.escalations.iter().map(|e| format!("⚠️ {e}")).collect::<Vec<_>>().join("<br>");
            writeln!(out, "| {mark}`{}` | {} | {} | {flags} |", s.subject, cell(&s.gains), cell(&s.losses))?;
        }
    }
    if !a.surfaces.is_empty() {
        writeln!(out, "\n**Tool surface**\n")?;
        for s in &a.surfaces {
            for srv in &s.added_servers {
                writeln!(out, "- adds server `{srv}` to {}", s.project)?;
            }
            for srv in &s.removed_servers {
                writeln!(out, "- removes server `{srv}` from {}", s.project)?;
            }
        }
    }
    if let Some(b) = blast {
        writeln!(out, "\n**Blast radius** (from the gateway)\n")?;
        for line in b.lines() {
            writeln!(out, "- {line}")?;
        }
    }
    Ok(())
}

/// The access changes as text, after the text plan.
pub fn access_text(out: &mut impl Write, a: &schema::access::AccessDiff, blast: Option<&crate::commands::review::Blast>) -> io::Result<()> {
    if a.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{}", paint(BOLD, "Access changes:"))?;
    for s in &a.subjects {
        writeln!(out, "  {}", paint(BOLD, &s.subject))?;
        for g in &s.gains {
            writeln!(out, "      {}", paint(GREEN, &format!("+ {g}")))?;
        }
        for g in &s.losses {
            writeln!(out, "      {}", paint(RED, &format!("- {g}")))?;
        }
        for e in &s.escalations {
            writeln!(out, "      {}", paint(YELLOW, &format!("! {e}")))?;
        }
    }
    for s in &a.surfaces {
        for srv in &s.added_servers {
            writeln!(out, "  {} adds server {srv}", s.project)?;
        }
        for srv in &s.removed_servers {
            writeln!(out, "  {} removes server {srv}", s.project)?;
        }
    }
    for line in blast.map(crate::commands::review::Blast::lines).unwrap_or_default() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}
