//! Where a value in a saga's context changed: the paths the TUI's context
//! rows and the `where-changed` command name, the jump the TUI makes from
//! one snapshot to the change before or after it, and every change of one
//! value along a timeline.

use serde::Serialize;
use serde_json::Value;

use crate::model::{SagaStatus, Timestamp};
use crate::store::{BadEntry, Order, SnapshotCursor, SnapshotQuery, SnapshotStore, StoreError};

/// One step of a path into a context: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A member of an object, by key (any string, dots included).
    Key(String),
    /// An element of an array, from 0.
    Index(usize),
}

/// Displays `$.customer.tier`, `$.items[2]`, `$["odd key"]`.
pub fn path_label(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            Seg::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Key(k) => s.push_str(&format!("[{}]", Value::String(k.clone()))),
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The value at a path in a context (`None` when absent).
pub fn value_at_path<'a>(
    context: &'a serde_json::Map<String, Value>,
    path: &[Seg],
) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = match first {
        Seg::Key(k) => context.get(k)?,
        Seg::Index(_) => return None,
    };
    for seg in rest {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A path that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it, and where.
    pub reason: String,
}

/// Parses a path as [`path_label`] writes it, the `$` optional:
/// `customer.email`, `$.items[2].sku`, `$["odd key"]`.
pub fn parse_path(text: &str) -> Result<Vec<Seg>, PathError> {
    let err = |reason: &str| PathError {
        path: text.to_string(),
        reason: reason.to_string(),
    };
    let mut rest = text.trim();
    rest = rest.strip_prefix('$').unwrap_or(rest);
    let mut out = Vec::new();
    let mut first = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let close = if r.starts_with('"') {
                // A JSON string: find its closing quote (escapes skipped).
                let mut escaped = false;
                let mut end = None;
                for (i, c) in r.char_indices().skip(1) {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| err("unterminated quoted key"))?;
                let key: String =
                    serde_json::from_str(&r[..=end]).map_err(|_| err("bad quoted key"))?;
                out.push(Seg::Key(key));
                end + 1
            } else {
                let end = r.find(']').ok_or_else(|| err("missing `]`"))?;
                let i = r[..end]
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| err("an index in `[…]` is a number or a quoted key"))?;
                out.push(Seg::Index(i));
                end
            };
            rest = r[close..]
                .strip_prefix(']')
                .ok_or_else(|| err("missing `]`"))?;
        } else {
            let r = match rest.strip_prefix('.') {
                Some(r) => r,
                None if first => rest,
                None => return Err(err("expected `.` or `[` between keys")),
            };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(err("empty key"));
            }
            out.push(Seg::Key(r[..end].to_string()));
            rest = &r[end..];
        }
        first = false;
    }
    if out.is_empty() {
        return Err(err("a path names at least one key"));
    }
    Ok(out)
}

/// Where a jump from one snapshot to a change of a value lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeJump {
    /// Forward: the next snapshot whose value differs.
    ChangesNext(String),
    /// Back: the snapshot where the value became what it is now.
    LastChanged(String),
    /// Back: the value has been this since the saga's first snapshot (the id).
    SinceFirst(String),
}

/// Why a jump found nowhere to land.
#[derive(Debug, thiserror::Error)]
pub enum WhereChangedError {
    /// The store failed while reading the timeline.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The snapshot the jump starts from was deleted since it was shown.
    #[error("the current snapshot is gone from the store")]
    Gone,
    /// Forward: the value stays as it is to the end of the timeline.
    #[error("{0} does not change after this snapshot")]
    NoLaterChange(String),
}

