//! The console's state and what keys and messages do to it. Pure: no I/O happens here; what
//! needs I/O comes back as an [`Action`] for the loop in `commands/console.rs` to carry out, so
//! everything on screen can be driven and checked in tests (`TestBackend`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use serde_json::Value;

use super::client::{Entry, Request, Update};
use super::feed::FeedItem;
use super::form::{self, Form, Target};
use super::inspector::Inspector;
use super::wire::Captured;

/// Audit events kept in the Audit tab (the oldest go first).
pub const MAX_AUDIT_LINES: usize = 1000;

/// The panes, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Tools,
    Prompts,
    Resources,
    Inspector,
    Audit,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Tools, Tab::Prompts, Tab::Resources, Tab::Inspector, Tab::Audit];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Tools => "Tools",
            Tab::Prompts => "Prompts",
            Tab::Resources => "Resources",
            Tab::Inspector => "Inspector",
            Tab::Audit => "Audit",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// What the loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(Request),
    /// Write `text` to `path` (the transcript); report with [`App::on_saved`].
    Save {
        path: String,
        text: String,
    },
    Quit,
}

/// A one-line input at the bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    Filter,
    SavePath,
}

#[derive(Debug, Clone)]
pub struct Input {
    pub purpose: Purpose,
    pub text: String,
}

/// The last answer shown.
#[derive(Debug, Clone)]
pub struct Shown {
    pub title: String,
    pub result: Result<Value, String>,
}

/// Connection state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Connected { protocol: String, server: String },
    Failed(String),
}

/// Everything the console shows.
#[derive(Debug)]
pub struct App {
    pub url: String,
    pub link: Link,
    pub tab: Tab,
    pub tools: Vec<Entry>,
    pub prompts: Vec<Entry>,
    pub resources: Vec<Entry>,
    /// Selected row of each tab (the Inspector keeps its own).
    pub selected: [usize; 5],
    pub form: Option<Form>,
    pub shown: Option<Shown>,
    /// Whether JSON in results is folded.
    pub folded: bool,
    /// Lines the detail pane is scrolled by.
    pub scroll: u16,
    pub inspector: Inspector,
    pub audit: std::collections::VecDeque<Value>,
    /// State of the audit stream (`following`, an error, …).
    pub audit_note: String,
    pub help: bool,
    pub input: Option<Input>,
    /// The last notice (saved, errors, notes from listing).
    pub notice: String,
    /// Requests sent and not answered.
    pub in_flight: usize,
    /// Where `s` proposes to save the transcript.
    pub transcript_path: String,
}

impl App {
    pub fn new(url: &str, transcript_path: &str, audit_note: &str) -> App {
        App {
            url: url.to_owned(),
            link: Link::Connecting,
            tab: Tab::Tools,
            tools: Vec::new(),
            prompts: Vec::new(),
            resources: Vec::new(),
            selected: [0; 5],
            form: None,
            shown: None,
            folded: true,
            scroll: 0,
            inspector: Inspector::default(),
            audit: Default::default(),
            audit_note: audit_note.to_owned(),
            help: false,
            input: None,
            notice: "? for help".into(),
            in_flight: 0,
            transcript_path: transcript_path.to_owned(),
        }
    }

    /// Whether the session sees only the gate (`begin_session`).
    pub fn gated(&self) -> bool {
        self.tools.len() == 1 && self.tools[0].name == gateway::mcp::BEGIN_SESSION
    }

    /// The entries of a list tab.
    pub fn entries(&self, tab: Tab) -> &[Entry] {
        match tab {
            Tab::Tools => &self.tools,
            Tab::Prompts => &self.prompts,
            Tab::Resources => &self.resources,
            _ => &[],
        }
    }

    fn selected_entry(&self) -> Option<&Entry> {
        self.entries(self.tab).get(self.selected[self.tab.index()])
    }

