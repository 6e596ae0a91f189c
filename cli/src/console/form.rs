//! The argument form of a tool (or prompt): one field per property of its JSON Schema, edited as
//! text and checked against the schema before anything is sent.
//!
//! Supported: `string` (with `enum`, `minLength`, `maxLength`), `integer` and `number` (with
//! `minimum`, `maximum`), `boolean`, and anything else (objects, arrays, unions) as JSON text that
//! must parse, and be of the declared `type` when one is given. `required` fields must be filled;
//! empty optional fields are left out of the arguments.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Map, Number, Value};

/// What the form is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tool(String),
    Prompt(String),
}

/// The kind of value a field takes.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    String,
    Integer,
    Number,
    Boolean,
    /// One of these strings (cycled with ←/→ or space).
    Choice(Vec<String>),
    /// JSON text; the declared type, if any (`object`, `array`, …).
    Json(Option<String>),
}

/// One field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    pub description: Option<String>,
    /// What has been typed.
    pub value: String,
    schema: Value,
}

impl Field {
    /// The type label shown next to the name.
    pub fn label(&self) -> String {
        let t = match &self.kind {
            FieldKind::String => "string".to_string(),
            FieldKind::Integer => "integer".into(),
            FieldKind::Number => "number".into(),
            FieldKind::Boolean => "boolean".into(),
            FieldKind::Choice(c) => format!("one of {}", c.join("|")),
            FieldKind::Json(t) => format!("{} (JSON)", t.as_deref().unwrap_or("any")),
        };
        if self.required {
            format!("{t}, required")
        } else {
            t
        }
    }

    /// The JSON value of the field, `None` when left empty.
    fn parse(&self) -> Result<Option<Value>, String> {
        let text = self.value.trim();
        if text.is_empty() {
            return if self.required { Err("required".into()) } else { Ok(None) };
        }
        let num = |v: f64| -> Result<(), String> {
            if let Some(min) = self.schema.get("minimum").and_then(Value::as_f64) {
                if v < min {
                    return Err(format!("must be ≥ {min}"));
                }
            }
            if let Some(max) = self.schema.get("maximum").and_then(Value::as_f64) {
                if v > max {
                    return Err(format!("must be ≤ {max}"));
                }
            }
            Ok(())
        };
        let v = match &self.kind {
            FieldKind::String => {
                let n = self.value.chars().count() as u64;
                if let Some(min) = self.schema.get("minLength").and_then(Value::as_u64) {
                    if n < min {
                        return Err(format!("at least {min} characters"));
                    }
                }
                if let Some(max) = self.schema.get("maxLength").and_then(Value::as_u64) {
                    if n > max {
                        return Err(format!("at most {max} characters"));
                    }
                }
                Value::String(self.value.clone())
            }
            FieldKind::Integer => {
                let i: i64 = text.parse().map_err(|_| format!("`{text}` is not an integer"))?;
                num(i as f64)?;
                Value::Number(i.into())
            }
            FieldKind::Number => {
                let f: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
                num(f)?;
                Value::Number(Number::from_f64(f).ok_or_else(|| format!("`{text}` is not a finite number"))?)
            }
            FieldKind::Boolean => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err("true or false (space toggles)".into()),
            },
            FieldKind::Choice(c) => {
                if !c.iter().any(|x| x == text) {
                    return Err(format!("one of {}", c.join(", ")));
                }
                Value::String(text.to_owned())
            }
            FieldKind::Json(t) => {
                let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
                if let Some(t) = t {
                    if !type_matches(&v, t) {
                        return Err(format!("must be a JSON {t}"));
                    }
                }
                v
            }
        };
        Ok(Some(v))
    }
}

fn type_matches(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FormError {
    pub field: String,
    pub message: String,
}

/// What a key did to the form.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Editing,
    /// Valid arguments, ready to send.
    Submit(Map<String, Value>),
    Cancel,
}

/// The form.
#[derive(Debug, Clone)]
pub struct Form {
    pub target: Target,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// The last validation error, shown under the fields.
    pub error: Option<FormError>,
}

