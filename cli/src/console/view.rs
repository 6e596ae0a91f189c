//! Drawing the console: the status line, the tabs, the pane of the current tab (Tools, Prompts,
//! Resources, Inspector, Audit), the bottom line, and the form and help overlays. Reads the
//! [`App`]; changes nothing.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Tabs, Wrap};
use ratatui::Frame;
use serde_json::Value;

use super::app::{App, Link, Purpose, Tab};
use super::feed;
use super::outcome::{self, FOLD_DEPTH};

/// The keys, as the help overlay and docs/console.md list them.
pub const KEYS: &[(&str, &str)] = &[
    ("1-5, Tab, Shift-Tab", "switch pane: Tools, Prompts, Resources, Inspector, Audit"),
    ("↑/↓, j/k", "move the selection"),
    ("Enter", "tool/prompt: open its form · resource: read it · inspector: expand/collapse the message"),
    ("g", "open the gate (call begin_session through its form) on a gated project"),
    ("in a form", "type to fill · Tab/↓ next · Shift-Tab/↑ previous · space/←/→ toggle or cycle · Enter send · Esc cancel"),
    ("z", "fold/unfold JSON in results"),
    ("PgUp/PgDn", "scroll the detail"),
    ("/", "inspector: filter (method, in/out, id or any text); Esc clears"),
    ("Ctrl-U", "clear the field or input line"),
    ("s", "save the transcript (.jsonl) of every message"),
    ("r", "list tools, prompts and resources again"),
    ("Esc", "close the result or collapse the message"),
    ("?", "this help (any key closes it)"),
    ("q, Ctrl-C", "quit"),
];

fn count(app: &App, t: Tab) -> usize {
    match t {
        Tab::Inspector => app.inspector.len(),
        Tab::Audit => app.audit.len(),
        t => app.entries(t).len(),
    }
}

fn status_line(app: &App) -> String {
    let link = match &app.link {
        Link::Connecting => "connecting…".to_string(),
        Link::Connected { protocol, server } => format!("connected · protocol {protocol} · {server}"),
        Link::Failed(e) => format!("FAILED: {e}"),
    };
    let gate = if app.gated() { " · GATED (press g)" } else { "" };
    let busy = if app.in_flight > 0 { format!(" · {} in flight", app.in_flight) } else { String::new() };
    format!("mcpctl console · {} · {link}{gate}{busy}", reconciler::redact::urls(&app.url))
}

/// Draw everything.
pub fn render(app: &App, f: &mut Frame) {
    let [top, tabs, main, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(f.area());
    f.render_widget(Paragraph::new(status_line(app)).style(Style::default().add_modifier(Modifier::BOLD)), top);
    let titles: Vec<String> = Tab::ALL.iter().enumerate().map(|(i, t)| format!("{} {} ({})", i + 1, t.title(), count(app, *t))).collect();
    f.render_widget(Tabs::new(titles).select(app.tab.index()).highlight_style(Style::default().add_modifier(Modifier::REVERSED)), tabs);
    match app.tab {
        Tab::Tools | Tab::Prompts | Tab::Resources => list_pane(app, f, main),
        Tab::Inspector => inspector_pane(app, f, main),
        Tab::Audit => audit_pane(app, f, main),
    }
    let line = match &app.input {
        Some(i) if i.purpose == Purpose::Filter => format!("filter: {}▏ (Enter keeps, Esc clears)", i.text),
        Some(i) => format!("save transcript to: {}▏ (Enter saves, Esc cancels)", i.text),
        None => app.notice.clone(),
    };
    f.render_widget(Paragraph::new(line), bottom);
    if app.form.is_some() {
        form_overlay(app, f);
    }
    if app.help {
        help_overlay(f);
    }
}

fn list_pane(app: &App, f: &mut Frame, area: Rect) {
    let [left, right] = Layout::horizontal([Constraint::Percentage(35), Constraint::Percentage(65)]).areas(area);
    let entries = app.entries(app.tab);
    let items: Vec<ListItem> = entries.iter().map(|e| ListItem::new(e.name.clone())).collect();
    let mut state = ListState::default().with_selected((!entries.is_empty()).then_some(app.selected[app.tab.index()]));
    let list = List::new(items)
        .block(Block::default().borders(Borders::ALL).title(app.tab.title()))
        .highlight_symbol("> ")
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    f.render_stateful_widget(list, left, &mut state);

    let mut lines: Vec<Line> = Vec::new();
    if let Some(e) = entries.get(app.selected[app.tab.index()]) {
        lines.push(Line::styled(e.name.clone(), Style::default().add_modifier(Modifier::BOLD)));
        lines.extend(e.description.lines().map(|l| Line::from(l.to_owned())));
        if let Some(props) = e.schema.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> = e
                .schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            lines.push(Line::from(""));
            lines.push(Line::from(if props.is_empty() { "No arguments." } else { "Arguments:" }));
            for (name, s) in props {
                let t = s.get("type").and_then(Value::as_str).unwrap_or("any");
                let req = if required.contains(&name.as_str()) { ", required" } else { "" };
                let desc = s.get("description").and_then(Value::as_str).unwrap_or_default();
                lines.push(Line::from(format!("  {name} ({t}{req}) {desc}")));
            }
        }
        let hint = match app.tab {
            Tab::Resources => "Enter reads it.",
            _ if app.gated() => "This project is gated: Enter (or g) calls begin_session, then its tools appear.",
            _ => "Enter opens the form.",
        };
        lines.push(Line::from(""));
        lines.push(Line::styled(hint, Style::default().fg(Color::DarkGray)));
    } else {
        lines.push(Line::from(format!("No {} (r lists again).", app.tab.title().to_lowercase())));
    }
    if let Some(s) = &app.shown {
        lines.push(Line::from(""));
        lines.push(Line::styled(format!("── {} ──", s.title), Style::default().add_modifier(Modifier::BOLD)));
        match &s.result {
            Ok(v) => lines.extend(outcome::result_lines(v, app.folded.then_some(FOLD_DEPTH)).into_iter().map(Line::from)),
            Err(e) => lines.push(Line::styled(format!("error: {e}"), Style::default().fg(Color::Red))),
        }
    }
    let detail = Paragraph::new(lines)
        .block(Block::default().borders(Borders::ALL).title("Detail"))
        .wrap(Wrap { trim: false })
        .scroll((app.scroll, 0));
    f.render_widget(detail, right);
}

