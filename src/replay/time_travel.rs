//! Time travel: the state of a saga at a time or a step, one context value
//! at a time, and the changes in a time range.
//!
//! Unlike sagaz (which fetches the newest 100 snapshots and filters them in
//! Python, so it answers wrongly for older times), every answer here is one
//! indexed store query, correct for sagas of any length.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::model::{HistoricalState, Snapshot, StateChange, Timestamp};
use crate::store::{BadEntry, Listing, Order, SnapshotQuery, SnapshotStore, StoreError};

/// What can go wrong answering a time-travel question.
#[derive(Debug, thiserror::Error)]
pub enum TimeTravelError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The saga has no snapshots: the id is wrong, or all of its snapshots
    /// expired.
    #[error(
        "saga {saga_id} has no snapshots (check the id with `sagascope sagas list --id-prefix`)"
    )]
    UnknownSaga {
        /// The id asked about.
        saga_id: String,
    },
    /// The time asked about is before the saga's first snapshot.
    #[error("saga {saga_id} has no snapshot at or before {at} (its first is at {first})")]
    BeforeFirst {
        /// The saga asked about.
        saga_id: String,
        /// The time asked about.
        at: Timestamp,
        /// When the saga's first snapshot was taken.
        first: Timestamp,
    },
    /// No snapshot of the saga matches the reference (an unknown id, an id of
    /// another saga's snapshot, an index out of range, a step never
    /// snapshotted).
    #[error("saga {saga_id} has no snapshot matching {reference}")]
    NoSuchSnapshot {
        /// The saga asked about.
        saga_id: String,
        /// The [`SnapshotRef`] as displayed.
        reference: String,
    },
}

/// A way to name one snapshot of a saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotRef {
    /// Position in time order: 0 = first, -1 = last.
    Index(i64),
    /// A snapshot id.
    Id(String),
    /// The newest snapshot taken for this step.
    Step(String),
    /// The state at this time (newest at or before it).
    At(Timestamp),
}

impl FromStr for SnapshotRef {
    type Err = std::convert::Infallible;

