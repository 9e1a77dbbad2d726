//! Field-by-field reading of a JSON object into a record, with errors that
//! name the field. Used instead of `#[derive(Deserialize)]` + `flatten` so
//! that unknown fields are kept in order and a bad entry says what is wrong.

use serde_json::{Map, Value};

use super::Timestamp;

/// What is wrong with a record read from a store.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// The record is valid JSON but not an object (e.g. an array or a string).
    #[error("not a JSON object (found {found})")]
    NotAnObject {
        /// The JSON type that was found (`"array"`, `"string"`, ...).
        found: &'static str,
    },
    /// A field sagaz always writes is absent.
    #[error("missing field `{field}`")]
    Missing {
        /// The absent field's key in sagaz's dict form, e.g. `context`.
        field: &'static str,
    },
    /// A field holds the wrong JSON type, e.g. `step_index` as a string.
    #[error("field `{field}`: expected {expected}, found {found}")]
    WrongType {
        /// The field's key in sagaz's dict form.
        field: &'static str,
        /// What sagaz writes there, e.g. `"integer"` or `"string or null"`.
        expected: &'static str,
        /// The JSON type that was found (`"string"`, `"null"`, ...).
        found: String,
    },
    /// A field has the right type but an unreadable value, e.g. a timestamp
    /// that does not parse.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The field's key in sagaz's dict form.
        field: &'static str,
        /// What is wrong with the value, e.g. the timestamp parse error.
        reason: String,
    },
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) struct Fields(pub Map<String, Value>);

impl Fields {
    pub fn from_value(v: Value) -> Result<Self, RecordError> {
        match v {
            Value::Object(m) => Ok(Fields(m)),
            other => Err(RecordError::NotAnObject {
                found: type_name(&other),
            }),
        }
    }

    fn take(&mut self, field: &'static str) -> Result<Value, RecordError> {
        self.0
            .shift_remove(field)
            .ok_or(RecordError::Missing { field })
    }

    fn wrong(field: &'static str, expected: &'static str, v: &Value) -> RecordError {
        RecordError::WrongType {
            field,
            expected,
            found: type_name(v).to_string(),
        }
    }

    pub fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        match self.take(field)? {
            Value::String(s) => Ok(s),
            other => Err(Self::wrong(field, "string", &other)),
        }
    }

    pub fn opt_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        match self.0.shift_remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Self::wrong(field, "string or null", &other)),
        }
    }

    pub fn int(&mut self, field: &'static str) -> Result<i64, RecordError> {
        match self.take(field)? {
            Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            other => Err(Self::wrong(field, "integer", &other)),
        }
    }

    pub fn object(&mut self, field: &'static str) -> Result<Map<String, Value>, RecordError> {
        match self.take(field)? {
            Value::Object(m) => Ok(m),
            other => Err(Self::wrong(field, "object", &other)),
        }
    }

    /// An object that may be absent (PostgreSQL drops `external_refs`).
    pub fn object_or_empty(
        &mut self,
        field: &'static str,
    ) -> Result<Map<String, Value>, RecordError> {
        match self.0.shift_remove(field) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(Self::wrong(field, "object", &other)),
        }
    }

    pub fn opt_value(&mut self, field: &'static str) -> Option<Value> {
        match self.0.shift_remove(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn string_list(&mut self, field: &'static str) -> Result<Vec<String>, RecordError> {
        match self.take(field)? {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(Self::wrong(field, "array of strings", &other)),
                })
                .collect(),
            other => Err(Self::wrong(field, "array of strings", &other)),
        }
    }

    pub fn timestamp(&mut self, field: &'static str) -> Result<Timestamp, RecordError> {
        let s = self.string(field)?;
        Timestamp::parse(&s).map_err(|e| RecordError::Invalid {
            field,
            reason: e.to_string(),
        })
    }

    pub fn opt_timestamp(&mut self, field: &'static str) -> Result<Option<Timestamp>, RecordError> {
        match self.opt_string(field)? {
            None => Ok(None),
            Some(s) => Timestamp::parse(&s)
                .map(Some)
                .map_err(|e| RecordError::Invalid {
                    field,
                    reason: e.to_string(),
                }),
        }
    }

    /// What is left: fields this version does not know.
    pub fn rest(self) -> Map<String, Value> {
        self.0
    }
}
