//! Applying a context override: sagaz's shallow update, or an RFC 7396
//! JSON merge patch; and reading overrides as people type them.

use std::path::Path;

use serde_json::{Map, Value};

/// How an override is merged into the checkpoint's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// `context.update(override)`: top-level keys replaced whole (sagaz).
    #[default]
    Shallow,
    /// RFC 7396: objects merged recursively, `null` deletes a key.
    Patch,
}

impl MergeMode {
    /// The mode's name as recorded in the replay log's `merge` key: `"shallow"`
    /// or `"patch"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMode::Shallow => "shallow",
            MergeMode::Patch => "patch",
        }
    }
}

/// RFC 7396 merge patch, applied in place.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.shift_remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The context a replay starts with.
pub fn apply_override(
    context: &Map<String, Value>,
    over: &Map<String, Value>,
    mode: MergeMode,
) -> Map<String, Value> {
    let mut out = context.clone();
    match mode {
        MergeMode::Shallow => {
            for (k, v) in over {
                out.insert(k.clone(), v.clone());
            }
        }
        MergeMode::Patch => {
            let mut v = Value::Object(out);
            merge_patch(&mut v, &Value::Object(over.clone()));
            out = match v {
                Value::Object(m) => m,
                _ => Map::new(),
            };
        }
    }
    out
}

/// Why an override could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// A `--override` pair has no `=` or an empty key; holds the pair as given.
    #[error("--override {0:?}: expected key=value")]
    NotKeyValue(String),
    /// The text is not valid JSON.
    #[error("{source_name}: invalid JSON: {reason}")]
    InvalidJson {
        /// Where the text came from, e.g. `--override-json` or
        /// `--override-file o.json`.
        source_name: String,
        /// The JSON parser's message, with line and column.
        reason: String,
    },
    /// The text is valid JSON but not an object.
    #[error("{source_name}: must be a JSON object, not {found}")]
    NotObject {
        /// Where the text came from, e.g. `--override-json`.
        source_name: String,
        /// The JSON type found instead (`"array"`, `"string"`, ...).
        found: &'static str,
    },
    /// An input file could not be read, is empty, or is not UTF-8 text.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file as named (`-` for stdin).
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Two sources set one top-level key to different values.
    #[error("override key {key:?} is set to {first_value} by {first} and to {second_value} by {second}; give it once")]
    Conflict {
        /// The top-level key.
        key: String,
        /// The source that set it first, e.g. `--override-file o.json`.
        first: String,
        /// The value the first source gives, as JSON text.
        first_value: String,
        /// The source that set it again, e.g. `--override amount=10`.
        second: String,
        /// The value the second source gives, as JSON text.
        second_value: String,
    },
    /// An input file is larger than [`MAX_OVERRIDE_BYTES`](crate::limits::MAX_OVERRIDE_BYTES).
    #[error("{flag} {path}: larger than the {} cap", crate::limits::human_bytes(*cap))]
    TooLarge {
        /// The file as named (`-` for stdin).
        path: String,
        /// The option that named it, e.g. `--override-file`.
        flag: String,
        /// The size limit, in bytes.
        cap: usize,
    },
}

/// `key=value`: the value is JSON when it parses as JSON, else a string.
pub fn parse_key_value(s: &str) -> Result<(String, Value), OverrideError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| OverrideError::NotKeyValue(s.into()))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(OverrideError::NotKeyValue(s.into()));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

/// Parses a JSON object given on the command line or in a file.
pub fn parse_object(text: &str, source_name: &str) -> Result<Map<String, Value>, OverrideError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(OverrideError::NotObject {
            source_name: source_name.into(),
            found: crate::model::fields_type_name(&other),
        }),
        Err(e) => Err(OverrideError::InvalidJson {
            source_name: source_name.into(),
            reason: e.to_string(),
        }),
    }
}

/// Reads a JSON input file a person named (`-` is stdin): a regular file,
/// a pipe (`<(jq …)`) or a device, [`MAX_OVERRIDE_BYTES`] at most. A FIFO
/// with no writer is empty, never a hang; `/dev/zero` stops at the cap.
///
/// [`MAX_OVERRIDE_BYTES`]: crate::limits::MAX_OVERRIDE_BYTES
pub fn read_json_input(path: &Path, flag: &str) -> Result<String, OverrideError> {
    use crate::limits::{self, FileReadError, MAX_OVERRIDE_BYTES};
    let shown = path.display().to_string();
    let read_err = |e: FileReadError| match e {
        FileReadError::TooLarge { cap } => OverrideError::TooLarge {
            path: shown.clone(),
            flag: flag.to_string(),
            cap,
        },
        other => OverrideError::Read {
            path: shown.clone(),
            reason: other.to_string(),
        },
    };
    let bytes = if path == Path::new("-") {
        limits::read_capped(std::io::stdin().lock(), MAX_OVERRIDE_BYTES, 0)
    } else {
        limits::read_input_file(path, MAX_OVERRIDE_BYTES)
    }
    .map_err(read_err)?;
    if bytes.is_empty() {
        // Also what a FIFO nobody writes to reads as.
        return Err(OverrideError::Read {
            path: shown,
            reason: format!("{flag} is empty; give a JSON object"),
        });
    }
    String::from_utf8(bytes).map_err(|e| OverrideError::Read {
        path: shown.clone(),
        reason: format!("not UTF-8 text ({e})"),
    })
}

