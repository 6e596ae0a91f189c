//! The JSON Schema of a resource document, for editors (`yaml-language-server`) and `mcpctl schema`.

use schemars::{json_schema, Schema, SchemaGenerator};

use crate::kind::Kind;
use crate::resource::{spec_schema, Metadata, API_VERSION};

/// A schema accepting one resource document of any kind, or the grouped form.
pub fn document_schema() -> Schema {
    let mut gen = SchemaGenerator::default();
    let metadata = gen.subschema_for::<Metadata>();
    let mut one_of = Vec::new();
    let mut groups = serde_json::Map::new();
    for kind in Kind::ALL {
        let spec = spec_schema(*kind, &mut gen);
        let item = json_schema!({
            "type": "object",
            "additionalProperties": false,
            "required": ["metadata"],
            "properties": {
                "apiVersion": {"const": API_VERSION},
                "kind": {"const": kind.as_str()},
                "metadata": metadata,
                "spec": spec,
            }
        });
        groups.insert(kind.group_key().into(), json_schema!({"type": "array", "items": item.clone()}).into());
        let mut doc = item;
        doc.insert("required".into(), serde_json::json!(["apiVersion", "kind", "metadata"]));
        one_of.push(serde_json::Value::from(doc));
    }
    groups.insert("apiVersion".into(), serde_json::json!({"const": API_VERSION}));
    groups.insert("project".into(), serde_json::json!({"type": "string", "description": "Default metadata.project of the items"}));
    one_of.push(serde_json::json!({
        "type": "object",
        "description": "Grouped form: lists of resources by kind",
        "not": {"required": ["kind"]},
        "additionalProperties": false,
        "properties": groups,
    }));
    let mut root = json_schema!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mcpctl resource document",
        "oneOf": one_of,
    });
    let defs = gen.take_definitions(true);
    root.insert("$defs".into(), serde_json::Value::Object(defs));
    root
}
