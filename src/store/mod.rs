//! Snapshot stores: one async trait for every backend, the types its
//! operations take, and [`open`], which picks a backend by URL.
//!
//! Every backend passes the same conformance suite (`tests/conformance`).
//! A backend declares what it can and cannot keep in [`Capabilities`];
//! the suite checks each claim.

#[cfg(any(feature = "s3", feature = "kms"))]
pub(crate) mod aws;
pub mod codec;
mod entry;
mod error;
mod filter;
mod forward;
pub use self::objects::conn::fs;
mod layers;
mod lend;
pub mod memory;
pub mod objects;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod rows;
#[cfg(feature = "s3")]
pub use self::objects::conn::s3;
mod sql;
pub mod sqlite;
mod url;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{ReplayLog, SagaStatus, SagaSummary, Snapshot, Timestamp};

pub use self::error::{BadEntry, EntryError, StoreError, StoreResult};
pub use self::filter::{QueryError, QUERY_KEYS};
pub use self::layers::ReadOnlyStore;
pub use self::url::{param_is_secret as url_param_is_secret, redact, StoreUrl};

/// Maps entries on every core when there are enough of them to pay for the
/// hand-off, keeping their order. Decoding 100 snapshots of 1 KB (zstd,
/// JSON, the record) takes ~0.6 ms on one core here, more than the round
/// trip that fetched them.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    const MIN_ITEMS: usize = 32;
    if items.len() < MIN_ITEMS {
        return items.iter().map(f).collect();
    }
    items
        .par_iter()
        .with_min_len(MIN_ITEMS / 2)
        .map(f)
        .collect()
}

/// Order of a saga's snapshots: by `created_at`, ties by `snapshot_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first (sagaz's `list_snapshots` order).
    Desc,
}

/// A position in a saga's snapshot order, for keyset paging.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapshotCursor {
    /// The snapshot's `created_at`: the first key of the order.
    pub created_at: Timestamp,
    /// The snapshot's id: breaks ties between snapshots taken in the same
    /// microsecond.
    pub snapshot_id: String,
}

impl SnapshotCursor {
    /// The cursor standing at `s` (a page starting here begins just past it).
    pub fn of(s: &Snapshot) -> Self {
        SnapshotCursor {
            created_at: s.created_at,
            snapshot_id: s.snapshot_id.clone(),
        }
    }
}

/// Which of a saga's snapshots to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotQuery {
    /// Oldest first (the default) or newest first.
    pub order: Order,
    /// At most this many (all when `None`).
    pub limit: Option<usize>,
    /// Only those created at or after this time.
    pub since: Option<Timestamp>,
    /// Only those created at or before this time.
    pub until: Option<Timestamp>,
    /// Only those strictly after this position in `order`.
    pub after: Option<SnapshotCursor>,
}

impl SnapshotQuery {
    /// All snapshots, oldest first.
    pub fn all() -> Self {
        Self::default()
    }

    /// The newest `n`, newest first (what sagaz's `list_snapshots` returns).
    pub fn newest(n: usize) -> Self {
        SnapshotQuery {
            order: Order::Desc,
            limit: Some(n),
            ..Self::default()
        }
    }

    /// Whether a snapshot falls in the time range and after the cursor.
    pub fn admits(&self, s: &Snapshot) -> bool {
        if self.since.is_some_and(|t| s.created_at < t)
            || self.until.is_some_and(|t| s.created_at > t)
        {
            return false;
        }
        match &self.after {
            None => true,
            Some(c) => {
                let pos = (&s.created_at, &s.snapshot_id);
                let cur = (&c.created_at, &c.snapshot_id);
                match self.order {
                    Order::Asc => pos > cur,
                    Order::Desc => pos < cur,
                }
            }
        }
    }
}