/// Builds one override from a file, a JSON object and `key=value` pairs.
/// A top-level key set by two of them (or twice) to different values is
/// an error naming both: which one should win is not obvious, and a
/// silently dropped value replays the wrong context.
pub fn build_override(
    file: Option<&Path>,
    json: Option<&str>,
    pairs: &[String],
) -> Result<Map<String, Value>, OverrideError> {
    let mut out = Map::new();
    let mut set_by: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut add = |out: &mut Map<String, Value>,
                   key: String,
                   value: Value,
                   source: String|
     -> Result<(), OverrideError> {
        match out.get(&key) {
            Some(old) if *old != value => Err(OverrideError::Conflict {
                first: set_by.get(&key).cloned().unwrap_or_default(),
                first_value: old.to_string(),
                second: source,
                second_value: value.to_string(),
                key,
            }),
            Some(_) => Ok(()),
            None => {
                set_by.insert(key.clone(), source);
                out.insert(key, value);
                Ok(())
            }
        }
    };
    if let Some(p) = file {
        let text = read_json_input(p, "--override-file")?;
        let name = format!("--override-file {}", p.display());
        for (k, v) in parse_object(&text, &name)? {
            add(&mut out, k, v, name.clone())?;
        }
    }
    if let Some(j) = json {
        for (k, v) in parse_object(j, "--override-json")? {
            add(&mut out, k, v, "--override-json".into())?;
        }
    }
    for p in pairs {
        let (k, v) = parse_key_value(p)?;
        add(&mut out, k, v, format!("--override {p}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(target: Value, patch: Value) -> Value {
        let mut t = target;
        merge_patch(&mut t, &patch);
        t
    }

    #[test]
    fn rfc7396_appendix_a_cases() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (t, p, want) in cases {
            assert_eq!(patched(t.clone(), p.clone()), want, "target {t} patch {p}");
        }
    }

    #[test]
    fn shallow_replaces_nested_objects_whole_patch_merges_them() {
        let ctx = json!({"card": {"token": "expired", "last4": "4242"}, "n": 1});
        let ctx = ctx.as_object().unwrap();
        let over = json!({"card": {"token": "tok_valid"}});
        let over = over.as_object().unwrap();
        assert_eq!(
            Value::Object(apply_override(ctx, over, MergeMode::Shallow)),
            json!({"card": {"token": "tok_valid"}, "n": 1})
        );
        assert_eq!(
            Value::Object(apply_override(ctx, over, MergeMode::Patch)),
            json!({"card": {"token": "tok_valid", "last4": "4242"}, "n": 1})
        );
    }

    #[test]
    fn key_value_parses_json_or_falls_back_to_string() {
        assert_eq!(parse_key_value("n=5").unwrap(), ("n".into(), json!(5)));
        assert_eq!(
            parse_key_value("t=tok_valid").unwrap(),
            ("t".into(), json!("tok_valid"))
        );
        assert_eq!(
            parse_key_value("o={\"a\":1}").unwrap(),
            ("o".into(), json!({"a":1}))
        );
        assert_eq!(
            parse_key_value("s=a=b").unwrap(),
            ("s".into(), json!("a=b"))
        );
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn a_key_set_twice_to_different_values_is_an_error_naming_both_sources() {
        let e = build_override(None, Some(r#"{"a": 2, "b": 1}"#), &["a=1".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"override key "a" is set to 2 by --override-json and to 1 by --override a=1; give it once"#
        );
        let e = build_override(None, None, &["x=1".into(), "x=true".into()]).unwrap_err();
        assert!(matches!(e, OverrideError::Conflict { .. }), "{e}");
        // The same value twice is no conflict.
        let o = build_override(None, Some(r#"{"a": 1}"#), &["a=1".into(), "b=x".into()]).unwrap();
        assert_eq!(
            o,
            serde_json::from_str::<Map<_, _>>(r#"{"a":1,"b":"x"}"#).unwrap()
        );
    }

    #[test]
    fn invalid_override_json_is_an_error() {
        let e = build_override(None, Some("{not json"), &[]).unwrap_err();
        assert!(matches!(e, OverrideError::InvalidJson { .. }), "{e}");
        let e = build_override(None, Some("[1]"), &[]).unwrap_err();
        assert!(matches!(e, OverrideError::NotObject { .. }), "{e}");
    }
}