    /// A message from the client, the transport tap or the audit feed.
    pub fn on_update(&mut self, u: Update) {
        match u {
            Update::Connected { protocol, server } => self.link = Link::Connected { protocol, server },
            Update::Listed { tools, prompts, resources, notes } => {
                self.tools = tools;
                self.prompts = prompts;
                self.resources = resources;
                for (i, n) in [self.tools.len(), self.prompts.len(), self.resources.len()].into_iter().enumerate() {
                    self.selected[i] = self.selected[i].min(n.saturating_sub(1));
                }
                if !notes.is_empty() {
                    self.notice = notes.join("; ");
                }
            }
            Update::Answer { title, result } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.notice = match &result {
                    Ok(v) if v.get("isError").and_then(Value::as_bool) == Some(true) => format!("{title}: isError"),
                    Ok(_) => format!("{title}: ok"),
                    Err(e) => format!("{title}: {e}"),
                };
                self.shown = Some(Shown { title, result });
                self.scroll = 0;
            }
            Update::Failed(e) => {
                self.notice = e.clone();
                self.link = Link::Failed(e);
            }
        }
    }

    /// A message captured at the transport; a `notifications/*/list_changed` from the server asks
    /// for the lists again.
    pub fn on_wire(&mut self, c: Captured) -> Vec<Action> {
        let follow = self.inspector.selected + 1 >= self.inspector.visible().len();
        let changed = c.direction == super::wire::Direction::Received
            && c.message
                .get("method")
                .and_then(Value::as_str)
                .is_some_and(|m| m.starts_with("notifications/") && m.ends_with("/list_changed"));
        self.inspector.push(c);
        if follow && !self.inspector.expanded {
            self.inspector.select_last();
        }
        if changed {
            vec![Action::Send(Request::Refresh)]
        } else {
            Vec::new()
        }
    }

    /// An item of the audit feed.
    pub fn on_feed(&mut self, f: FeedItem) {
        match f {
            FeedItem::Event(e) => {
                self.audit.push_back(e);
                if self.audit.len() > MAX_AUDIT_LINES {
                    self.audit.pop_front();
                }
                self.selected[4] = self.audit.len().saturating_sub(1);
            }
            FeedItem::Dropped(n) => self.audit_note = format!("following; {n} event(s) dropped (this console fell behind)"),
            FeedItem::Ended(r) => self.audit_note = format!("stream ended: {r}"),
            FeedItem::Failed(e) => self.audit_note = format!("not following: {e}"),
        }
    }

    /// The result of an [`Action::Save`].
    pub fn on_saved(&mut self, path: &str, r: Result<usize, String>) {
        self.notice = match r {
            Ok(n) => format!("transcript saved to {path} ({n} messages)"),
            Err(e) => format!("cannot save {path}: {e}"),
        };
    }

    fn send(&mut self, r: Request) -> Vec<Action> {
        self.in_flight += 1;
        vec![Action::Send(r)]
    }

    fn open_form(&mut self, target: Target, schema: &Value) {
        self.form = Some(Form::from_schema(target, schema));
    }

    /// A key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return vec![Action::Quit];
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        if let Some(form) = &mut self.form {
            return match form.on_key(key) {
                form::Outcome::Editing => Vec::new(),
                form::Outcome::Cancel => {
                    self.form = None;
                    Vec::new()
                }
                form::Outcome::Submit(args) => {
                    let target = self.form.take().map(|f| f.target);
                    match target {
                        Some(Target::Tool(name)) => self.send(Request::CallTool { name, args }),
                        Some(Target::Prompt(name)) => self.send(Request::GetPrompt { name, args }),
                        None => Vec::new(),
                    }
                }
            };
        }
        if let Some(input) = &mut self.input {
            match key.code {
                KeyCode::Esc => {
                    if input.purpose == Purpose::Filter {
                        self.inspector.filter.clear();
                    }
                    self.input = None;
                }
                KeyCode::Enter => {
                    let input = self.input.take().expect("input");
                    if input.purpose == Purpose::SavePath {
                        return vec![Action::Save { path: input.text, text: self.inspector.transcript() }];
                    }
                }
                KeyCode::Backspace => {
                    input.text.pop();
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => input.text.clear(),
                KeyCode::Char(c) => input.text.push(c),
                _ => {}
            }
            if let Some(Input { purpose: Purpose::Filter, text }) = &self.input {
                self.inspector.filter = text.clone();
                self.inspector.selected = 0;
                self.inspector.select_last();
            }
            return Vec::new();
        }
        self.on_command_key(key)
    }

    fn on_command_key(&mut self, key: KeyEvent) -> Vec<Action> {
        match key.code {
            KeyCode::Char('q') => return vec![Action::Quit],
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char(c @ '1'..='5') => self.tab = Tab::ALL[(c as usize) - ('1' as usize)],
            KeyCode::Tab => self.tab = Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()],
            KeyCode::BackTab => self.tab = Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()],
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Char('z') => self.folded = !self.folded,
            KeyCode::Char('r') => return vec![Action::Send(Request::Refresh)],
            KeyCode::Char('s') => self.input = Some(Input { purpose: Purpose::SavePath, text: self.transcript_path.clone() }),
            KeyCode::Char('/') if self.tab == Tab::Inspector => {
                self.input = Some(Input { purpose: Purpose::Filter, text: self.inspector.filter.clone() })
            }
            KeyCode::Char('g') if self.gated() => {
                let gate = self.tools[0].clone();
                self.tab = Tab::Tools;
                self.open_form(Target::Tool(gate.name), &gate.schema);
            }
            KeyCode::Esc => {
                self.inspector.expanded = false;
                self.shown = None;
            }
            KeyCode::Enter => return self.activate(),
            _ => {}
        }
        Vec::new()
    }

    fn move_selection(&mut self, delta: isize) {
        self.scroll = 0;
        match self.tab {
            Tab::Inspector => self.inspector.select(delta),
            tab => {
                let n = if tab == Tab::Audit { self.audit.len() } else { self.entries(tab).len() };
                let s = &mut self.selected[tab.index()];
                *s = s.saturating_add_signed(delta).min(n.saturating_sub(1));
            }
        }
    }

    /// Enter: open the selected tool's or prompt's form, read the resource, expand the message.
    fn activate(&mut self) -> Vec<Action> {
        let Some(e) = self.selected_entry().cloned() else {
            if self.tab == Tab::Inspector {
                self.inspector.expanded = !self.inspector.expanded;
                self.scroll = 0;
            }
            return Vec::new();
        };
        match self.tab {
            Tab::Tools => self.open_form(Target::Tool(e.name), &e.schema),
            Tab::Prompts => self.open_form(Target::Prompt(e.name), &e.schema),
            Tab::Resources => return self.send(Request::ReadResource { uri: e.name }),
            _ => {}
        }
        Vec::new()
    }

    /// Draw the whole screen.
    pub fn render(&self, frame: &mut Frame) {
        super::view::render(self, frame);
    }
}
