//! Screens of the console drawn on ratatui's `TestBackend` (160×48, as the tmux test uses),
//! asserted as text: each pane, the form with a validation error, the inspector expanded and
//! filtered, the audit tab and the help overlay.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;

use super::app::{Action, App, Tab};
use super::client::{Entry, Request, Update};
use super::feed::FeedItem;
use super::wire::{Captured, Direction};

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(160, 48)).unwrap();
    t.draw(|f| app.render(f)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn key(app: &mut App, c: KeyCode) -> Vec<Action> {
    app.on_key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn typed(app: &mut App, s: &str) {
    for ch in s.chars() {
        key(app, KeyCode::Char(ch));
    }
}

fn time_tool() -> Entry {
    Entry {
        name: "time__get_current_time".into(),
        description: "Get current time in a specific timezone".into(),
        schema: json!({"type": "object", "required": ["timezone"], "properties": {"timezone": {"type": "string", "description": "IANA timezone name"}}}),
    }
}

fn connected() -> App {
    let mut app = App::new("http://127.0.0.1:8080/projects/homelab/mcp", "t.jsonl", "following");
    app.on_update(Update::Connected { protocol: "2025-11-25".into(), server: "mcpctl-gateway 0.1.0".into() });
    app
}

#[test]
fn the_gate_then_a_tool_form_then_its_result() {
    let mut app = connected();
    let gate = Entry {
        name: "begin_session".into(),
        description: "Start working in this project".into(),
        schema: json!({"type": "object", "properties": {"task": {"type": "string"}}}),
    };
    app.on_update(Update::Listed { tools: vec![gate], prompts: vec![], resources: vec![], notes: vec![] });
    let s = screen(&app);
    assert!(s.contains("protocol 2025-11-25 · mcpctl-gateway 0.1.0 · GATED (press g)"), "{s}");
    assert!(s.contains("1 Tools (1)") && s.contains("4 Inspector (0)"), "{s}");
    assert!(s.contains("This project is gated"), "{s}");

    key(&mut app, KeyCode::Char('g'));
    assert!(screen(&app).contains("Call tool begin_session"), "the gate's form opens");
    assert!(screen(&app).contains("task (string): "), "the gate's optional task argument is a field");
    typed(&mut app, "check the NAS");
    let sent = key(&mut app, KeyCode::Enter);
    assert_eq!(
        sent,
        vec![Action::Send(Request::CallTool {
            name: "begin_session".into(),
            args: json!({"task": "check the NAS"}).as_object().unwrap().clone()
        })]
    );
    assert!(screen(&app).contains("1 in flight"));

    app.on_update(Update::Answer {
        title: "tools/call begin_session".into(),
        result: Ok(json!({"content": [{"type": "text", "text": "You operate a home lab."}]})),
    });
    app.on_update(Update::Listed { tools: vec![time_tool()], prompts: vec![], resources: vec![], notes: vec![] });
    let s = screen(&app);
    assert!(!s.contains("GATED"), "{s}");
    assert!(s.contains("> time__get_current_time") && s.contains("timezone (string, required) IANA timezone name"), "{s}");

    key(&mut app, KeyCode::Enter);
    assert_eq!(key(&mut app, KeyCode::Enter), vec![], "an empty required field is not sent");
    let s = screen(&app);
    assert!(s.contains("invalid: timezone: required"), "{s}");
    typed(&mut app, "UTC");
    let sent = key(&mut app, KeyCode::Enter);
    assert_eq!(
        sent,
        vec![Action::Send(Request::CallTool {
            name: "time__get_current_time".into(),
            args: json!({"timezone": "UTC"}).as_object().unwrap().clone()
        })]
    );
    let result = json!({"content": [{"type": "text", "text": "{\"timezone\": \"UTC\", \"datetime\": \"2026-12-03T16:00:00+00:00\", \"is_dst\": false}"}], "isError": false});
    app.on_update(Update::Answer { title: "tools/call time__get_current_time".into(), result: Ok(result) });
    let s = screen(&app);
    assert!(s.contains("── tools/call time__get_current_time ──") && s.contains("[text: JSON]"), "{s}");
    assert!(s.contains("\"datetime\": \"2026-12-03T16:00:00+00:00\","), "{s}");
    assert!(s.contains("tools/call time__get_current_time: ok"), "{s}");
}

#[test]
fn prompts_and_resources_panes() {
    let mut app = connected();
    let prompt = Entry {
        name: "rules".into(),
        description: "House rules".into(),
        schema: json!({"type": "object", "properties": {}, "required": []}),
    };
    let res = Entry { name: "file:///notes.txt".into(), description: "notes (text/plain)".into(), schema: serde_json::Value::Null };
    app.on_update(Update::Listed { tools: vec![time_tool()], prompts: vec![prompt], resources: vec![res], notes: vec![] });
    key(&mut app, KeyCode::Char('2'));
    let s = screen(&app);
    assert!(s.contains("> rules") && s.contains("House rules") && s.contains("No arguments."), "{s}");
    key(&mut app, KeyCode::Enter);
    assert!(screen(&app).contains("Get prompt rules"));
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Action::Send(Request::GetPrompt { name: "rules".into(), args: Default::default() })]);
    app.on_update(Update::Answer {
        title: "prompts/get rules".into(),
        result: Ok(json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Never power off the NAS."}}]})),
    });
    let s = screen(&app);
    assert!(s.contains("[user]") && s.contains("Never power off the NAS."), "{s}");

    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Resources);
    assert!(screen(&app).contains("> file:///notes.txt"));
    assert_eq!(key(&mut app, KeyCode::Enter), vec![Action::Send(Request::ReadResource { uri: "file:///notes.txt".into() })]);
    app.on_update(Update::Answer { title: "resources/read".into(), result: Err("-32002: not found".into()) });
    assert!(screen(&app).contains("error: -32002: not found"));
}

