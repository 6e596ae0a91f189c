//! YAML text → trees of positioned nodes, straight from the parser's event stream.
//!
//! Every node keeps the line and column the parser gave it, so an error found long after parsing
//! (a dangling reference, a wrong type) still points at the exact place in the file without
//! re-scanning text. Duplicate mapping keys are rejected here, aliases are expanded, and scalars
//! are resolved with YAML 1.2's core schema.
//!
//! # Guarantees
//! The tree is built with an explicit stack, never by recursion, and it is bounded while the
//! events arrive, before anything deeper or bigger exists: at most [`MAX_DEPTH`] nested
//! collections (block and flow alike, aliases expanded) and at most [`MAX_TREE_BYTES`] of memory
//! (aliases expanded, the copies kept for anchors included). Everything that walks a [`Node`]
//! recursively — `Drop`, `Clone`, `PartialEq`, [`Node::to_json`], serde's derived decoders — so
//! never goes deeper than [`MAX_DEPTH`] frames, and no file can make the tree cost more than
//! [`MAX_TREE_BYTES`], whatever its aliases do.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

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

/// Deepest nesting of collections one file may have, block and flow alike, aliases expanded.
///
/// Why 64: real resources nest about 10 levels (a tool's JSON Schema under `spec` perhaps 20);
/// every walk over a tree (`Drop`, `Clone`, [`Node::to_json`], serde's derived decoders over the
/// JSON) recurses once per level, and 64 levels keep the deepest of them far inside a 2 MiB
/// thread stack (tokio workers and test threads): in a debug build all of them together fit a
/// 128 KiB stack. saphyr-parser stops flow
/// collections itself at a deeper level, but not block ones.
pub const MAX_DEPTH: usize = 64;

/// Most memory the tree of one file may take, aliases expanded (a billion-laughs document is
/// refused at the alias that crosses it, before that copy is made).
///
/// Counted per node as the size of an [`Entry`] (the largest thing a node becomes) plus the bytes
/// of its string, and once more for the copy kept for each anchor. Why 64 MiB: eight times
/// [`crate::load::MAX_FILE_BYTES`]; real resource YAML costs about six times its text (the
/// example repo: 5.9 KB of YAML, 37 KB of tree), so a realistic file of the largest allowed size
/// fits, while alias expansion cannot go further.
pub const MAX_TREE_BYTES: usize = 64 * 1024 * 1024;

/// Most memory the trees of all files of one repo may take together (each file also within
/// [`MAX_TREE_BYTES`]). The trees stay alive with the desired state they describe (every resource
/// keeps its node for positions), and a running reconciler holds the deployed state while it
/// loads the next commit. Why 256 MiB: four files at [`MAX_TREE_BYTES`], about 40 MiB of
/// realistic YAML, a thousand times the example repo (37 KB of tree).
pub const MAX_REPO_TREE_BYTES: usize = 256 * 1024 * 1024;

/// What one node costs towards [`MAX_TREE_BYTES`] besides its string.
const NODE_BYTES: usize = std::mem::size_of::<Entry>();

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

    /// Item `i` of a sequence node.
    pub fn item(&self, i: usize) -> Option<&Node> {
        match &self.value {
            Value::Seq(items) => items.get(i),
            _ => None,
        }
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
            Value::Map(entries) => J::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect()),
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos::new(span.start.line() as u32, span.start.col() as u32 + 1)
}

fn depth_message() -> String {
    format!("collections nest deeper than {MAX_DEPTH} levels (block or flow, aliases expanded); flatten the document")
}

/// A collection being built. `height` is the tallest child so far (a scalar is 0 high, a
/// collection 1 more than its tallest child); `bytes` what the children cost so far.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
        height: usize,
        bytes: usize,
    },
    /// `hashes` holds a hash of every key so far, so a duplicate is found without comparing each
    /// new key with all the previous ones (quadratic: minutes for a mapping of 150 000 keys).
    /// `merges` holds the values of `<<` merge keys, folded in when the mapping ends.
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, Pos)>,
        hashes: HashSet<u64>,
        merges: Vec<Node>,
        height: usize,
        bytes: usize,
    },
}