/// Results that may include entries that could not be read.
///
/// The paging contract of [`SnapshotStore::list_snapshots`], the same on
/// every backend: `limit` caps the readable `items`; every unreadable entry
/// met on the way is in `bad` (never counted, never dropped); `next` is set
/// when the limit stopped the listing before the end of the range, and is
/// where the next page starts. A page with `next == None` is the last one,
/// however short. (Deciding "end" by `items.len() < limit` is what made one
/// corrupt row end a timeline early on the SQL stores.)
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// The readable entries, in the query's order; at most `limit` of them.
    pub items: Vec<T>,
    /// Entries in range that could not be decoded, named.
    pub bad: Vec<BadEntry>,
    /// Where the next page starts (snapshot listings cut by `limit`);
    /// `None` at the end and for listings that are not paged.
    pub next: Option<SnapshotCursor>,
    /// For each entry of `bad` (in order), how many `items` come before it,
    /// where the backend read them in order; entries of `bad` past the end
    /// of this list come after every item. Lets a timeline show a broken
    /// snapshot where it stands.
    pub bad_at: Vec<usize>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            items: Vec::new(),
            bad: Vec::new(),
            next: None,
            bad_at: Vec::new(),
        }
    }
}

impl<T: Clone> Listing<T> {
    /// Adds another listing's items and unreadable entries after these, in
    /// its order.
    pub fn append(&mut self, other: Listing<T>) {
        for e in other.in_order() {
            match e {
                Ok(item) => self.items.push(item.clone()),
                Err(b) => self.push_bad(b.clone()),
            }
        }
    }
}

impl<T> Listing<T> {
    /// Names an unreadable entry that stands after the items so far.
    pub fn push_bad(&mut self, b: BadEntry) {
        // Positions are only meaningful while every bad entry has one.
        if self.bad_at.len() == self.bad.len() {
            self.bad_at.push(self.items.len());
        }
        self.bad.push(b);
    }

    /// Items and unreadable entries interleaved in listing order (as far
    /// as the backend told; see `bad_at`).
    pub fn in_order(&self) -> impl Iterator<Item = Result<&T, &BadEntry>> + '_ {
        let mut out = Vec::with_capacity(self.items.len() + self.bad.len());
        let mut bad = self.bad.iter().enumerate().peekable();
        for (i, item) in self.items.iter().enumerate() {
            while let Some((_, b)) =
                bad.next_if(|(k, _)| self.bad_at.get(*k).is_some_and(|at| *at <= i))
            {
                out.push(Err(b));
            }
            out.push(Ok(item));
        }
        out.extend(bad.map(|(_, b)| Err(b)));
        out.into_iter()
    }
}

impl Listing<Snapshot> {
    /// Keeps at most `limit` items of an in-order list, setting `next`
    /// when some were left: what every backend that reads one entry more
    /// than asked does to end its page.
    pub fn cut(mut self, limit: Option<usize>) -> Self {
        if let Some(n) = limit {
            if self.items.len() > n {
                self.items.truncate(n);
                self.next = self.items.last().map(SnapshotCursor::of);
            }
        }
        self
    }
}

/// One page of [`Listing`] built from entries read in order, `rows` at a
/// time from `offset` (`fetch(rows, offset)`; fewer than `rows` back means
/// the range ended; `None` is an entry that is gone, e.g. an expired value
/// still in an index): at most `limit` readable entries that `admit` keeps,
/// every unreadable one before the page's end in `bad`, `next` set when a
/// readable entry follows the last one taken.
///
/// An unreadable entry after the last readable one is reported on this
/// page only if nothing readable follows it; otherwise it belongs to the
/// next page (which starts after the last readable entry), so no entry is
/// reported twice and none is skipped.
pub(crate) async fn page_in_order<F, Fut>(
    limit: usize,
    admit: impl Fn(&Snapshot) -> bool,
    mut fetch: F,
) -> StoreResult<Listing<Snapshot>>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<Option<Result<Snapshot, BadEntry>>>>>,
{
    let mut out = Listing::default();
    if limit == 0 {
        return Ok(out);
    }
    let mut pending: Vec<BadEntry> = Vec::new();
    let mut offset = 0usize;
    // One row more than asked tells whether more follow; a batch short of
    // readable rows is followed by larger ones. At most 1,000 a read: one
    // round trip's worth on every backend.
    const MAX_ROWS: usize = 1000;
    let mut rows = limit.saturating_add(1).min(MAX_ROWS);
    loop {
        let got = fetch(rows, offset).await?;
        let n = got.len();
        for r in got.into_iter().flatten() {
            match r {
                Ok(s) if !admit(&s) => {}
                Ok(s) => {
                    if out.items.len() == limit {
                        out.next = out.items.last().map(SnapshotCursor::of);
                        return Ok(out);
                    }
                    out.items.push(s);
                }
                Err(b) if out.items.len() == limit => pending.push(b),
                Err(b) => out.push_bad(b),
            }
        }
        if n < rows {
            for b in pending.drain(..) {
                out.push_bad(b);
            }
            return Ok(out);
        }
        offset += n;
        rows = rows.clamp(64, MAX_ROWS);
    }
}

