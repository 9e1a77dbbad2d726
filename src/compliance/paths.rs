//! JSON paths into a saga's context and the patterns that name sensitive
//! fields: `customer.email`, `card.*`, `*.ssn`, `items.*.card`, `**.iban`.
//!
//! A pattern is dot-separated segments: a key (or an array index, written
//! as a number), `*` for exactly one segment (any key or index), `**` for
//! any number of segments (zero or more). A pattern that names an object
//! or array names every value beneath it: sensitive data is handled leaf by
//! leaf, so the JSON shape and the keys stay readable.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// One step into a JSON document: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSeg {
    /// A key of an object.
    Key(String),
    /// A position in an array.
    Index(usize),
}

/// A concrete path, rendered the way patterns are written (`items.0.sku`);
/// a key holding `.`, `*` or nothing is quoted (`"a.b"`).
pub fn render(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match seg {
            PathSeg::Index(n) => out.push_str(&n.to_string()),
            PathSeg::Key(k) if k.is_empty() || k.contains(['.', '*', '"']) => {
                out.push_str(&serde_json::to_string(k).unwrap_or_default())
            }
            PathSeg::Key(k) => out.push_str(k),
        }
    }
    out
}

/// One segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatSeg {
    Key(String),
    One,
    Many,
}

/// A pattern naming sensitive fields; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segs: Vec<PatSeg>,
    text: String,
}

/// A pattern that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for PathPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| PatternError {
            pattern: text.to_string(),
            reason,
        };
        let t = text.trim().trim_start_matches("$.");
        if t.is_empty() {
            return Err(err("empty; write a key path such as customer.email"));
        }
        let mut segs = Vec::new();
        for part in t.split('.') {
            segs.push(match part {
                "" => return Err(err("an empty segment (two dots, or a dot at an end)")),
                "*" => PatSeg::One,
                "**" => PatSeg::Many,
                p if p.contains('*') => {
                    return Err(err(
                        "`*` stands for a whole segment: card.* or *.ssn, not card*",
                    ))
                }
                p => PatSeg::Key(p.to_string()),
            });
        }
        if segs.iter().all(|s| *s == PatSeg::Many) {
            return Err(err("`**` alone would name the whole context"));
        }
        Ok(PathPattern {
            segs,
            text: text.trim().to_string(),
        })
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PathPattern {
    /// True when the pattern names `path` or a node above it (a pattern
    /// naming an object names every value beneath it).
    pub fn covers(&self, path: &[PathSeg]) -> bool {
        prefix_match(&self.segs, path)
    }
}

fn seg_matches(p: &PatSeg, s: &PathSeg) -> bool {
    match (p, s) {
        (PatSeg::One, _) => true,
        (PatSeg::Key(k), PathSeg::Key(s)) => k == s,
        (PatSeg::Key(k), PathSeg::Index(i)) => k.parse::<usize>().ok() == Some(*i),
        (PatSeg::Many, _) => true,
    }
}

/// Whether the pattern matches some prefix of `path` (possibly all of it).
fn prefix_match(pat: &[PatSeg], path: &[PathSeg]) -> bool {
    match pat.split_first() {
        None => true,
        Some((PatSeg::Many, rest)) => {
            (0..=path.len()).any(|skip| prefix_match(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((s, tail)) => seg_matches(p, s) && prefix_match(rest, tail),
            None => false,
        },
    }
}

/// The sensitive-field patterns per saga name (`*` applies to every saga).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensitivePaths {
    by_name: BTreeMap<String, Vec<PathPattern>>,
}

impl SensitivePaths {
    /// Parses the config's table: saga name (or `*`) → patterns.
    pub fn parse(table: &BTreeMap<String, Vec<String>>) -> Result<Self, PatternError> {
        let mut by_name = BTreeMap::new();
        for (name, pats) in table {
            let parsed = pats
                .iter()
                .map(|p| p.parse())
                .collect::<Result<Vec<PathPattern>, _>>()?;
            by_name.insert(name.clone(), parsed);
        }
        Ok(SensitivePaths { by_name })
    }

    /// No pattern at all.
    pub fn is_empty(&self) -> bool {
        self.by_name.values().all(Vec::is_empty)
    }

    /// The patterns that apply to sagas named `saga_name`: its own and `*`.
    pub fn for_saga<'a>(
        &'a self,
        saga_name: &'a str,
    ) -> impl Iterator<Item = &'a PathPattern> + 'a {
        self.by_name
            .iter()
            .filter(move |(n, _)| n.as_str() == "*" || n.as_str() == saga_name)
            .flat_map(|(_, p)| p.iter())
    }

    /// Every pattern of every saga name, for records that do not say which
    /// saga they belong to (a replay log's override).
    pub fn all(&self) -> impl Iterator<Item = &PathPattern> + '_ {
        self.by_name.values().flatten()
    }

    /// Whether `path` of a `saga_name` saga's context is sensitive.
    pub fn is_sensitive(&self, saga_name: &str, path: &[PathSeg]) -> bool {
        self.for_saga(saga_name).any(|p| p.covers(path))
    }
}