fn inspector_pane(app: &App, f: &mut Frame, area: Rect) {
    let [top, bottom] = Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    let visible = app.inspector.visible();
    let items: Vec<ListItem> = visible.iter().map(|r| ListItem::new(r.summary())).collect();
    let mut state = ListState::default().with_selected((!visible.is_empty()).then_some(app.inspector.selected));
    let mut title = format!("Messages {}/{}", visible.len(), app.inspector.len());
    if !app.inspector.filter.is_empty() {
        title.push_str(&format!(" · filter `{}`", app.inspector.filter));
    }
    if app.inspector.dropped > 0 {
        title.push_str(&format!(" · {} oldest dropped", app.inspector.dropped));
    }
    let list = List::new(items)
        .block(Block::default().borders(Borders::ALL).title(title))
        .highlight_symbol("> ")
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    f.render_stateful_widget(list, top, &mut state);
    let (title, lines) = match app.inspector.current() {
        Some(r) if app.inspector.expanded => (format!("Message {} (full)", r.seq), outcome::json_lines(&r.message, None)),
        Some(r) => (format!("Message {} (Enter expands)", r.seq), outcome::json_lines(&r.message, Some(1))),
        None if app.inspector.is_empty() => ("Message".into(), vec!["Nothing captured yet.".into()]),
        None => ("Message".into(), vec!["No message matches the filter.".into()]),
    };
    let detail = Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>())
        .block(Block::default().borders(Borders::ALL).title(title))
        .scroll((app.scroll, 0));
    f.render_widget(detail, bottom);
}

fn audit_pane(app: &App, f: &mut Frame, area: Rect) {
    let block = Block::default().borders(Borders::ALL).title(format!("Audit · {}", app.audit_note));
    let inner = block.inner(area);
    let rows = usize::from(inner.height.saturating_sub(1));
    let skip = app.audit.len().saturating_sub(rows);
    let mut lines = vec![Line::styled(feed::header(), Style::default().add_modifier(Modifier::BOLD))];
    lines.extend(app.audit.iter().skip(skip).map(|e| {
        let style = match e.get("outcome").and_then(Value::as_str) {
            Some("ok") => Style::default(),
            _ => Style::default().fg(Color::Red),
        };
        Line::styled(feed::line(e), style)
    }));
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// A rectangle `w`×`h` centred in `r` (clamped to it).
fn centred(r: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(r.width);
    let h = h.min(r.height);
    Rect { x: r.x + (r.width - w) / 2, y: r.y + (r.height - h) / 2, width: w, height: h }
}

fn form_overlay(app: &App, f: &mut Frame) {
    let Some(form) = &app.form else { return };
    let what = match &form.target {
        super::form::Target::Tool(n) => format!("Call tool {n}"),
        super::form::Target::Prompt(n) => format!("Get prompt {n}"),
    };
    let mut lines: Vec<Line> = Vec::new();
    if form.fields.is_empty() {
        lines.push(Line::from("No arguments."));
    }
    for (i, fld) in form.fields.iter().enumerate() {
        let focus = i == form.focus;
        let cursor = if focus { "▏" } else { "" };
        let style = if focus { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() };
        lines.push(Line::styled(format!("{} {} ({}): {}{cursor}", if focus { ">" } else { " " }, fld.name, fld.label(), fld.value), style));
        if let Some(d) = &fld.description {
            lines.push(Line::styled(format!("    {d}"), Style::default().fg(Color::DarkGray)));
        }
    }
    lines.push(Line::from(""));
    if let Some(e) = &form.error {
        lines.push(Line::styled(format!("invalid: {e}"), Style::default().fg(Color::Red)));
    }
    lines.push(Line::from("Enter send · Tab next field · Esc cancel"));
    let area = centred(f.area(), f.area().width * 4 / 5, (lines.len() as u16).saturating_add(2));
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(what)).wrap(Wrap { trim: false }), area);
}

fn help_overlay(f: &mut Frame) {
    let lines: Vec<Line> = KEYS.iter().map(|(k, what)| Line::from(format!("{k:<22} {what}"))).collect();
    let area = centred(f.area(), f.area().width * 9 / 10, KEYS.len() as u16 + 2);
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title("Keys (any key closes)")), area);
}