/// Every page of a saga's snapshots in `query`'s range and order, `page`
/// readable snapshots at a time (unreadable ones ride along in each
/// page's `bad`), following each page's `next` until the last: the one
/// loop every reader of a whole timeline uses.
pub fn snapshot_pages<'a>(
    store: &'a dyn SnapshotStore,
    saga_id: &'a str,
    query: SnapshotQuery,
    page: usize,
) -> impl futures::Stream<Item = StoreResult<Listing<Snapshot>>> + Send + 'a {
    let first = SnapshotQuery {
        limit: Some(page.max(1)),
        ..query
    };
    futures::stream::try_unfold(Some(first), move |q| async move {
        let Some(q) = q else { return Ok(None) };
        let got = store.list_snapshots(saga_id, &q).await?;
        let next = got.next.clone().map(|c| SnapshotQuery {
            after: Some(c),
            ..q.clone()
        });
        Ok(Some((got, next)))
    })
}

/// Every snapshot of a saga in `query`'s range, oldest first unless the
/// query says otherwise, with every unreadable entry named: the pages of
/// [`snapshot_pages`] gathered.
pub async fn all_snapshots(
    store: &dyn SnapshotStore,
    saga_id: &str,
    query: SnapshotQuery,
) -> StoreResult<Listing<Snapshot>> {
    use futures::TryStreamExt;
    const PAGE: usize = 1000;
    let mut out = Listing::default();
    let mut pages = std::pin::pin!(snapshot_pages(store, saga_id, query, PAGE));
    while let Some(p) = pages.try_next().await? {
        out.items.extend(p.items);
        out.bad.extend(p.bad);
    }
    Ok(out)
}

/// Which sagas to list. Every field narrows; the default matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaFilter {
    /// The status of the saga's newest snapshot is one of these.
    pub statuses: Vec<SagaStatus>,
    /// Exact saga name.
    pub name: Option<String>,
    /// Part of the saga name, ASCII letters matched in either case
    /// (`trip` finds `TripBookingSaga`). Every backend folds only ASCII,
    /// so they agree on any name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_contains: Option<String>,
    /// The step of the saga's newest snapshot (where it stopped).
    pub latest_step: Option<String>,
    /// Newest snapshot at or after this time.
    pub since: Option<Timestamp>,
    /// Newest snapshot at or before this time.
    pub until: Option<Timestamp>,
    /// Saga id starts with this.
    pub id_prefix: Option<String>,
}

impl SagaFilter {
    /// Whether a saga passes every condition set (an empty filter passes
    /// every saga). Backends that filter in their query must agree with
    /// this; the conformance suite checks that they do.
    pub fn matches(&self, s: &SagaSummary) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&s.latest_status))
            && self.name.as_ref().is_none_or(|n| &s.saga_name == n)
            && self.name_contains.as_ref().is_none_or(|part| {
                s.saga_name
                    .to_ascii_lowercase()
                    .contains(&part.to_ascii_lowercase())
            })
            && self
                .latest_step
                .as_ref()
                .is_none_or(|st| &s.latest_step == st)
            && self.since.is_none_or(|t| s.last_at >= t)
            && self.until.is_none_or(|t| s.last_at <= t)
            && self
                .id_prefix
                .as_ref()
                .is_none_or(|p| s.saga_id.starts_with(p.as_str()))
    }
}

/// A position in the saga list (newest activity first), for keyset paging.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SagaCursor {
    /// The saga's newest activity (`SagaSummary::last_at`): the first key.
    pub last_at: Timestamp,
    /// The saga's id: breaks ties between sagas last active at once.
    pub saga_id: String,
}