/// Walks from `from` (back or forward) comparing the value at `path` with
/// its value at `from`; lands on the snapshot where it last became that
/// value (back) or next differs (forward). Holds one page of snapshots at
/// a time.
pub async fn jump_to_change(
    store: &dyn SnapshotStore,
    saga_id: &str,
    from: &SnapshotCursor,
    path: &[Seg],
    forward: bool,
) -> Result<ChangeJump, WhereChangedError> {
    let here = store
        .get_snapshot(&from.snapshot_id)
        .await?
        .ok_or(WhereChangedError::Gone)?;
    let current = value_at_path(&here.context, path).cloned();
    let mut after = Some(from.clone());
    let mut newer_same = here.snapshot_id.clone();
    const PAGE: usize = 50;
    loop {
        let listing = store
            .list_snapshots(
                saga_id,
                &SnapshotQuery {
                    order: if forward { Order::Asc } else { Order::Desc },
                    limit: Some(PAGE),
                    after: after.clone(),
                    ..SnapshotQuery::default()
                },
            )
            .await?;
        for s in &listing.items {
            if value_at_path(&s.context, path) != current.as_ref() {
                return Ok(if forward {
                    ChangeJump::ChangesNext(s.snapshot_id.clone())
                } else {
                    ChangeJump::LastChanged(newer_same)
                });
            }
            newer_same = s.snapshot_id.clone();
        }
        match listing.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if forward {
        Err(WhereChangedError::NoLaterChange(path_label(path)))
    } else {
        Ok(ChangeJump::SinceFirst(newer_same))
    }
}

/// One snapshot where the value at a path differs from the snapshot
/// before it (for the first snapshot: from absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueChange {
    /// Position in the saga's timeline, unreadable entries included (as
    /// `snapshots` numbers them).
    pub index: usize,
    /// The snapshot's id.
    pub snapshot_id: String,
    /// When the snapshot was taken.
    pub created_at: Timestamp,
    /// The step the snapshot was taken at.
    pub step_name: String,
    /// That step's position in the saga's definition (from 0).
    pub step_index: i64,
    /// The saga's status in this snapshot.
    pub status: SagaStatus,
    /// The value before (`None`: absent).
    pub old: Option<Value>,
    /// The value here (`None`: removed).
    pub new: Option<Value>,
}

/// Every change of one value along a saga's timeline, oldest first, and
/// the entries that could not be read (skipped: the comparison goes on
/// from the last readable snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PathChanges {
    /// The changes, oldest first; empty when the value never appears.
    pub changes: Vec<ValueChange>,
    /// Snapshots in the timeline that could not be read, named.
    pub bad_entries: Vec<BadEntry>,
}

/// Reads a saga's timeline a page at a time (one page of contexts held)
/// and lists the snapshots where the value at `path` changed.
pub async fn changes_at_path(
    store: &dyn SnapshotStore,
    saga_id: &str,
    path: &[Seg],
) -> Result<PathChanges, StoreError> {
    const PAGE: usize = 50;
    let mut out = PathChanges::default();
    let mut seen_bad = std::collections::HashSet::new();
    let mut query = SnapshotQuery {
        order: Order::Asc,
        limit: Some(PAGE),
        ..SnapshotQuery::default()
    };
    let mut prev: Option<Value> = None;
    let mut index = 0usize;
    loop {
        let listing = store.list_snapshots(saga_id, &query).await?;
        for e in listing.in_order() {
            match e {
                Err(b) => {
                    // A backend may report an index problem with every page.
                    if seen_bad.insert((b.key.clone(), b.error.clone())) {
                        out.bad_entries.push(b.clone());
                        index += 1;
                    }
                }
                Ok(s) => {
                    let v = value_at_path(&s.context, path).cloned();
                    if v != prev {
                        out.changes.push(ValueChange {
                            index,
                            snapshot_id: s.snapshot_id.clone(),
                            created_at: s.created_at,
                            step_name: s.step_name.clone(),
                            step_index: s.step_index,
                            status: s.status.clone(),
                            old: prev.take(),
                            new: v.clone(),
                        });
                    }
                    prev = v;
                    index += 1;
                }
            }
        }
        match listing.next {
            Some(n) => query.after = Some(n),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_as_labels_write_them() {
        let k = |s: &str| Seg::Key(s.into());
        assert_eq!(
            parse_path("customer.email").unwrap(),
            vec![k("customer"), k("email")]
        );
        assert_eq!(
            parse_path("$.items[2].sku").unwrap(),
            vec![k("items"), Seg::Index(2), k("sku")]
        );
        assert_eq!(
            parse_path(r#"$["odd key"].x"#).unwrap(),
            vec![k("odd key"), k("x")]
        );
        for p in [
            vec![k("a"), Seg::Index(0), k("b c"), k("d_1")],
            vec![k("x\"y")],
        ] {
            assert_eq!(parse_path(&path_label(&p)).unwrap(), p);
        }
        for bad in ["", "$", "a..b", "a[", "a[x]", r#"["open"#] {
            assert!(parse_path(bad).is_err(), "{bad:?}");
        }
    }
}
