//! YAML text → trees of positioned nodes, straight from the parser's event stream.
//!
//! Every node keeps the line and column the parser gave it, so an error found long after parsing
//! (a dangling reference, a wrong type) still points at the exact place in the file without
//! re-scanning text. Duplicate mapping keys are rejected here, aliases are expanded (with a cap
//! against "billion laughs" documents), and scalars are resolved with YAML 1.2's core schema.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// The value of a node after core-schema resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One key/value pair of a mapping; keys are always strings here.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// One step of a path into a document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A syntax-level problem with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Upper bound on nodes one file may expand to (aliases included).
pub const MAX_NODES: usize = 2_000_000;

impl Node {
    /// The entries of a mapping node, or `None`.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of key `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Where the value at `path` starts. When the path leaves the tree, the deepest node reached
    /// is returned; when the last step is a key that exists, the key's own position is used for
    /// `key_pos = true` (handy for "unknown field" errors).
    pub fn locate(&self, path: &[Seg], key_pos: bool) -> Pos {
        let mut node = self;
        for (i, seg) in path.iter().enumerate() {
            let next = match seg {
                Seg::Key(k) => match node.entry(k) {
                    Some(e) if key_pos && i + 1 == path.len() => return e.key_pos,
                    Some(e) => &e.value,
                    None => return node.pos,
                },
                Seg::Index(idx) => match &node.value {
                    Value::Seq(items) if *idx < items.len() => &items[*idx],
                    _ => return node.pos,
                },
            };
            node = next;
        }
        node.pos
    }

    /// Convert to a JSON value for typed deserialization.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos::new(span.start.line() as u32, span.start.col() as u32 + 1)
}

enum Frame {
    Seq { pos: Pos, anchor: usize, items: Vec<Node> },
    Map { pos: Pos, anchor: usize, entries: Vec<Entry>, key: Option<(String, Pos)> },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    nodes: usize,
}

impl Builder {
    fn count(&mut self, n: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos,
                message: format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
            });
        }
        Ok(())
    }

    /// Attach a finished node to its parent (or finish a document).
    fn push(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    let k = scalar_key(&node)?;
                    if let Some(prev) = entries.iter().find(|e| e.key == k) {
                        return Err(SyntaxError {
                            pos: node.pos,
                            message: format!(
                                "duplicate key `{k}` (first defined at line {})",
                                prev.key_pos.line
                            ),
                        });
                    }
                    *key = Some((k, node.pos));
                }
                Some((k, key_pos)) => entries.push(Entry { key: k, key_pos, value: node }),
            },
        }
        Ok(())
    }
}

fn scalar_key(node: &Node) -> Result<String, SyntaxError> {
    Ok(match &node.value {
        Value::Str(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Seq(_) | Value::Map(_) => {
            return Err(SyntaxError {
                pos: node.pos,
                message: "mapping keys must be scalars".into(),
            })
        }
    })
}

fn resolve_scalar(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&Cow<'_, Tag>>,
    pos: Pos,
) -> Result<Value, SyntaxError> {
    let scalar = Scalar::parse_from_cow_and_metadata(text, style, tag).ok_or_else(|| SyntaxError {
        pos,
        message: "scalar does not match its tag".into(),
    })?;
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(b),
        Scalar::Integer(i) => Value::Int(i),
        Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
        Scalar::String(s) => Value::Str(s.into_owned()),
    })
}

/// Parse every document of `text`.
///
/// # Errors
/// The first syntax error, duplicate key, non-scalar key, unknown alias or alias bomb, with its
/// position. A file either parses whole or not at all.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut b = Builder { stack: Vec::new(), anchors: HashMap::new(), docs: Vec::new(), nodes: 0 };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            pos: Pos::new(e.marker().line() as u32, e.marker().col() as u32 + 1),
            message: e.info().to_string(),
        })?;
        let pos = pos_of(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                b.count(1, pos)?;
                let value = resolve_scalar(text, style, tag.as_ref(), pos)?;
                b.push(Node { pos, value }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                b.stack.push(Frame::Seq { pos, anchor, items: Vec::new() })
            }
            Event::MappingStart(anchor, _) => {
                b.stack.push(Frame::Map { pos, anchor, entries: Vec::new(), key: None })
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match b.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => {
                        (Node { pos, value: Value::Seq(items) }, anchor)
                    }
                    Some(Frame::Map { pos, anchor, entries, .. }) => {
                        (Node { pos, value: Value::Map(entries) }, anchor)
                    }
                    None => continue,
                };
                b.count(1, pos)?;
                b.push(node, anchor)?;
            }
            Event::Alias(id) => {
                let node = b.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    pos,
                    message: "alias to an unknown anchor".into(),
                })?;
                b.count(node_count(&node), pos)?;
                b.push(Node { pos, ..node }, 0)?;
            }
            Event::DocumentEnd => b.anchors.clear(),
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::Nothing => {}
        }
    }
    Ok(b.docs)
}

fn node_count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(node_count).sum(),
        Value::Map(entries) => entries.iter().map(|e| 1 + node_count(&e.value)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let docs = parse("a: 1\nb:\n  c: [x, y]\n").unwrap();
        let root = &docs[0];
        assert_eq!(root.locate(&[Seg::Key("a".into())], false), Pos::new(1, 4));
        let path = [Seg::Key("b".into()), Seg::Key("c".into()), Seg::Index(1)];
        assert_eq!(root.locate(&path, false), Pos::new(3, 10));
        assert_eq!(root.locate(&[Seg::Key("b".into())], true), Pos::new(2, 1));
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(3, 1));
        assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
    }

    #[test]
    fn core_schema_scalars() {
        let docs = parse("[1, 1.5, true, ~, 'true', yes, 0x10]").unwrap();
        let json = docs[0].to_json();
        assert_eq!(json, serde_json::json!([1, 1.5, true, null, "true", "yes", 16]));
    }

    #[test]
    fn aliases_expand_and_bombs_stop() {
        let docs = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(docs[0].to_json()["b"]["k"], "v");
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = (b'a' + i - 1) as char;
            let c = (b'a' + i) as char;
            bomb.push_str(&format!("{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(!err.message.is_empty());
    }
}