impl SagaCursor {
    /// The cursor standing at `s` (the next page starts just past it).
    pub fn of(s: &SagaSummary) -> Self {
        SagaCursor {
            last_at: s.last_at,
            saga_id: s.saga_id.clone(),
        }
    }

    /// Whether `s` comes after this cursor in list order
    /// (`last_at` descending, then `saga_id` descending).
    pub fn precedes(&self, s: &SagaSummary) -> bool {
        (&s.last_at, &s.saga_id) < (&self.last_at, &self.saga_id)
    }
}

/// One page of the saga list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaPageRequest {
    /// At most this many sagas (50 by default); a page may hold fewer and
    /// still not be the last: look at [`SagaPage::next`].
    pub limit: usize,
    /// Start just past this saga; `None` starts at the newest.
    pub after: Option<SagaCursor>,
}

impl Default for SagaPageRequest {
    fn default() -> Self {
        SagaPageRequest {
            limit: 50,
            after: None,
        }
    }
}

/// A page of sagas, newest activity first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SagaPage {
    /// The sagas on this page, newest activity first.
    pub sagas: Vec<SagaSummary>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<SagaCursor>,
    /// Entries that could not be read while building the page.
    pub bad: Vec<BadEntry>,
    /// Set when the store's saga index may be out of date, with what to do.
    pub index_warning: Option<String>,
}

/// What a backend can keep and do. The conformance suite checks each claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The backend's name as URLs spell it (`sqlite`, `postgres`, `redis`, …).
    pub backend: &'static str,
    /// Context key order survives a round trip (JSONB reorders keys).
    pub preserves_key_order: bool,
    /// Unknown snapshot fields survive a round trip.
    pub preserves_extra_fields: bool,
    /// `external_refs` is stored (sagaz's PostgreSQL table drops it).
    pub stores_external_refs: bool,
    /// Strings containing U+0000 can be stored (JSONB rejects them).
    pub stores_nul_in_strings: bool,
    /// Sagas can be listed without scanning every snapshot.
    pub indexed_saga_list: bool,
    /// Locks taken through the store hold across machines (not just
    /// processes on one machine).
    pub distributed_locks: bool,
}

/// What is cheap to know about a store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// The backend's name as URLs spell it.
    pub backend: &'static str,
    /// The store's URL with passwords and secret parameters redacted.
    pub url: String,
    /// Whether the store answered; the counts below are `None` when not.
    pub reachable: bool,
    /// One round trip.
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    /// Sagas in the store, where the backend can count them cheaply.
    pub sagas: Option<u64>,
    /// Snapshots in the store, where cheap to count.
    pub snapshots: Option<u64>,
    /// Replay-log entries, where cheap to count.
    pub replays: Option<u64>,
    /// Bytes the store takes (file, database or keys), where known.
    pub size_bytes: Option<u64>,
    /// Anything worth a person's attention: a stale index, a server version,
    /// a fallback taken.
    pub notes: Vec<String>,
}

mod duration_ms {
    use serde::Serializer;
    pub fn serialize<S: Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

/// Result of trying to take a named lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The caller holds the lock now, until its TTL runs out or it is
    /// released.
    Acquired,
    /// Someone else holds it until the given time.
    Held {
        /// Who took it, as they named themselves when taking it.
        owner: String,
        /// When it lapses unless its holder renews it.
        until: Timestamp,
    },
}

/// The storage operations sagascope needs: sagaz's, plus browsing.
///
/// Implementations must be cheap to share (`Arc<dyn SnapshotStore>`) and
/// safe to call from many tasks at once.
#[async_trait]
pub trait SnapshotStore: Send + Sync + fmt::Debug {
    /// What this backend keeps and can do.
    fn capabilities(&self) -> Capabilities;

    /// Where the store is, for display (always redacted).
    fn location(&self) -> String;

    /// Saves (or replaces, by `snapshot_id`) one snapshot.
    async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()>;