    /// An integer is an index; text that reads as a time is a time; a
    /// UUID is an id; anything else a step name. Prefix with `id:`,
    /// `step:`, `at:` or `index:` to say which.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("id:") {
            return Ok(SnapshotRef::Id(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("step:") {
            return Ok(SnapshotRef::Step(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("at:") {
            if let Ok(t) = Timestamp::parse_relative(rest, Timestamp::now()) {
                return Ok(SnapshotRef::At(t));
            }
        }
        if let Some(rest) = s.strip_prefix("index:") {
            if let Ok(i) = rest.parse() {
                return Ok(SnapshotRef::Index(i));
            }
        }
        if let Ok(i) = s.parse::<i64>() {
            return Ok(SnapshotRef::Index(i));
        }
        if uuid::Uuid::parse_str(s).is_ok() {
            return Ok(SnapshotRef::Id(s.to_string()));
        }
        if s.len() >= 10 && s.as_bytes()[4] == b'-' {
            if let Ok(t) = Timestamp::parse(s) {
                return Ok(SnapshotRef::At(t));
            }
        }
        Ok(SnapshotRef::Step(s.to_string()))
    }
}

impl fmt::Display for SnapshotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotRef::Index(i) => write!(f, "index {i}"),
            SnapshotRef::Id(id) => write!(f, "id {id}"),
            SnapshotRef::Step(s) => write!(f, "step {s:?}"),
            SnapshotRef::At(t) => write!(f, "time {t}"),
        }
    }
}

/// Finds the snapshot a reference names.
pub async fn resolve_snapshot(
    store: &dyn SnapshotStore,
    saga_id: &str,
    reference: &SnapshotRef,
) -> Result<Snapshot, TimeTravelError> {
    resolve_snapshot_noting(store, saga_id, reference, &mut Vec::new()).await
}

/// [`resolve_snapshot`], adding to `bad` the entries that could not be
/// read on the way (an index counts them too: it is a position in the
/// timeline as `snapshots` and the TUI number it).
pub async fn resolve_snapshot_noting(
    store: &dyn SnapshotStore,
    saga_id: &str,
    reference: &SnapshotRef,
    bad: &mut Vec<BadEntry>,
) -> Result<Snapshot, TimeTravelError> {
    let not_found = || TimeTravelError::NoSuchSnapshot {
        saga_id: saga_id.to_string(),
        reference: reference.to_string(),
    };
    let found = match reference {
        SnapshotRef::Id(id) => store
            .get_snapshot(id)
            .await?
            .filter(|s| s.saga_id == saga_id),
        SnapshotRef::Step(step) => store.latest_snapshot(saga_id, Some(step)).await?,
        SnapshotRef::At(t) => return state_snapshot_at(store, saga_id, *t).await,
        SnapshotRef::Index(i) => {
            let (order, skip) = if *i >= 0 {
                (Order::Asc, *i as usize)
            } else {
                (Order::Desc, (-(*i + 1)) as usize)
            };
            nth_snapshot(store, saga_id, order, skip, bad).await?
        }
    };
    found.ok_or_else(not_found)
}

/// The `skip`-th snapshot (0-based) in `order`, paging so a long saga is
/// never loaded whole. Positions count unreadable entries too, as the
/// timelines number them: asking for one of those is its error, not the
/// next readable snapshot under its number.
async fn nth_snapshot(
    store: &dyn SnapshotStore,
    saga_id: &str,
    order: Order,
    skip: usize,
    bad: &mut Vec<BadEntry>,
) -> Result<Option<Snapshot>, TimeTravelError> {
    const PAGE: usize = 500;
    let mut remaining = skip;
    let mut query = SnapshotQuery {
        order,
        limit: Some(PAGE),
        ..SnapshotQuery::default()
    };
    loop {
        let page = store.list_snapshots(saga_id, &query).await?;
        // Every unreadable entry of the pages read is named, not only those
        // before the answer: the caller says the saga has some.
        for b in &page.bad {
            if !bad.contains(b) {
                bad.push(b.clone());
            }
        }
        for e in page.in_order() {
            if remaining == 0 {
                return match e {
                    Ok(s) => Ok(Some(s.clone())),
                    Err(b) => Err(crate::store::StoreError::Corrupt { entry: b.clone() }.into()),
                };
            }
            remaining -= 1;
        }
        let Some(next) = page.next else {
            return Ok(None);
        };
        query.after = Some(next);
    }
}

async fn state_snapshot_at(
    store: &dyn SnapshotStore,
    saga_id: &str,
    at: Timestamp,
) -> Result<Snapshot, TimeTravelError> {
    if let Some(s) = store.snapshot_at(saga_id, at).await? {
        return Ok(s);
    }
    // Say why: unknown saga, or a time before its first snapshot.
    let first = store
        .list_snapshots(
            saga_id,
            &SnapshotQuery {
                limit: Some(1),
                ..SnapshotQuery::default()
            },
        )
        .await?;
    match first.items.first() {
        Some(s) => Err(TimeTravelError::BeforeFirst {
            saga_id: saga_id.to_string(),
            at,
            first: s.created_at,
        }),
        None => Err(TimeTravelError::UnknownSaga {
            saga_id: saga_id.to_string(),
        }),
    }
}

/// The saga as it was at `at`: its newest snapshot at or before that time.
pub async fn state_at(
    store: &dyn SnapshotStore,
    saga_id: &str,
    at: Timestamp,
) -> Result<HistoricalState, TimeTravelError> {
    let snap = state_snapshot_at(store, saga_id, at).await?;
    Ok(HistoricalState::from_snapshot(snap, at))
}

/// The saga as it was at a step (by index, id, name or time).
pub async fn state_at_step(
    store: &dyn SnapshotStore,
    saga_id: &str,
    reference: &SnapshotRef,
) -> Result<HistoricalState, TimeTravelError> {
    let snap = resolve_snapshot(store, saga_id, reference).await?;
    let at = snap.created_at;
    Ok(HistoricalState::from_snapshot(snap, at))
}

/// One context value at a time. `key` is a top-level key, or a dotted path
/// (`customer.address.city`, `items.0.sku`) when no top-level key has that
/// exact name. `Ok(None)` when the key did not exist then.
pub async fn value_at(
    store: &dyn SnapshotStore,
    saga_id: &str,
    at: Timestamp,
    key: &str,
) -> Result<Option<Value>, TimeTravelError> {
    let state = state_at(store, saga_id, at).await?;
    Ok(lookup(&state.context, key).cloned())
}

/// Looks a key or dotted path up in a context.
pub fn lookup<'a>(context: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = context.get(key) {
        return Some(v);
    }
    let mut parts = key.split('.');
    let mut cur = context.get(parts.next()?)?;
    for part in parts {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Snapshots created in `[after, before]` (inclusive, as sagaz), oldest
/// first, at most `limit` counted from the start of the range, each with
/// the context keys that changed since the snapshot before it.
pub async fn changes(
    store: &dyn SnapshotStore,
    saga_id: &str,
    after: Option<Timestamp>,
    before: Option<Timestamp>,
    limit: Option<usize>,
) -> Result<Listing<StateChange>, TimeTravelError> {
    let listing = store
        .list_snapshots(
            saga_id,
            &SnapshotQuery {
                order: Order::Asc,
                limit,
                since: after,
                until: before,
                after: None,
            },
        )
        .await?;
    // The snapshot just before the range, so the first change is a real diff.
    let mut previous = match (after, listing.items.first()) {
        (Some(t), Some(_)) => store
            .snapshot_at(saga_id, t.plus_micros(-1))
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    if listing.items.is_empty()
        && listing.bad.is_empty()
        && store.count_snapshots(saga_id).await? == 0
    {
        return Err(TimeTravelError::UnknownSaga {
            saga_id: saga_id.to_string(),
        });
    }
    let mut out: Vec<StateChange> = Vec::with_capacity(listing.items.len());
    for s in listing.items {
        let changed_keys = match &previous {
            None => s.context.keys().cloned().collect(),
            Some(p) => changed_top_level_keys(&p.context, &s.context),
        };
        out.push(StateChange {
            snapshot_id: s.snapshot_id.clone(),
            step_name: s.step_name.clone(),
            step_index: s.step_index,
            status: s.status.clone(),
            created_at: s.created_at,
            completed_steps: s.completed_steps.clone(),
            changed_keys,
        });
        previous = Some(s);
    }
    Ok(Listing {
        items: out,
        bad: listing.bad,
        next: None,
        bad_at: listing.bad_at,
    })
}

fn changed_top_level_keys(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut keys: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(a.keys().filter(|k| !b.contains_key(*k)).cloned());
    keys
}

/// Turns bad entries into one line each, for reports.
pub fn describe_bad(bad: &[BadEntry]) -> Vec<String> {
    bad.iter().map(|b| b.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SagaStatus;
    use crate::store::memory::MemoryStore;
    use serde_json::json;

    fn snap(saga: &str, i: i64, us: i64, ctx: Value) -> Snapshot {
        let mut s = Snapshot::new(
            saga,
            "S",
            format!("step{i}"),
            i,
            SagaStatus::Executing,
            ctx.as_object().cloned().unwrap_or_default(),
            vec![],
        );
        s.created_at = Timestamp::from_micros(1_700_000_000_000_000 + us).unwrap();
        s
    }

    #[tokio::test]
    async fn answers_every_reference_and_says_why_when_it_cannot() {
        let store = MemoryStore::new();
        for i in 0..5 {
            store
                .save_snapshot(&snap("a", i, i * 10, json!({"n": i, "c": {"d": [i]}})))
                .await
                .unwrap();
        }
        let t = |us: i64| Timestamp::from_micros(1_700_000_000_000_000 + us).unwrap();
        assert_eq!(state_at(&store, "a", t(25)).await.unwrap().step_index, 2);
        assert_eq!(state_at(&store, "a", t(30)).await.unwrap().step_index, 3);
        assert!(matches!(
            state_at(&store, "a", t(-1)).await,
            Err(TimeTravelError::BeforeFirst { .. })
        ));
        assert!(matches!(
            state_at(&store, "zz", t(0)).await,
            Err(TimeTravelError::UnknownSaga { .. })
        ));
        assert_eq!(
            value_at(&store, "a", t(40), "c.d.0").await.unwrap(),
            Some(json!(4))
        );
        assert_eq!(value_at(&store, "a", t(40), "missing").await.unwrap(), None);
        for (r, want) in [("0", 0), ("-1", 4), ("-2", 3), ("step3", 3), ("index:1", 1)] {
            let s = resolve_snapshot(&store, "a", &r.parse().unwrap())
                .await
                .unwrap();
            assert_eq!(s.step_index, want, "{r}");
        }
        assert!(resolve_snapshot(&store, "a", &"9".parse().unwrap())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn changes_are_chronological_and_limited_from_the_start() {
        let store = MemoryStore::new();
        for i in 0..10 {
            store
                .save_snapshot(&snap("a", i, i * 10, json!({"n": i / 2, "k": 1})))
                .await
                .unwrap();
        }
        let t = |us: i64| Timestamp::from_micros(1_700_000_000_000_000 + us).unwrap();
        let c = changes(&store, "a", Some(t(20)), Some(t(70)), Some(3))
            .await
            .unwrap();
        let idx: Vec<i64> = c.items.iter().map(|c| c.step_index).collect();
        assert_eq!(idx, vec![2, 3, 4]);
        // step 2 has n=1, the one before (step 1) n=0: a real diff, not "all keys".
        assert_eq!(c.items[0].changed_keys, vec!["n".to_string()]);
        assert!(c.items[1].changed_keys.is_empty());
    }

    #[test]
    fn parses_references() {
        assert_eq!("3".parse::<SnapshotRef>().unwrap(), SnapshotRef::Index(3));
        assert_eq!(
            "charge_payment".parse::<SnapshotRef>().unwrap(),
            SnapshotRef::Step("charge_payment".into())
        );
        assert!(matches!(
            "2026-01-15T10:30:00Z".parse::<SnapshotRef>().unwrap(),
            SnapshotRef::At(_)
        ));
        assert!(matches!(
            "3f1e8a52-8f0e-4a4e-9d0b-4d5b5c8f1a10"
                .parse::<SnapshotRef>()
                .unwrap(),
            SnapshotRef::Id(_)
        ));
        assert_eq!(
            "step:42".parse::<SnapshotRef>().unwrap(),
            SnapshotRef::Step("42".into())
        );
    }
}