impl Form {
    /// A form for the properties of `schema` (an object schema), required ones first.
    pub fn from_schema(target: Target, schema: &Value) -> Form {
        let required: Vec<&str> =
            schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let mut fields: Vec<Field> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(name, s)| {
                        let kind = match (s.get("enum").and_then(Value::as_array), s.get("type").and_then(Value::as_str)) {
                            (Some(e), _) if e.iter().all(Value::is_string) => {
                                FieldKind::Choice(e.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                            }
                            (_, Some("string")) => FieldKind::String,
                            (_, Some("integer")) => FieldKind::Integer,
                            (_, Some("number")) => FieldKind::Number,
                            (_, Some("boolean")) => FieldKind::Boolean,
                            (_, t) => FieldKind::Json(t.map(str::to_owned)),
                        };
                        let value = match s.get("default") {
                            Some(Value::String(d)) => d.clone(),
                            Some(d) => d.to_string(),
                            None => String::new(),
                        };
                        Field {
                            name: name.clone(),
                            kind,
                            required: required.contains(&name.as_str()),
                            description: s.get("description").and_then(Value::as_str).map(str::to_owned),
                            value,
                            schema: s.clone(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        fields.sort_by_key(|f| !f.required);
        Form { target, fields, focus: 0, error: None }
    }

    /// The arguments the fields stand for.
    ///
    /// # Errors
    /// The first field that is missing or does not fit its schema.
    pub fn validate(&self) -> Result<Map<String, Value>, FormError> {
        let mut args = Map::new();
        for f in &self.fields {
            match f.parse() {
                Ok(Some(v)) => {
                    args.insert(f.name.clone(), v);
                }
                Ok(None) => {}
                Err(message) => return Err(FormError { field: f.name.clone(), message }),
            }
        }
        Ok(args)
    }

    /// Edit: Tab/↓ next field, Shift-Tab/↑ previous, type to fill, Backspace, space or ←/→ on
    /// booleans and choices, Enter to validate and send, Esc to cancel.
    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        let n = self.fields.len();
        match key.code {
            KeyCode::Esc => return Outcome::Cancel,
            KeyCode::Enter => {
                return match self.validate() {
                    Ok(args) => Outcome::Submit(args),
                    Err(e) => {
                        self.focus = self.fields.iter().position(|f| f.name == e.field).unwrap_or(self.focus);
                        self.error = Some(e);
                        Outcome::Editing
                    }
                };
            }
            KeyCode::Tab | KeyCode::Down if n > 0 => self.focus = (self.focus + 1) % n,
            KeyCode::BackTab | KeyCode::Up if n > 0 => self.focus = (self.focus + n - 1) % n,
            _ => {
                let Some(f) = self.fields.get_mut(self.focus) else { return Outcome::Editing };
                match (&f.kind, key.code) {
                    (FieldKind::Boolean, KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right) => {
                        f.value = if f.value == "true" { "false".into() } else { "true".into() };
                    }
                    (FieldKind::Choice(c), KeyCode::Char(' ') | KeyCode::Right | KeyCode::Left) if !c.is_empty() => {
                        let at = c.iter().position(|x| *x == f.value);
                        let next = match (at, key.code) {
                            (None, _) => 0,
                            (Some(i), KeyCode::Left) => (i + c.len() - 1) % c.len(),
                            (Some(i), _) => (i + 1) % c.len(),
                        };
                        f.value = c[next].clone();
                    }
                    (_, KeyCode::Backspace) => {
                        f.value.pop();
                    }
                    (_, KeyCode::Char('u')) if key.modifiers.contains(KeyModifiers::CONTROL) => f.value.clear(),
                    (_, KeyCode::Char(ch)) if !key.modifiers.contains(KeyModifiers::CONTROL) => f.value.push(ch),
                    _ => {}
                }
                self.error = None;
            }
        }
        Outcome::Editing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(form: &mut Form, text: &str) {
        for ch in text.chars() {
            form.on_key(key(KeyCode::Char(ch)));
        }
    }

    #[test]
    fn fields_follow_the_schema_and_validation_names_the_field() {
        let schema = json!({"type": "object", "required": ["timezone"], "properties": {
            "count": {"type": "integer", "minimum": 1},
            "timezone": {"type": "string", "description": "IANA name"},
            "loud": {"type": "boolean"},
            "unit": {"enum": ["s", "ms"]},
            "tags": {"type": "array"},
        }});
        let mut f = Form::from_schema(Target::Tool("t".into()), &schema);
        assert_eq!(f.fields[0].name, "timezone", "required first");
        assert_eq!(f.on_key(key(KeyCode::Enter)), Outcome::Editing);
        assert_eq!(f.error.as_ref().map(|e| (e.field.as_str(), e.message.as_str())), Some(("timezone", "required")));
        typed(&mut f, "UTC");
        f.on_key(key(KeyCode::Tab));
        typed(&mut f, "0");
        f.on_key(key(KeyCode::Enter));
        assert_eq!(f.error.as_ref().map(|e| e.to_string()), Some("count: must be ≥ 1".into()));
        assert_eq!(f.fields[f.focus].name, "count", "focus moves to the bad field");
        f.on_key(key(KeyCode::Backspace));
        typed(&mut f, "2");
        let tags = f.fields.iter().position(|x| x.name == "tags").unwrap();
        f.focus = tags;
        typed(&mut f, "{\"a\":1}");
        f.on_key(key(KeyCode::Enter));
        assert_eq!(f.error.as_ref().map(|e| e.field.as_str()), Some("tags"));
        f.fields[tags].value = "[1, 2]".into();
        f.focus = f.fields.iter().position(|x| x.name == "unit").unwrap();
        f.on_key(key(KeyCode::Char(' ')));
        f.focus = f.fields.iter().position(|x| x.name == "loud").unwrap();
        f.on_key(key(KeyCode::Char(' ')));
        match f.on_key(key(KeyCode::Enter)) {
            Outcome::Submit(args) => {
                assert_eq!(Value::Object(args), json!({"timezone": "UTC", "count": 2, "loud": true, "unit": "s", "tags": [1, 2]}))
            }
            other => panic!("{other:?} {:?}", f.error),
        }
        assert_eq!(f.on_key(key(KeyCode::Esc)), Outcome::Cancel);
    }
}