    /// Saves many snapshots; backends batch this where they can.
    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        for s in snapshots {
            self.save_snapshot(s).await?;
        }
        Ok(())
    }

    /// One snapshot by id.
    async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>>;

    /// The newest snapshot of a saga, or the newest one taken for `step`
    /// (sagaz's `get_latest_snapshot(saga_id, before_step)`).
    async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>>;

    /// The newest snapshot created at or before `at`.
    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>>;

    /// A saga's snapshots, in order, paged by cursor: at most `limit`
    /// readable ones, the unreadable ones met on the way named in `bad`,
    /// and `next` set when the limit cut the range short (see [`Listing`]).
    async fn list_snapshots(
        &self,
        saga_id: &str,
        query: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>>;

    /// How many snapshots a saga has.
    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64>;

    /// Deletes one snapshot; `false` when there was none.
    async fn delete_snapshot(&self, snapshot_id: &str) -> StoreResult<bool>;

    /// Deletes every snapshot of a saga (not its replay log); returns how many.
    async fn delete_saga(&self, saga_id: &str) -> StoreResult<u64>;

    /// Deletes snapshots whose `retention_until` is before `now`.
    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64>;

    /// Saves (or updates, by `replay_id`) a replay-log entry.
    async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()>;

    /// Deletes one replay-log entry (erasure of a data subject); `false`
    /// when there was none.
    async fn delete_replay(&self, replay_id: &str) -> StoreResult<bool> {
        let _ = replay_id;
        Err(StoreError::Unsupported {
            backend: "this",
            operation: "deleting a replay-log entry",
        })
    }

    /// Saves many replay-log entries (a batch of dry runs); backends batch
    /// this where they can.
    async fn save_replays(&self, logs: &[ReplayLog]) -> StoreResult<()> {
        for l in logs {
            self.save_replay(l).await?;
        }
        Ok(())
    }

    /// The newest snapshot taken for `step` of each saga: a batched
    /// [`SnapshotStore::latest_snapshot`]. Sagas with none are absent from
    /// `items`; unreadable ones are named in `bad`.
    async fn latest_snapshots_for_step(
        &self,
        saga_ids: &[String],
        step: &str,
    ) -> StoreResult<Listing<Snapshot>> {
        let mut out = Listing::default();
        for id in saga_ids {
            match self.latest_snapshot(id, Some(step)).await {
                Ok(Some(s)) => out.items.push(s),
                Ok(None) => {}
                Err(StoreError::Corrupt { entry }) => out.bad.push(entry),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One replay-log entry.
    async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>>;

    /// Replays started from a saga, newest first.
    async fn list_replays(
        &self,
        original_saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>>;

    /// Every snapshot of each of these sagas, oldest first within a saga,
    /// unreadable entries in place (what replay plans for a batch read).
    /// The default reads saga by saga; the SQL stores read them all in one
    /// statement.
    async fn snapshots_of_sagas(&self, saga_ids: &[String]) -> StoreResult<Listing<Snapshot>> {
        let mut out = Listing::default();
        for id in saga_ids {
            out.append(self.list_snapshots(id, &SnapshotQuery::all()).await?);
        }
        Ok(out)
    }

    /// The replay logs of each of these sagas (newest first within a
    /// saga). The default reads saga by saga; the SQL stores read them all
    /// in one statement.
    async fn replays_of_sagas(&self, saga_ids: &[String]) -> StoreResult<Listing<ReplayLog>> {
        let mut out = Listing::default();
        for id in saga_ids {
            out.append(self.list_replays(id, None).await?);
        }
        Ok(out)
    }

    /// The replay whose run produced `new_saga_id`, if the backend can find it
    /// cheaply.
    async fn replay_producing(&self, _new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
        Ok(None)
    }

    /// Sagas matching a filter, newest activity first.
    async fn list_sagas(
        &self,
        filter: &SagaFilter,
        page: &SagaPageRequest,
    ) -> StoreResult<SagaPage>;

    /// One saga's summary.
    async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>>;

    /// How many sagas match a filter.
    async fn count_sagas(&self, filter: &SagaFilter) -> StoreResult<u64>;

    /// Reachability, latency and what counts are cheap.
    async fn health(&self) -> StoreResult<Health>;

    /// Takes a named lock for `ttl` unless another owner holds an unexpired
    /// one. Taking it again as the same owner renews it.
    async fn try_lock(&self, name: &str, owner: &str, ttl: Duration) -> StoreResult<LockOutcome>;

    /// Releases a lock if `owner` holds it.
    async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()>;
    /// The same store without masking, for what needs the values
    /// themselves (the engine, a replay, a migration, `--reveal`); `None`
    /// when this store does not mask. See [`unmasked`].
    fn unmasked(&self) -> Option<Arc<dyn SnapshotStore>> {
        None
    }

    /// Stores a small JSON record beside the snapshots, by `kind` and `key`
    /// (audit events, legal holds, the progress of a long job), replacing
    /// one with the same kind and key. Kinds and keys are short printable
    /// strings without `/`; sagaz never sees these records.
    async fn put_meta(&self, kind: &str, key: &str, value: &serde_json::Value) -> StoreResult<()> {
        let _ = (kind, key, value);
        Err(StoreError::Unsupported {
            backend: "this",
            operation: "records beside the snapshots (audit events, holds)",
        })
    }

    /// Stores a record only if none has this kind and key yet: `false`
    /// (and nothing written) when one exists. Appenders racing for the same
    /// key see exactly one `true`.
    async fn insert_meta(
        &self,
        kind: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> StoreResult<bool> {
        let _ = (kind, key, value);
        Err(StoreError::Unsupported {
            backend: "this",
            operation: "records beside the snapshots (audit events, holds)",
        })
    }

    /// The record of this kind and key.
    async fn get_meta(&self, kind: &str, key: &str) -> StoreResult<Option<serde_json::Value>> {
        let _ = (kind, key);
        Ok(None)
    }

    /// Records of one kind in key order (bytewise), those after `after`,
    /// at most `limit`.
    async fn list_meta(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        let _ = (kind, after, limit);
        Ok(Vec::new())
    }

    /// Deletes a record; `false` if there was none.
    async fn delete_meta(&self, kind: &str, key: &str) -> StoreResult<bool> {
        let _ = (kind, key);
        Ok(false)
    }

    /// Rebuilds sagascope's own saga index from the data other programs
    /// (sagaz) wrote there: what `sagascope reindex` runs.
    ///
    /// `Ok(None)` when the backend needs no rebuild (SQLite keeps its index
    /// with triggers; PostgreSQL and memory list from the data itself; the
    /// object stores re-summarise a saga when they meet it).
    async fn reindex(&self) -> StoreResult<Option<ReindexReport>> {
        Ok(None)
    }
}

/// A saga's summary computed from its readable snapshots (slower than the
/// store's index; used when the index entry itself cannot be read).
pub async fn summary_from_snapshots(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<Option<SagaSummary>, StoreError> {
    // A few from each end, so a bad entry at the very end does not hide
    // the readable ones next to it.
    let ends = |order| SnapshotQuery {
        order,
        limit: Some(16),
        ..SnapshotQuery::default()
    };
    let first = store
        .list_snapshots(saga_id, &ends(Order::Asc))
        .await?
        .items
        .into_iter()
        .next();
    let last = store
        .list_snapshots(saga_id, &ends(Order::Desc))
        .await?
        .items
        .into_iter()
        .next();
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    Ok(Some(SagaSummary {
        saga_id: last.saga_id.clone(),
        saga_name: last.saga_name.clone(),
        latest_status: last.status.clone(),
        latest_step: last.step_name.clone(),
        latest_step_index: last.step_index,
        snapshot_count: store.count_snapshots(saga_id).await?,
        first_at: first.created_at,
        last_at: last.created_at,
    }))
}

/// What a rebuild of sagascope's own saga index did
/// ([`SnapshotStore::reindex`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReindexReport {
    /// Sagas found under the prefix and now in the index.
    pub sagas_indexed: u64,
    /// Index entries removed because their saga has no snapshots left.
    pub sagas_removed: u64,
    /// Sagas whose snapshots are all gone (expired) or unreadable.
    pub sagas_empty: u64,
    /// Replay-log entries indexed by the saga they produced.
    pub replays_indexed: u64,
    /// Entries that could not be read.
    pub bad: Vec<BadEntry>,
    /// How long the rebuild took.
    #[serde(with = "duration_ms")]
    pub elapsed: Duration,
}

/// How to open a store, beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Refuse every write (auditors).
    pub readonly: bool,
    /// Compression for writes in key-value backends; `None` = backend default
    /// (sagaz's default for that backend).
    pub compression: Option<codec::Compression>,
    /// Report a missing SQLite file or store folder instead of creating
    /// it: a command that only reads should say a path is mistyped, not
    /// show an empty store it just made.
    pub must_exist: bool,
}

/// `store` without masking: its [`SnapshotStore::unmasked`] handle, or
/// `store` itself when it does not mask.
pub fn unmasked(store: &Arc<dyn SnapshotStore>) -> Arc<dyn SnapshotStore> {
    store.unmasked().unwrap_or_else(|| store.clone())
}

/// The embedded default store: a SQLite file under the user's data
/// directory.
pub fn default_store_path() -> PathBuf {
    directories::ProjectDirs::from("dev", "sagascope", "sagascope")
        .map(|d| d.data_dir().join("sagascope.db"))
        .unwrap_or_else(|| PathBuf::from("sagascope.db"))
}

/// The URL of the embedded default store.
pub fn default_store_url() -> StoreUrl {
    StoreUrl::new(format!("sqlite://{}", default_store_path().display()))
}

/// Opens the store a URL names.
///
/// `sqlite:///abs/path.db`, `sqlite://relative.db`, `memory://`; with the
/// matching features `postgres://`, `redis://`/`rediss://`,
/// `s3://bucket/prefix`, `file:///dir`.
pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    let store: Arc<dyn SnapshotStore> = match url.scheme().as_str() {
        "memory" | "mem" => Arc::new(memory::MemoryStore::new()),
        "sqlite" => Arc::new(sqlite::SqliteStore::open(url, opts).await?),
        "postgres" | "postgresql" => open_postgres(url, opts).await?,
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => open_redis(url, opts).await?,
        "s3" => open_s3(url, opts).await?,
        "file" => open_folder(url, opts).await?,
        "" => return Err(StoreError::InvalidUrl {
            url: url.redacted(),
            reason:
                "no scheme; expected sqlite://, memory://, postgres://, redis://, s3:// or file://"
                    .into(),
        }),
        other => {
            return Err(StoreError::InvalidUrl {
                url: url.redacted(),
                reason: format!(
                "unknown scheme {other:?}; expected sqlite, memory, postgres, redis, s3 or file"
            ),
            })
        }
    };
    Ok(if opts.readonly {
        Arc::new(ReadOnlyStore::new(store))
    } else {
        store
    })
}

/// Checks a store URL with the backend's own parser, as opening it would,
/// without connecting or touching a file. For tests and fuzzing.
#[doc(hidden)]
pub fn check_url(url: &StoreUrl) -> StoreResult<()> {
    match url.scheme().as_str() {
        "sqlite" => sqlite::path_from_url(url).map(drop),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => postgres::check_url(url),
        #[cfg(feature = "redis")]
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => redis::check_url(url),
        #[cfg(feature = "s3")]
        "s3" => s3::S3Settings::from_url(url).map(drop),
        "file" => fs::parse_url(url).map(drop),
        _ => Ok(()),
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(postgres::PostgresStore::open(url, opts).await?))
}

#[cfg(not(feature = "postgres"))]
#[allow(unused_variables)]
async fn open_postgres(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    Err(StoreError::BackendNotBuilt {
        backend: "postgres",
    })
}

#[cfg(feature = "redis")]
async fn open_redis(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(redis::RedisStore::open(url, opts).await?))
}

#[cfg(not(feature = "redis"))]
#[allow(unused_variables)]
async fn open_redis(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    Err(StoreError::BackendNotBuilt { backend: "redis" })
}

#[cfg(feature = "s3")]
async fn open_s3(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(s3::open(url, opts).await?))
}

#[cfg(not(feature = "s3"))]
#[allow(unused_variables)]
async fn open_s3(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    Err(StoreError::BackendNotBuilt { backend: "s3" })
}

async fn open_folder(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Arc<dyn SnapshotStore>> {
    Ok(Arc::new(fs::open(url, opts).await?))
}