/// An object standing for a value that is not there in clear: a
/// ciphertext (`{"$enc": …}`) or an erasure tombstone (`{"$erased": …}`).
/// Walks treat it as one leaf.
pub fn is_opaque(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("$enc") || m.contains_key("$erased"))
}

/// Calls `f` on every leaf of `ctx` (scalars, empty containers, opaque
/// objects) with its path.
pub fn visit_leaves_mut(ctx: &mut Map<String, Value>, f: &mut dyn FnMut(&[PathSeg], &mut Value)) {
    let mut path = Vec::new();
    for (k, v) in ctx.iter_mut() {
        path.push(PathSeg::Key(k.clone()));
        walk_mut(v, &mut path, f);
        path.pop();
    }
}

fn walk_mut(v: &mut Value, path: &mut Vec<PathSeg>, f: &mut dyn FnMut(&[PathSeg], &mut Value)) {
    if is_opaque(v) {
        return f(path, v);
    }
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m.iter_mut() {
                path.push(PathSeg::Key(k.clone()));
                walk_mut(c, path, f);
                path.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, c) in a.iter_mut().enumerate() {
                path.push(PathSeg::Index(i));
                walk_mut(c, path, f);
                path.pop();
            }
        }
        _ => f(path, v),
    }
}

/// Calls `f` on every leaf of `ctx` that `patterns` cover.
pub fn visit_matching_mut<'p>(
    ctx: &mut Map<String, Value>,
    patterns: impl Iterator<Item = &'p PathPattern> + Clone,
    f: &mut dyn FnMut(&[PathSeg], &mut Value),
) {
    visit_leaves_mut(ctx, &mut |path, v| {
        if patterns.clone().any(|p| p.covers(path)) {
            f(path, v)
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> PathPattern {
        s.parse().unwrap()
    }
    fn path(v: &[&str]) -> Vec<PathSeg> {
        v.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => PathSeg::Index(i),
                Err(_) => PathSeg::Key(s.to_string()),
            })
            .collect()
    }

    #[test]
    fn patterns_match_keys_wildcards_and_everything_beneath() {
        assert!(p("customer.email").covers(&path(&["customer", "email"])));
        assert!(!p("customer.email").covers(&path(&["customer", "id"])));
        assert!(p("card.*").covers(&path(&["card", "number"])));
        assert!(!p("card.*").covers(&path(&["card"])));
        assert!(p("*.ssn").covers(&path(&["person", "ssn"])));
        assert!(!p("*.ssn").covers(&path(&["a", "b", "ssn"])));
        assert!(p("**.ssn").covers(&path(&["a", "b", "ssn"])));
        assert!(p("**.ssn").covers(&path(&["ssn"])));
        assert!(p("shipping_address").covers(&path(&["shipping_address", "city"])));
        assert!(p("items.*.card").covers(&path(&["items", "3", "card"])));
        assert!(p("items.0").covers(&path(&["items", "0", "sku"])));
        assert!(!p("items.0").covers(&path(&["items", "1", "sku"])));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for bad in ["", "a..b", "card*", "**", ".a"] {
            let e = bad.parse::<PathPattern>().unwrap_err();
            assert!(e.to_string().contains("invalid field pattern"), "{e}");
        }
    }

    #[test]
    fn walks_visit_leaves_with_their_paths_and_opaque_objects_whole() {
        let mut ctx = json!({
            "customer": {"email": "a@b.c", "id": "C-1"},
            "items": [{"sku": "X"}],
            "token": {"$enc": "x", "kid": "k"},
        })
        .as_object()
        .unwrap()
        .clone();
        let mut seen = Vec::new();
        visit_leaves_mut(&mut ctx, &mut |p, _| seen.push(render(p)));
        assert_eq!(
            seen,
            ["customer.email", "customer.id", "items.0.sku", "token"]
        );
        let pats = [p("customer.email"), p("token")];
        visit_matching_mut(&mut ctx, pats.iter(), &mut |_, v| *v = json!("X"));
        assert_eq!(ctx["customer"]["email"], "X");
        assert_eq!(ctx["customer"]["id"], "C-1");
        assert_eq!(ctx["token"], "X");
    }
}