/// The merge key of YAML 1.1 (`<<: *defaults`, `<<: [*a, *b]`), as kubectl and compose read it.
const MERGE_KEY: &str = "<<";

/// An anchored node with what it takes to expand an alias to it.
struct Anchored {
    node: Node,
    height: usize,
    bytes: usize,
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    docs: Vec<Node>,
    /// Memory of the tree so far, towards `budget`.
    bytes: usize,
    /// [`MAX_TREE_BYTES`], or less when the rest of the repo's budget is smaller.
    budget: usize,
    /// Keyed per parse, so colliding keys cannot be precomputed.
    hasher: RandomState,
    /// Key-by-key comparisons made looking for duplicates (only on a hash match).
    key_comparisons: usize,
}

impl Builder {
    /// Count `n` bytes towards the budget, failing at `pos` when it is exceeded.
    fn spend(&mut self, n: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.budget {
            let message = if self.budget < MAX_TREE_BYTES {
                format!(
                    "the repo's files together expand to more than {} MiB in memory (aliases expanded); this file crosses the limit",
                    MAX_REPO_TREE_BYTES >> 20
                )
            } else {
                format!(
                    "document expands to more than {} MiB in memory (aliases expanded; a \"billion laughs\" alias bomb?)",
                    MAX_TREE_BYTES >> 20
                )
            };
            return Err(SyntaxError { pos, message });
        }
        Ok(())
    }

    /// Fail at `pos` when a node `height` high, placed at the current level, nests too deep.
    fn check_depth(&self, height: usize, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() + height > MAX_DEPTH {
            return Err(SyntaxError { pos, message: depth_message() });
        }
        Ok(())
    }

    /// Attach a finished node (`height` high, costing `bytes`) to its parent, or finish a document.
    fn push(&mut self, node: Node, anchor: usize, height: usize, bytes: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            // The copy kept for the anchor is memory too.
            self.spend(bytes, node.pos)?;
            self.anchors.insert(anchor, Anchored { node: node.clone(), height, bytes });
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, height: h, bytes: b, .. }) => {
                *h = (*h).max(height);
                *b += bytes;
                items.push(node)
            }
            Some(Frame::Map { entries, key, hashes, merges, height: h, bytes: b, .. }) => {
                *h = (*h).max(height);
                *b += bytes;
                match key.take() {
                    None => {
                        let k = scalar_key(&node)?;
                        // Only a key whose hash was seen is compared with the others.
                        let prev = match hashes.insert(self.hasher.hash_one(&k)) {
                            true => None,
                            false => entries.iter().find(|e| {
                                self.key_comparisons += 1;
                                e.key == k
                            }),
                        };
                        if let Some(prev) = prev {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message: format!("duplicate key `{k}` (first defined at line {})", prev.key_pos.line),
                            });
                        }
                        *key = Some((k, node.pos));
                    }
                    Some((k, _)) if k == MERGE_KEY => {
                        check_merge_source(&node)?;
                        merges.push(node)
                    }
                    Some((k, key_pos)) => entries.push(Entry { key: k, key_pos, value: node }),
                }
            }
        }
        Ok(())
    }
}

