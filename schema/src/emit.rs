//! JSON values → YAML text (for `get -o yaml` and new files), through saphyr's emitter.

use std::borrow::Cow;

use saphyr::{Mapping, Scalar, Yaml, YamlEmitter};

fn to_yaml(v: &serde_json::Value) -> Yaml<'_> {
    use serde_json::Value as J;
    match v {
        J::Null => Yaml::Value(Scalar::Null),
        J::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Value(Scalar::FloatingPoint(n.as_f64().unwrap_or_default().into())),
        },
        J::String(s) => Yaml::Value(Scalar::String(Cow::Borrowed(s))),
        J::Array(a) => Yaml::Sequence(a.iter().map(to_yaml).collect()),
        J::Object(o) => {
            let mut m = Mapping::new();
            for (k, x) in o {
                m.insert(Yaml::Value(Scalar::String(Cow::Borrowed(k))), to_yaml(x));
            }
            Yaml::Mapping(m)
        }
    }
}

/// One YAML document (starting with `---`), multi-line strings as literal blocks.
pub fn yaml_document(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let doc = to_yaml(v);
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline(true);
    emitter.dump(&doc).expect("emitting to a String cannot fail");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_through_the_parser() {
        let v = serde_json::json!({"a": "x\ny\n", "b": [1, 2.5, true, null], "c": {"d": "123", "e": "yes", "f": ""}});
        let text = super::yaml_document(&v);
        let back = crate::document::parse(&text).unwrap();
        assert_eq!(back[0].to_json(), v, "{text}");
    }
}
