//! Hand-walking a `serde_json::Value`: JSON paths for error messages, typed
//! accessors that say what they expected and what they got, and the field
//! table that reads one JSON object into a builder.
//!
//! The text is parsed with duplicate keys refused ([`parse_strict`]).
//! Every accessor takes the [`JsonPath`] of the value it reads, so that every
//! error it returns names the exact place in the pod file.

use std::fmt;

use serde_json::{Map, Value};

/// Parses JSON text like `serde_json::from_str::<Value>`, but refuses an
/// object with the same key twice (serde_json would silently keep the
/// last: a second container or a second `env` entry would vanish). The
/// error carries the line and column of the duplicate.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// A `Value` deserialized with duplicate keys refused.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?}"
                )));
            }
            let Strict(v) = map.next_value()?;
            members.insert(key, v);
        }
        Ok(Value::Object(members))
    }
}

/// Where a value sits in the document: `containers.app.command[2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    /// The document itself.
    pub fn root() -> JsonPath {
        JsonPath(String::new())
    }

    /// The member `key` of the object at `self`.
    pub fn key(&self, key: &str) -> JsonPath {
        let plain = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let mut s = self.0.clone();
        if plain {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(key);
        } else {
            // Keys with dots, spaces or quotes are written as JSON strings.
            s.push('[');
            s.push_str(&Value::from(key).to_string());
            s.push(']');
        }
        JsonPath(s)
    }

    /// The path as written in messages, empty for the document itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The element `index` of the array at `self`.
    pub fn index(&self, index: usize) -> JsonPath {
        JsonPath(format!("{}[{index}]", self.0))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("top level")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// A value that breaks a rule of the schema, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub at: JsonPath,
    pub msg: String,
}

impl Invalid {
    pub fn new(at: &JsonPath, msg: impl Into<String>) -> Invalid {
        Invalid {
            at: at.clone(),
            msg: msg.into(),
        }
    }
}

/// "a number", "an object", ...: how error messages name a value's type.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected(at: &JsonPath, what: &str, got: &Value) -> Invalid {
    Invalid::new(at, format!("expected {what}, got {}", kind(got)))
}

/// The value at `at` as an object.
pub fn object<'v>(v: &'v Value, at: &JsonPath) -> Result<&'v Map<String, Value>, Invalid> {
    v.as_object().ok_or_else(|| expected(at, "an object", v))
}

/// The value at `at` as a string without NUL bytes (every string of a pod
/// ends up in a C string: a path, an argv or envp entry).
pub fn string<'v>(v: &'v Value, at: &JsonPath) -> Result<&'v str, Invalid> {
    let s = v.as_str().ok_or_else(|| expected(at, "a string", v))?;
    no_nul(s, at)?;
    Ok(s)
}

/// The value at `at` as an array of strings.
pub fn strings(v: &Value, at: &JsonPath) -> Result<Vec<String>, Invalid> {
    let items = v
        .as_array()
        .ok_or_else(|| expected(at, "an array of strings", v))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_at = at.index(i);
        let s = item
            .as_str()
            .ok_or_else(|| expected(&item_at, "a string", item))?;
        no_nul(s, &item_at)?;
        out.push(s.to_owned());
    }
    Ok(out)
}

/// Refuses strings that cannot become C strings.
pub fn no_nul(s: &str, at: &JsonPath) -> Result<(), Invalid> {
    if s.contains('\0') {
        return Err(Invalid::new(at, "contains a NUL character"));
    }
    Ok(())
}

/// Reads one member of a JSON object into the builder `B`, with the shared
/// context `C` (such as the pod file's directory).
pub type ReadFn<C, B> = fn(&C, &mut B, &Value, &JsonPath) -> Result<(), Invalid>;

/// One accepted member of a JSON object. A schema object is a table of
/// these; supporting a new member is one more entry.
pub struct Field<C, B> {
    pub name: &'static str,
    pub read: ReadFn<C, B>,
}

/// Reads the object at `at` into `builder` through `fields`: every member
/// must have an entry, others are unknown fields.
pub fn read_object<C, B>(
    ctx: &C,
    builder: &mut B,
    fields: &[Field<C, B>],
    v: &Value,
    at: &JsonPath,
) -> Result<(), Invalid> {
    for (key, value) in object(v, at)? {
        let field_at = at.key(key);
        let field = fields
            .iter()
            .find(|f| f.name == key)
            .ok_or_else(|| unknown_field(fields, &field_at))?;
        (field.read)(ctx, builder, value, &field_at)?;
    }
    Ok(())
}

