//! The front door's fast look at a POST body: whether it is certainly one JSON-RPC 2.0 message
//! whose names and URIs are within [`super::limits`]' bounds, read in one pass without building
//! a JSON tree (the protocol layer parses the body into its own types afterwards anyway).
//!
//! # Guarantees
//! [`acceptable`] says `true` only for bodies the tree-based check (`endpoint::check_jsonrpc`
//! with [`super::limits::oversized`]) accepts too; anything it is unsure of (not an object,
//! duplicate keys, odd `params`) is `false`, and the endpoint then runs the tree-based check,
//! which produces the error answers. A test compares the two on accepted and refused bodies.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::limits::{MAX_NAME_BYTES, MAX_URI_BYTES};

/// Whether `bytes` is certainly one acceptable JSON-RPC message (see the module's guarantees).
pub fn acceptable(bytes: &[u8]) -> bool {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return false;
    }
    // serde_json skips ignored strings without checking their UTF-8; the tree check refuses
    // invalid UTF-8 anywhere (found by the `jsonrpc` fuzz target).
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    let Ok(m) = serde_json::from_str::<Message>(text) else { return false };
    let valid =
        matches!(m.jsonrpc, Shape::Str { version_2_0: true, .. }) && (matches!(m.method, Shape::Str { .. }) || m.result.0 || m.error.0);
    if !valid {
        return false;
    }
    let Shape::Str { method, .. } = m.method else { return true };
    let within = |s: &Shape, max: usize| match s {
        Shape::Str { len, .. } => *len <= max,
        Shape::Absent | Shape::Other => true,
    };
    match method {
        Method::NameBound => within(&m.params.name, MAX_NAME_BYTES),
        Method::UriBound => within(&m.params.uri, MAX_URI_BYTES),
        Method::Complete => within(&m.params.r#ref.name, MAX_NAME_BYTES) && within(&m.params.r#ref.uri, MAX_URI_BYTES),
        Method::Other => true,
    }
}

/// The top-level fields the checks read; every other field is skipped, read as a [`Shape`] (as
/// the tree check reads it). A field given twice fails (the tree keeps the last one).
#[derive(Default)]
struct Message {
    jsonrpc: Shape,
    method: Shape,
    result: Present,
    error: Present,
    params: Params,
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MessageVisitor;
        impl<'de> Visitor<'de> for MessageVisitor {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
                let (mut m, mut seen) = (Message::default(), [false; 5]);
                let slot_of = |key| match key {
                    Key::Jsonrpc => Some(0),
                    Key::Method => Some(1),
                    Key::Result => Some(2),
                    Key::Error => Some(3),
                    Key::Params => Some(4),
                    _ => None,
                };
                while let Some(slot) = next_field(&mut map, &mut seen, slot_of)? {
                    match slot {
                        0 => m.jsonrpc = map.next_value()?,
                        1 => m.method = map.next_value()?,
                        2 => m.result = map.next_value()?,
                        3 => m.error = map.next_value()?,
                        _ => m.params = map.next_value()?,
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(MessageVisitor)
    }
}

/// The bounded fields of `params` (an object; any other shape fails the fast look).
#[derive(Default)]
struct Params {
    name: Shape,
    uri: Shape,
    r#ref: Ref,
}

/// `params.ref` of `completion/complete`.
#[derive(Default)]
struct Ref {
    name: Shape,
    uri: Shape,
}

/// Which limit a method's `params` are held to ([`super::limits::oversized`]'s table).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    NameBound,
    UriBound,
    Complete,
    Other,
}

/// What a field holds, as far as the checks care. Read through `deserialize_any`, as the tree
/// check reads a value, which makes it also the way every unread value is skipped: numbers are
/// parsed (serde's `IgnoredAny` only scans their syntax, and so accepted `1e400`, which the tree
/// check refuses as out of range: found by the `jsonrpc` fuzz target), string escapes are decoded
/// and checked, and nesting counts against the same recursion limit.
#[derive(Default)]
enum Shape {
    #[default]
    Absent,
    /// A string: its length in bytes; whether it is `2.0`; the method it names.
    Str { len: usize, version_2_0: bool, method: Method },
    /// Present, not a string (null included).
    Other,
}

/// Whether a field is present (with any value, `null` included).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Shape::deserialize(d)?;
        Ok(Present(true))
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Shape, E> {
        let method = match s {
            "tools/call" | "prompts/get" => Method::NameBound,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Method::UriBound,
            "completion/complete" => Method::Complete,
            _ => Method::Other,
        };
        Ok(Shape::Str { len: s.len(), version_2_0: s == "2.0", method })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<Shape>()?.is_some() {}
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<Shape, Shape>()?.is_some() {}
        Ok(Shape::Other)
    }
}