#[test]
fn the_inspector_lists_expands_filters_and_saves() {
    let mut app = connected();
    app.on_wire(Captured::new(Direction::Sent, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})));
    app.on_wire(Captured::new(
        Direction::Received,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "time__get_current_time", "inputSchema": {"type": "object"}}]}}),
    ));
    app.on_wire(Captured::new(Direction::Sent, json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}})));
    let changed = app.on_wire(Captured::new(Direction::Received, json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})));
    assert_eq!(changed, vec![Action::Send(Request::Refresh)], "a list change asks for the lists again");
    key(&mut app, KeyCode::Char('4'));
    let s = screen(&app);
    assert!(s.contains("Messages 4/4"), "{s}");
    assert!(s.contains("→ out tools/list") && s.contains("← in  tools/list (result)") && s.contains("→ out tools/call"), "{s}");
    key(&mut app, KeyCode::Up);
    assert!(s.contains("notifications/tools/list_changed"), "{s}");
    let s = screen(&app);
    assert!(s.contains("Message 3 (Enter expands)") && s.contains("\"params\": {…2 keys}"), "folded: {s}");
    key(&mut app, KeyCode::Enter);
    let s = screen(&app);
    assert!(s.contains("Message 3 (full)") && s.contains("\"timezone\": \"UTC\""), "{s}");
    key(&mut app, KeyCode::Esc);

    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "tools/call");
    let s = screen(&app);
    assert!(s.contains("Messages 1/4 · filter `tools/call`") && s.contains("filter: tools/call"), "{s}");
    key(&mut app, KeyCode::Enter);

    key(&mut app, KeyCode::Char('s'));
    assert!(screen(&app).contains("save transcript to: t.jsonl"));
    let save = key(&mut app, KeyCode::Enter);
    let [Action::Save { path, text }] = save.as_slice() else { panic!("{save:?}") };
    assert_eq!(path, "t.jsonl");
    assert_eq!(text.lines().count(), 4, "the transcript has every message, not only the filtered ones");
    app.on_saved(path, Ok(4));
    assert!(screen(&app).contains("transcript saved to t.jsonl (4 messages)"));
}

#[test]
fn the_audit_tab_follows_and_help_lists_the_keys() {
    let mut app = connected();
    for (i, outcome) in ["ok", "denied"].iter().enumerate() {
        app.on_feed(FeedItem::Event(json!({"at": format!("2026-12-03T16:00:0{i}.000Z"), "token": "claude-desktop", "server": "time", "method": "tools/call", "target": "get_current_time", "outcome": outcome, "durationUs": 2300})));
    }
    app.on_feed(FeedItem::Dropped(4));
    key(&mut app, KeyCode::Char('5'));
    let s = screen(&app);
    assert!(s.contains("5 Audit (2)") && s.contains("4 event(s) dropped"), "{s}");
    assert!(s.contains("TIME          TOKEN            SERVER       METHOD         TOOL"), "{s}");
    assert!(
        s.contains("16:00:01.000  claude-desktop   time         tools/call     get_current_time             denied      2.3 ms"),
        "{s}"
    );
    key(&mut app, KeyCode::Char('?'));
    let s = screen(&app);
    assert!(s.contains("Keys (any key closes)") && s.contains("save the transcript (.jsonl) of every message"), "{s}");
    key(&mut app, KeyCode::Char('x'));
    assert!(!screen(&app).contains("Keys (any key closes)"));
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Action::Quit]);
}
