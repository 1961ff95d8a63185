//! Message headers: string keys with scalar values (string, integer, float,
//! bool, null), as in the PubSub seed. Stored as a JSON object next to the
//! message (never in the reference's `messages` table) and carried by `move`.

use serde_json::{Map, Number, Value};

/// Longest header key, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Largest headers object (serialized JSON), in bytes.
pub const MAX_HEADERS_SIZE: usize = 64 * 1024;

/// One header value.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// Text.
    Str(String),
    /// A 64-bit integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// An ordered set of headers (insertion order kept; a repeated key replaces the earlier value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(String, HeaderValue)>);

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid header '{text}': {reason}")]
pub struct HeaderError {
    /// The offending text (key, `key=value` or JSON).
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

fn header_error(text: &str, reason: impl Into<String>) -> HeaderError {
    HeaderError {
        text: text.chars().take(80).collect(),
        reason: reason.into(),
    }
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sets `key` (validated) to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: &str, value: HeaderValue) -> Result<(), HeaderError> {
        validate_key(key)?;
        if let HeaderValue::Float(f) = value {
            if !f.is_finite() {
                return Err(header_error(key, "floats must be finite"));
            }
        }
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&HeaderValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key` if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(HeaderValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Headers in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Parses one command-line header, `key=value`. The value is typed as a
    /// JSON scalar when it is one (`3`, `2.5`, `true`, `null`, `"quoted text"`),
    /// otherwise it is the text as given: `-H retries=3` is an integer,
    /// `-H id="3"` and `-H name=alice` are strings.
    pub fn parse_assignment(text: &str) -> Result<(String, HeaderValue), HeaderError> {
        let Some((key, raw)) = text.split_once('=') else {
            return Err(header_error(text, "expected key=value"));
        };
        validate_key(key)?;
        let value = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Number(n)) if !n.is_i64() && !raw.contains(['.', 'e', 'E']) => {
                return Err(header_error(text, "integer out of range"));
            }
            Ok(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                from_json_scalar(&v).ok_or_else(|| header_error(text, "number out of range"))?
            }
            _ => HeaderValue::Str(raw.to_owned()),
        };
        Ok((key.to_owned(), value))
    }

    /// Builds headers from `key=value` assignments (see [`Self::parse_assignment`]).
    pub fn from_assignments<S: AsRef<str>>(items: &[S]) -> Result<Self, HeaderError> {
        let mut headers = Headers::new();
        for item in items {
            let (k, v) = Self::parse_assignment(item.as_ref())?;
            headers.insert(&k, v)?;
        }
        headers.check_size()?;
        Ok(headers)
    }

    /// The headers as a JSON object value.
    pub fn to_json_value(&self) -> Value {
        let mut map = Map::new();
        for (k, v) in &self.0 {
            map.insert(k.clone(), to_json_scalar(v));
        }
        Value::Object(map)
    }

    /// The headers as compact JSON text (how they are stored).
    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }

    /// Parses stored or user-supplied JSON: an object of scalars.
    pub fn from_json(text: &str) -> Result<Self, HeaderError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| header_error(text, format!("not valid JSON ({e})")))?;
        Self::from_json_value(&value)
    }

    /// Converts a JSON object of scalars.
    pub fn from_json_value(value: &Value) -> Result<Self, HeaderError> {
        let Value::Object(map) = value else {
            return Err(header_error(
                &value.to_string(),
                "headers must be a JSON object",
            ));
        };
        let mut headers = Headers::new();
        for (k, v) in map {
            let scalar = from_json_scalar(v).ok_or_else(|| {
                header_error(k, "values must be strings, numbers, booleans or null")
            })?;
            headers.insert(k, scalar)?;
        }
        headers.check_size()?;
        Ok(headers)
    }

    /// Refuses headers whose JSON form is over [`MAX_HEADERS_SIZE`].
    pub fn check_size(&self) -> Result<(), HeaderError> {
        let size = self.to_json().len();
        if size > MAX_HEADERS_SIZE {
            return Err(header_error(
                "headers",
                format!("{size} bytes exceeds the limit of {MAX_HEADERS_SIZE}"),
            ));
        }
        Ok(())
    }
}

fn validate_key(key: &str) -> Result<(), HeaderError> {
    if key.is_empty() {
        return Err(header_error(key, "key cannot be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(header_error(
            key,
            format!("key exceeds {MAX_KEY_LEN} bytes"),
        ));
    }
    if key.chars().any(|c| c.is_control() || c == '=') {
        return Err(header_error(
            key,
            "key cannot contain '=' or control characters",
        ));
    }
    Ok(())
}

fn from_json_scalar(v: &Value) -> Option<HeaderValue> {
    Some(match v {
        Value::String(s) => HeaderValue::Str(s.clone()),
        Value::Bool(b) => HeaderValue::Bool(*b),
        Value::Null => HeaderValue::Null,
        Value::Number(n) => match n.as_i64() {
            Some(i) => HeaderValue::Int(i),
            None if n.is_u64() => return None,
            None => HeaderValue::Float(n.as_f64()?),
        },
        Value::Array(_) | Value::Object(_) => return None,
    })
}

fn to_json_scalar(v: &HeaderValue) -> Value {
    match v {
        HeaderValue::Str(s) => Value::String(s.clone()),
        HeaderValue::Int(i) => Value::Number((*i).into()),
        HeaderValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        HeaderValue::Bool(b) => Value::Bool(*b),
        HeaderValue::Null => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> HeaderValue {
        Headers::parse_assignment(text).unwrap().1
    }

    #[test]
    fn floats_survive_the_json_round_trip_exactly() {
        // Found by fuzzing: without serde_json's float_roundtrip, 5e215 came
        // back one unit in the last place off (4.9999999999999986e+215).
        for text in ["f=5e215", "f=19e82", "f=0.1", "f=1e-300", "f=2.5"] {
            let mut h = Headers::new();
            let (k, v) = Headers::parse_assignment(text).unwrap();
            h.insert(&k, v.clone()).unwrap();
            let back = Headers::from_json(&h.to_json()).unwrap();
            assert_eq!(back.get(&k), Some(&v), "{text}");
        }
    }

    #[test]
    fn values_are_typed_like_json_scalars() {
        assert_eq!(value("a=3"), HeaderValue::Int(3));
        assert_eq!(value("a=-3"), HeaderValue::Int(-3));
        assert_eq!(value("a=98.6"), HeaderValue::Float(98.6));
        assert_eq!(value("a=true"), HeaderValue::Bool(true));
        assert_eq!(value("a=null"), HeaderValue::Null);
        assert_eq!(value("a=\"3\""), HeaderValue::Str("3".into()));
        assert_eq!(value("a=high"), HeaderValue::Str("high".into()));
        assert_eq!(value("a="), HeaderValue::Str(String::new()));
        assert_eq!(value("a=x=y"), HeaderValue::Str("x=y".into()));
        assert_eq!(value("a=[1]"), HeaderValue::Str("[1]".into()));
    }

    #[test]
    fn bad_assignments() {
        for bad in ["novalue", "=3", "a\nb=1"] {
            assert!(Headers::parse_assignment(bad).is_err(), "{bad:?}");
        }
        assert!(Headers::parse_assignment("a=99999999999999999999").is_err());
        let long = format!("{}=1", "k".repeat(MAX_KEY_LEN + 1));
        assert!(Headers::parse_assignment(&long).is_err());
    }

    #[test]
    fn repeated_key_replaces_and_order_is_kept() {
        let h = Headers::from_assignments(&["b=1", "a=2", "b=3"]).unwrap();
        assert_eq!(h.to_json(), r#"{"b":3,"a":2}"#);
    }

    #[test]
    fn json_round_trip() {
        let h =
            Headers::from_assignments(&["p=high", "n=3", "f=1.5", "ok=false", "z=null"]).unwrap();
        let back = Headers::from_json(&h.to_json()).unwrap();
        assert_eq!(back, h);
        assert!(Headers::from_json("[1]").is_err());
        assert!(Headers::from_json(r#"{"a":[1]}"#).is_err());
        assert!(Headers::from_json("{").is_err());
    }

    #[test]
    fn size_limit() {
        let big = format!("k={}", "x".repeat(MAX_HEADERS_SIZE));
        assert!(Headers::from_assignments(&[big]).is_err());
    }
}