/// A key of the message, `params` or `params.ref`: one the checks read, or any other (each
/// reader skips the keys that are not its own).
#[derive(Clone, Copy, PartialEq)]
enum Key {
    Jsonrpc,
    Method,
    Result,
    Error,
    Params,
    Name,
    Uri,
    Ref,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "jsonrpc" => Key::Jsonrpc,
                    "method" => Key::Method,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    "params" => Key::Params,
                    "name" => Key::Name,
                    "uri" => Key::Uri,
                    "ref" => Key::Ref,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The slot (`slot_of`) of the next key of `map` that a reader reads, its value left to read;
/// the values of other keys are skipped. A key seen twice fails (the tree keeps the last one, so
/// the fast look leaves such bodies to it).
fn next_field<'de, A: MapAccess<'de>, const N: usize>(
    map: &mut A,
    seen: &mut [bool; N],
    slot_of: impl Fn(Key) -> Option<usize>,
) -> Result<Option<usize>, A::Error> {
    while let Some(key) = map.next_key::<Key>()? {
        let Some(slot) = slot_of(key) else {
            map.next_value::<Shape>()?;
            continue;
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(de::Error::custom("duplicate key"));
        }
        return Ok(Some(slot));
    }
    Ok(None)
}

/// Reads an object's `name`, `uri` and `ref` (when `with_ref`) fields, skipping the others.
fn fields<'de, A: MapAccess<'de>>(mut map: A, with_ref: bool) -> Result<(Shape, Shape, Ref), A::Error> {
    let (mut name, mut uri, mut r, mut seen) = (Shape::Absent, Shape::Absent, Ref::default(), [false; 3]);
    let slot_of = |key| match key {
        Key::Name => Some(0),
        Key::Uri => Some(1),
        Key::Ref if with_ref => Some(2),
        _ => None,
    };
    while let Some(slot) = next_field(&mut map, &mut seen, slot_of)? {
        match slot {
            0 => name = map.next_value()?,
            1 => uri = map.next_value()?,
            _ => r = map.next_value()?,
        }
    }
    Ok((name, uri, r))
}

struct ObjectVisitor<T>(std::marker::PhantomData<T>);

impl<'de> Visitor<'de> for ObjectVisitor<Params> {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Params, A::Error> {
        let (name, uri, r#ref) = fields(map, true)?;
        Ok(Params { name, uri, r#ref })
    }
}

impl<'de> Visitor<'de> for ObjectVisitor<Ref> {
    type Value = Ref;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ref, A::Error> {
        let (name, uri, _) = fields(map, false)?;
        Ok(Ref { name, uri })
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor::<Params>(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor::<Ref>(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    /// The tree-based check the endpoint falls back to (`endpoint::check_jsonrpc`).
    fn slow(bytes: &[u8]) -> bool {
        super::super::endpoint::check_jsonrpc(bytes).is_ok()
    }

    #[test]
    fn the_fast_look_accepts_only_what_the_tree_check_accepts() {
        let long = "x".repeat(super::MAX_NAME_BYTES + 1);
        let long_uri = "u".repeat(super::MAX_URI_BYTES + 1);
        let ok = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},"_meta":{"a":[1,{"b":null}]}}}"#.to_string(),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":"x","result":null}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"m"}}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"name":"LONG"}}"#.replace("LONG", &long),
            r#"{"jsonrpc":"2\u002e0","id":5,"method":"resources/read","params":{"uri":"file:///x"}}"#.to_string(),
        ];
        for body in &ok {
            assert!(slow(body.as_bytes()), "the tree check accepts {body}");
            assert!(acceptable(body.as_bytes()), "the fast look accepts {body}");
        }
        let refused_or_unsure = [
            "not json".to_string(),
            "[]".to_string(),
            r#"["2.0","tools/call"]"#.to_string(),
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#.to_string(),
            r#"{"id":1,"method":"x"}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"LONG"}}"#.replace("LONG", &long),
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"LONG"}}"#.replace("LONG", &long),
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"LONG"}}"#.replace("LONG", &long_uri),
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"uri":"LONG"}}}"#.replace("LONG", &long_uri),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"LONG"}}"#.replace("LONG", &long),
            r#"{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"x"}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#.to_string(),
        ];
        for body in &refused_or_unsure {
            assert!(!acceptable(body.as_bytes()), "the fast look leaves {body} to the tree check");
        }
        // Skipped values are read as the tree reads them (numbers parsed, escapes checked): the
        // first found by the `jsonrpc` fuzz target.
        for body in [
            r#"{"jsonrpc":"2.0","id":3,"method":"completion/complete","param2222od":       202e03222222222222222222222}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"other":[1e400]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","extra":"\ud800"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":-1e999}"#,
        ] {
            assert_eq!(acceptable(body.as_bytes()), slow(body.as_bytes()), "both checks agree on {body}");
        }
        let deep = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"o":{}{}}}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(!slow(deep.as_bytes()) && !acceptable(deep.as_bytes()), "nesting past the recursion limit");
        let invalid_utf8 = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"other\":\"\xe3\xe3\"}}";
        assert!(!slow(invalid_utf8) && !acceptable(invalid_utf8), "invalid UTF-8 in a skipped string");
        // Among those, the ones the tree check accepts are still accepted by the endpoint (the
        // fast look is only a shortcut): an odd but valid body.
        assert!(slow(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["LONG"]}"#));
        assert!(!acceptable(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["x"]}"#));
    }
}