/// A `<<` value must be a mapping or a list of mappings.
fn check_merge_source(node: &Node) -> Result<(), SyntaxError> {
    let ok = match &node.value {
        Value::Map(_) => true,
        Value::Seq(items) => items.iter().all(|i| matches!(i.value, Value::Map(_))),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(SyntaxError { pos: node.pos, message: "`<<` (merge key) must be a mapping or a list of mappings, e.g. `<<: *defaults`".into() })
}

/// Fold the `<<` values into `entries`: a key written in the mapping wins, then the earlier
/// source of a list. Entries keep the positions where they were written (in the anchor), so
/// errors about a merged value point at the defaults they came from. Nothing is copied: the
/// merged nodes were already counted as they were built (aliases at expansion).
fn merge_into(entries: &mut Vec<Entry>, merges: Vec<Node>) {
    let mut seen: HashSet<String> = entries.iter().map(|e| e.key.clone()).collect();
    for source in merges {
        let maps = match source.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => items
                .into_iter()
                .filter_map(|i| match i.value {
                    Value::Map(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for e in maps.into_iter().flatten() {
            if seen.insert(e.key.clone()) {
                entries.push(e);
            }
        }
    }
}

fn scalar_key(node: &Node) -> Result<String, SyntaxError> {
    Ok(match &node.value {
        Value::Str(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Seq(_) | Value::Map(_) => return Err(SyntaxError { pos: node.pos, message: "mapping keys must be scalars".into() }),
    })
}

fn resolve_scalar(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Cow<'_, Tag>>, pos: Pos) -> Result<Value, SyntaxError> {
    let scalar = Scalar::parse_from_cow_and_metadata(text, style, tag)
        .ok_or_else(|| SyntaxError { pos, message: "scalar does not match its tag".into() })?;
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
    parse_within(text, MAX_TREE_BYTES).map(|(docs, _)| docs)
}

/// [`parse`] with at most `budget` bytes of tree (capped at [`MAX_TREE_BYTES`]); also returns
/// what the tree cost, so a caller can share one budget across files ([`MAX_REPO_TREE_BYTES`]).
///
/// # Errors
/// As [`parse`]; crossing a `budget` below [`MAX_TREE_BYTES`] is reported as the repo's limit.
pub fn parse_within(text: &str, budget: usize) -> Result<(Vec<Node>, usize), SyntaxError> {
    let (docs, bytes, _) = build(text, budget);
    Ok((docs?, bytes))
}

/// [`parse_within`], also returning the cost and the number of key comparisons made (for tests).
fn build(text: &str, budget: usize) -> (Result<Vec<Node>, SyntaxError>, usize, usize) {
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        bytes: 0,
        budget: budget.min(MAX_TREE_BYTES),
        hasher: RandomState::new(),
        key_comparisons: 0,
    };
    let docs = b.run(text);
    (docs, b.bytes, b.key_comparisons)
}

impl Builder {
    /// Feed the parser's events into the tree, checking every limit as each event arrives.
    fn run(&mut self, text: &str) -> Result<Vec<Node>, SyntaxError> {
        let b = self;
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|e| SyntaxError {
                pos: Pos::new(e.marker().line() as u32, e.marker().col() as u32 + 1),
                message: match e.info() {
                    // The scanner's own cap on flow levels (255), met before our events arrive.
                    "recursion limit exceeded" => depth_message(),
                    info => info.to_string(),
                },
            })?;
            let pos = pos_of(&span);
            match event {
                Event::Scalar(text, style, anchor, tag) => {
                    let bytes = NODE_BYTES + text.len();
                    b.spend(bytes, pos)?;
                    let value = resolve_scalar(text, style, tag.as_ref(), pos)?;
                    b.push(Node { pos, value }, anchor, 0, bytes)?;
                }
                Event::SequenceStart(anchor, _) => {
                    b.check_depth(1, pos)?;
                    b.spend(NODE_BYTES, pos)?;
                    b.stack.push(Frame::Seq { pos, anchor, items: Vec::new(), height: 0, bytes: 0 })
                }
                Event::MappingStart(anchor, _) => {
                    b.check_depth(1, pos)?;
                    b.spend(NODE_BYTES, pos)?;
                    b.stack.push(Frame::Map {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        hashes: HashSet::new(),
                        merges: Vec::new(),
                        height: 0,
                        bytes: 0,
                    })
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (node, anchor, height, bytes) = match b.stack.pop() {
                        Some(Frame::Seq { pos, anchor, items, height, bytes }) => {
                            (Node { pos, value: Value::Seq(items) }, anchor, height + 1, bytes + NODE_BYTES)
                        }
                        Some(Frame::Map { pos, anchor, mut entries, merges, height, bytes, .. }) => {
                            if !merges.is_empty() {
                                merge_into(&mut entries, merges);
                            }
                            (Node { pos, value: Value::Map(entries) }, anchor, height + 1, bytes + NODE_BYTES)
                        }
                        None => continue,
                    };
                    b.push(node, anchor, height, bytes)?;
                }
                Event::Alias(id) => {
                    let Some(a) = b.anchors.get(&id) else {
                        return Err(SyntaxError { pos, message: "alias to an unknown anchor".into() });
                    };
                    let (height, bytes) = (a.height, a.bytes);
                    // Both limits are checked before the copy is made.
                    b.check_depth(height, pos)?;
                    b.spend(bytes, pos)?;
                    let node = b.anchors[&id].node.clone();
                    b.push(Node { pos, ..node }, 0, height, bytes)?;
                }
                Event::DocumentEnd => b.anchors.clear(),
                Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::Nothing => {}
            }
        }
        Ok(std::mem::take(&mut b.docs))
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
    fn duplicate_keys_are_found_without_comparing_every_pair() {
        let mut text: String = (0..20_000).map(|i| format!("key{i}: {i}\n")).collect();
        let (docs, _, comparisons) = build(&text, MAX_TREE_BYTES);
        assert_eq!(docs.unwrap()[0].as_map().unwrap().len(), 20_000);
        // Before: every key was compared with every earlier one (200 million comparisons here).
        assert_eq!(comparisons, 0);
        text.push_str("key7: again\n");
        let (err, _, comparisons) = build(&text, MAX_TREE_BYTES);
        let err = err.unwrap_err();
        assert_eq!((err.pos, comparisons), (Pos::new(20_001, 1), 8));
        assert!(err.message.contains("duplicate key `key7` (first defined at line 8)"), "{}", err.message);
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

    /// Run `f` on a thread with the default 2 MiB stack of test threads and tokio workers, so a
    /// recursion that would overflow there aborts the test process.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new().stack_size(2 * 1024 * 1024).spawn(f).unwrap().join().unwrap()
    }

    #[test]
    fn deep_block_nesting_is_refused_without_overflow() {
        // 100 KB of `- `: 50 000 nested block sequences (this aborted the process in `Drop`).
        let text = format!("{}x\n", "- ".repeat(50_000));
        let err = on_small_stack(move || parse(&text).unwrap_err());
        assert_eq!(err.pos, Pos::new(1, 2 * MAX_DEPTH as u32 + 1), "{}", err.message);
        assert!(err.message.contains(&format!("deeper than {MAX_DEPTH} levels")), "{}", err.message);
        // Nested block mappings, one level per line.
        let text: String = (0..20_000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let err = on_small_stack(move || parse(&text).unwrap_err());
        assert_eq!(err.pos.line, MAX_DEPTH as u32 + 1, "{}", err.message);
        assert!(err.message.contains("deeper than"), "{}", err.message);
    }

    #[test]
    fn deep_flow_nesting_is_refused_at_the_limit() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // saphyr-parser's scanner stops this itself at 255 levels (looking ahead for a key);
        // the message is ours.
        let err = on_small_stack(move || parse(&nest(50_000)).unwrap_err());
        assert_eq!(err.pos.line, 1);
        assert!(err.message.contains(&format!("deeper than {MAX_DEPTH} levels")), "{}", err.message);
        // Just past the limit, and flow mappings.
        assert_eq!(parse(&nest(MAX_DEPTH + 1)).unwrap_err().pos, Pos::new(1, MAX_DEPTH as u32 + 1));
        let maps = format!("{}x{}", "{a: ".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&maps).unwrap_err().pos, Pos::new(1, 4 * MAX_DEPTH as u32 + 1));
        // Exactly at the limit is fine, and every recursive walk over it fits a small stack.
        let json = on_small_stack(move || {
            let docs = parse(&nest(MAX_DEPTH)).unwrap();
            let copy = docs.clone();
            assert_eq!(copy, docs);
            docs[0].to_json()
        });
        assert!(json.is_array());
    }

    #[test]
    fn aliases_count_towards_depth() {
        // Each alias adds the height of its anchor: three anchors of 40 levels nest 120 deep.
        let text =
            format!("a: &a {open}x{close}\nb: &b {open}*a{close}\nc: {open}*b{close}\n", open = "[".repeat(40), close = "]".repeat(40));
        let err = parse(&text).unwrap_err();
        assert_eq!(err.pos, Pos::new(2, 47), "{}", err.message);
        assert!(err.message.contains("deeper than"), "{}", err.message);
        // An alias to a scalar or a shallow node deep in the tree is fine.
        parse(&format!("a: &a [x]\nb: {}*a{}\n", "[".repeat(50), "]".repeat(50))).unwrap();
    }

    #[test]
    fn the_classic_billion_laughs_is_refused() {
        let mut text = String::from("lol: &lol \"lol\"\n");
        let mut prev = "lol".to_string();
        for i in 1..=9 {
            let name = format!("lol{i}");
            let items = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{items}]\n"));
            prev = name;
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("MiB in memory"), "{}", err.message);
        assert!(err.pos.line > 1 && err.pos.line <= 10, "{:?}", err.pos);
    }

    #[test]
    fn alias_expansion_is_bounded_by_bytes_not_nodes() {
        // 64 KB of text expanding to 2 000 copies of a 60 KB string: only ~2 100 nodes (the old
        // node cap let this through), but 120 MB in memory.
        let text = format!(
            "a: &a {}\nb: &b [{a}]\nc: &c [{b}]\nd: [{c}]\n",
            "x".repeat(60_000),
            a = ["*a"; 10].join(", "),
            b = ["*b"; 10].join(", "),
            c = ["*c"; 20].join(", ")
        );
        assert!(text.len() < 64 * 1024);
        let err = parse(&text).unwrap_err();
        assert_eq!(err.pos.line, 4, "{}", err.message);
        assert!(err.message.contains(&format!("{} MiB", MAX_TREE_BYTES >> 20)), "{}", err.message);
        // The copies kept for nested anchors count too: 40 anchors over one 2 MB string.
        let open: String = (0..40).map(|i| format!("&a{i} [")).collect();
        let nested = format!("{open}{}{}\n", "x".repeat(2 << 20), "]".repeat(40));
        assert!(parse(&nested).unwrap_err().message.contains("MiB in memory"));
        // A plain file of near the size limit made of long strings is within budget.
        let big: String = (0..7).map(|i| format!("k{i}: {}\n", "y".repeat(1 << 20))).collect();
        assert_eq!(parse(&big).unwrap()[0].as_map().unwrap().len(), 7);
    }

    #[test]
    fn merge_keys_fold_defaults_in_and_written_keys_win() {
        let text = "d: &d {image: a, port: 1}\ne: &e {port: 2, tier: x}\ns:\n  <<: *d\n  port: 9\nt:\n  <<: [*e, *d]\n";
        let docs = parse(text).unwrap();
        let json = docs[0].to_json();
        assert_eq!(json["s"], serde_json::json!({"port": 9, "image": "a"}));
        // Earlier sources of a list win over later ones.
        assert_eq!(json["t"], serde_json::json!({"port": 2, "tier": "x", "image": "a"}));
        // A merged value keeps the position it was written at (in the anchor).
        assert_eq!(docs[0].locate(&[Seg::Key("s".into()), Seg::Key("image".into())], false), Pos::new(1, 15));
        assert!(docs[0].get("s").unwrap().get(MERGE_KEY).is_none());
    }

    #[test]
    fn merge_keys_of_a_scalar_are_refused_and_stay_in_budget() {
        let err = parse("a:\n  <<: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(2, 7));
        assert!(err.message.contains("merge key"), "{}", err.message);
        assert!(parse("a: {<<: [x]}\n").unwrap_err().message.contains("merge key"));
        // Merging aliases is alias expansion: a bomb built of merges is stopped like any other.
        let mut bomb = String::from("a: &a {k0: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}\n");
        for i in 1..30 {
            let p = (i - 1).to_string();
            bomb.push_str(
                &format!("a{i}: &a{i} {{<<: [*a{p}], n{i}: [*a{p}, *a{p}, *a{p}, *a{p}]}}\n").replace("*a0", "*a").replace("&a0", "&a"),
            );
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err.message.contains("MiB in memory"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(!err.message.is_empty());
    }
}