fn unknown_field<C, B>(fields: &[Field<C, B>], at: &JsonPath) -> Invalid {
    let mut names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    names.sort_unstable();
    Invalid::new(
        at,
        format!("unknown field (known fields: {})", names.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_strict_accepts_what_serde_json_accepts() {
        let text = r#"{"a": [1, -2, 3.5, "s", true, null, {}], "b": {"c": "d"}}"#;
        let strict = parse_strict(text).unwrap();
        assert_eq!(strict, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn parse_strict_duplicate_key_is_refused_with_position() {
        let err = parse_strict("{\"a\": {\"k\": 1,\n \"k\": 2}}").unwrap_err();
        assert_eq!(err.to_string(), "duplicate key \"k\" at line 2 column 4");
    }

    #[test]
    fn parse_strict_same_key_in_sibling_objects_is_fine() {
        assert!(parse_strict(r#"[{"k": 1}, {"k": 2}]"#).is_ok());
    }

    #[test]
    fn json_path_plain_keys_are_dotted() {
        let at = JsonPath::root().key("containers").key("app").key("command");
        assert_eq!(at.to_string(), "containers.app.command");
    }

    #[test]
    fn json_path_odd_key_is_quoted() {
        let at = JsonPath::root().key("images").key("a.tar.gz");
        assert_eq!(at.to_string(), r#"images["a.tar.gz"]"#);
    }

    #[test]
    fn json_path_index_is_bracketed() {
        let at = JsonPath::root().key("command").index(2);
        assert_eq!(at.to_string(), "command[2]");
    }

    #[test]
    fn json_path_root_is_named() {
        assert_eq!(JsonPath::root().to_string(), "top level");
    }

    #[test]
    fn string_given_number_names_both_types() {
        let err = string(&json!(3), &JsonPath::root().key("name")).unwrap_err();
        assert_eq!(err.msg, "expected a string, got a number");
        assert_eq!(err.at.to_string(), "name");
    }

    #[test]
    fn string_with_nul_is_refused() {
        let err = string(&json!("a\u{0}b"), &JsonPath::root().key("w")).unwrap_err();
        assert_eq!(err.msg, "contains a NUL character");
    }

    #[test]
    fn strings_bad_element_names_its_index() {
        let at = JsonPath::root().key("command");
        let err = strings(&json!(["a", true]), &at).unwrap_err();
        assert_eq!(err.at.to_string(), "command[1]");
        assert_eq!(err.msg, "expected a string, got a boolean");
    }

    #[test]
    fn strings_given_object_expects_array_of_strings() {
        let err = strings(&json!({}), &JsonPath::root().key("c")).unwrap_err();
        assert_eq!(err.msg, "expected an array of strings, got an object");
    }

    fn read_a(_: &(), b: &mut Vec<String>, v: &Value, at: &JsonPath) -> Result<(), Invalid> {
        b.push(string(v, at)?.to_owned());
        Ok(())
    }

    const FIELDS: &[Field<(), Vec<String>>] = &[Field {
        name: "a",
        read: read_a,
    }];

    #[test]
    fn read_object_known_field_is_read() {
        let mut got = Vec::new();
        read_object(&(), &mut got, FIELDS, &json!({"a": "x"}), &JsonPath::root()).unwrap();
        assert_eq!(got, ["x"]);
    }

    #[test]
    fn read_object_unknown_field_is_named() {
        let v = json!({"a": "x", "b": 1});
        let err = read_object(&(), &mut Vec::new(), FIELDS, &v, &JsonPath::root()).unwrap_err();
        assert_eq!(err.at.to_string(), "b");
        assert_eq!(err.msg, "unknown field (known fields: a)");
    }

    #[test]
    fn read_object_given_array_expects_object() {
        let err =
            read_object(&(), &mut Vec::new(), FIELDS, &json!([]), &JsonPath::root()).unwrap_err();
        assert_eq!(err.msg, "expected an object, got an array");
    }
}
