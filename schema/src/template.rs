//! `{{param}}` substitution for `Template`s.

use std::collections::BTreeMap;

use crate::spec::{ServerSpec, TemplateInstance, TemplateSpec};

/// The distinct `{{name}}` placeholders used in `text`, in order of first use.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

/// Replace every `{{name}}` in `text` with its value; unknown names stay as written.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match values.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The server a `fromTemplate` instance stands for (defaults applied, description kept).
pub fn instantiate(template: &TemplateSpec, instance: &TemplateInstance) -> ServerSpec {
    let mut values: BTreeMap<String, String> =
        template.parameters.iter().filter_map(|p| p.default.clone().map(|d| (p.name.clone(), d))).collect();
    values.extend(instance.parameters.clone());
    let json = serde_json::to_value(&template.server).expect("server serializes");
    serde_json::from_value(map_strings(json, &values)).expect("substitution keeps the shape")
}

fn map_strings(v: serde_json::Value, values: &BTreeMap<String, String>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::String(s) => J::String(substitute(&s, values)),
        J::Array(a) => J::Array(a.into_iter().map(|x| map_strings(x, values)).collect()),
        J::Object(o) => J::Object(o.into_iter().map(|(k, x)| (k, map_strings(x, values))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_and_lists() {
        let vals = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert_eq!(substitute("x{{a}}y{{ b }}", &vals), "x1y{{ b }}");
        assert_eq!(placeholders("{{a}} {{ b }} {{a}}"), vec!["a", "b"]);
    }
}
