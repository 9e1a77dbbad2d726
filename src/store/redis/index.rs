//! sagascope's saga index: keeping it up to date on writes, reading it
//! for the saga list, and rebuilding it (`reindex`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use ::redis::Cmd;
use futures::future::join_all;

use crate::model::{SagaSummary, Snapshot, Timestamp};

use super::super::*;
use super::conn::parse_value;
use super::schema::{glob_escape, micros_of_score, Head};
use super::{RedisStore, BATCH};

/// Sets the saga's summary hash unless it already holds a newer snapshot.
/// KEYS[1] = hash; ARGV = last_us, snapshot_id, saga_name, status, step,
/// step_index, force ("1" = set even if older: after a delete).
/// Returns {applied (0/1), previous status or ""}.
const SUMMARY_CAS: &str = include_str!("scripts/summary_cas.lua");

impl RedisStore {
    /// Makes sure the index-state marker tells the truth before the first
    /// write of this process: a prefix with no sagaz data yet is fully
    /// indexed by sagascope's own writes; one with data needs `reindex`.
    pub(super) async fn check_marker_before_write(&self) -> StoreResult<()> {
        if self.marker_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let exists: bool = self
            .cmd(::redis::cmd("EXISTS").arg(self.index_state_key()).clone())
            .await?;
        if !exists {
            let pattern = format!("{}saga:*:index", glob_escape(&self.prefix));
            let foreign = self.scan_keys(&pattern, true).await?;
            if foreign.is_empty() {
                self.mark_index_complete("first write").await?;
            }
        }
        self.marker_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub(super) async fn mark_index_complete(&self, by: &str) -> StoreResult<()> {
        let mut c = ::redis::cmd("HSET");
        c.arg(self.index_state_key())
            .arg("state")
            .arg("complete")
            .arg("built_at")
            .arg(Timestamp::now().to_isoformat())
            .arg("by")
            .arg(by)
            .arg("version")
            .arg(1);
        self.cmd::<i64>(c).await?;
        Ok(())
    }

    pub(super) fn cas_cmd(&self, saga_id: &str, h: &Head, force: bool) -> Cmd {
        let mut c = ::redis::cmd("EVAL");
        c.arg(SUMMARY_CAS)
            .arg(1)
            .arg(self.head_key(saga_id))
            .arg(h.last_us)
            .arg(&h.snapshot_id)
            .arg(&h.saga_name)
            .arg(&h.status)
            .arg(&h.step)
            .arg(h.step_index)
            .arg(if force { "1" } else { "0" });
        c
    }

    /// Recomputes the index entries of some sagas from their sagaz sets.
    /// `known` holds snapshots just written (saves a GET). `force` replaces
    /// the hash even with an older snapshot (after deletes).
    pub(super) async fn refresh_sagas(
        &self,
        sagas: &[String],
        known: &HashMap<String, Snapshot>,
        force: bool,
    ) -> StoreResult<Vec<BadEntry>> {
        let mut bad = Vec::new();
        for chunk in sagas.chunks(BATCH) {
            // The newest few ids of each saga: the newest may have expired.
            let tops = self
                .many(
                    chunk
                        .iter()
                        .map(|s| {
                            ::redis::cmd("ZREVRANGE")
                                .arg(self.saga_index_key(s))
                                .arg(0)
                                .arg(4)
                                .clone()
                        })
                        .collect(),
                )
                .await?;
            let tops: Vec<Vec<String>> = tops
                .into_iter()
                .map(parse_value)
                .collect::<StoreResult<_>>()?;
            let need: Vec<String> = tops
                .iter()
                .flatten()
                .filter(|id| !known.contains_key(*id))
                .cloned()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let fetched = self.fetch_snapshots(None, &need).await?;
            bad.extend(fetched.bad);
            let by_id: HashMap<&str, &Snapshot> = fetched
                .items
                .iter()
                .map(|s| (s.snapshot_id.as_str(), s))
                .chain(known.iter().map(|(k, v)| (k.as_str(), v)))
                .collect();
            let mut heads: Vec<(String, Option<Head>)> = Vec::with_capacity(chunk.len());
            for (saga, ids) in chunk.iter().zip(&tops) {
                let head = ids
                    .iter()
                    .filter_map(|id| by_id.get(id.as_str()))
                    .find(|s| &s.saga_id == saga)
                    .map(|s| Head::of(s));
                heads.push((saga.clone(), head));
            }
            self.apply_heads(&heads, force).await?;
        }
        Ok(bad)
    }

    /// Writes summary hashes (compare-and-set) and moves sagas in the
    /// sorted sets to match. `None` removes a saga from the index.
    pub(super) async fn apply_heads(
        &self,
        heads: &[(String, Option<Head>)],
        force: bool,
    ) -> StoreResult<()> {
        let mut cas = Vec::new();
        let mut gone = Vec::new();
        for (saga, head) in heads {
            match head {
                Some(h) => cas.push((saga, h, self.cas_cmd(saga, h, force))),
                None => gone.push(saga.clone()),
            }
        }
        let replies = self
            .many(cas.iter().map(|(_, _, c)| c.clone()).collect())
            .await?;
        let mut follow = Vec::new();
        for ((saga, h, _), r) in cas.iter().zip(replies) {
            let (applied, old_status): (i64, String) = parse_value(r)?;
            if applied == 0 {
                continue;
            }
            follow.push(
                ::redis::cmd("ZADD")
                    .arg(self.sagas_key())
                    .arg(h.last_us)
                    .arg(saga.as_str())
                    .clone(),
            );
            follow.push(
                ::redis::cmd("ZADD")
                    .arg(self.status_key(&h.status))
                    .arg(h.last_us)
                    .arg(saga.as_str())
                    .clone(),
            );
            if !old_status.is_empty() && old_status != h.status {
                follow.push(
                    ::redis::cmd("ZREM")
                        .arg(self.status_key(&old_status))
                        .arg(saga.as_str())
                        .clone(),
                );
            }
        }
        if !gone.is_empty() {
            let statuses = self
                .many(
                    gone.iter()
                        .map(|s| {
                            ::redis::cmd("HGET")
                                .arg(self.head_key(s))
                                .arg("status")
                                .clone()
                        })
                        .collect(),
                )
                .await?;
            for (saga, st) in gone.iter().zip(statuses) {
                let st: Option<String> = parse_value(st)?;
                if let Some(st) = st {
                    follow.push(
                        ::redis::cmd("ZREM")
                            .arg(self.status_key(&st))
                            .arg(saga)
                            .clone(),
                    );
                }
                follow.push(::redis::cmd("ZREM").arg(self.sagas_key()).arg(saga).clone());
                follow.push(::redis::cmd("DEL").arg(self.head_key(saga)).clone());
            }
        }
        self.many(follow).await?;
        Ok(())
    }

    /// Whether the index-state marker is present (false = `reindex` needed
    /// for sagaz-written data to show in the saga list).
    pub async fn index_is_built(&self) -> StoreResult<bool> {
        self.cmd(::redis::cmd("EXISTS").arg(self.index_state_key()).clone())
            .await
    }

    pub(super) fn stale_index_warning(&self) -> String {
        format!(
            "sagascope's saga index for prefix {:?} has never been built, so sagas written by sagaz are missing \
             from this list; run `sagascope reindex` to build it",
            self.prefix
        )
    }

    /// Up to `count` entries of a sorted set, newest first, strictly before
    /// `after` (score, member) and with score in [min, max]; and whether the
    /// set may hold more past them.
    ///
    /// "More" is judged on what the server returned, not on what is left
    /// after dropping entries at or above the cursor: a page that starts at
    /// the cursor's own score always loses the cursor entry, and taking the
    /// shorter page for the end once made every listing stop at 999 sagas.
    pub(super) async fn zset_page(
        &self,
        key: &str,
        max: Option<i64>,
        min: Option<i64>,
        after: Option<&(i64, String)>,
        count: usize,
    ) -> StoreResult<(Vec<(String, i64)>, bool)> {
        let max_arg = match (after, max) {
            (Some((s, _)), Some(m)) => (*s).min(m).to_string(),
            (Some((s, _)), None) => s.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => "+inf".into(),
        };
        let min_arg = min.map_or("-inf".to_string(), |m| m.to_string());
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let got: Vec<(String, f64)> = self
                .cmd(
                    ::redis::cmd("ZREVRANGEBYSCORE")
                        .arg(key)
                        .arg(&max_arg)
                        .arg(&min_arg)
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(count)
                        .clone(),
                )
                .await?;
            let n = got.len();
            for (m, s) in got {
                let s = s as i64;
                if let Some((as_, am)) = after {
                    if (s, &m) >= (*as_, am) {
                        continue;
                    }
                }
                out.push((m, s));
            }
            let more = n == count;
            if !out.is_empty() || !more {
                return Ok((out, more));
            }
            // A whole batch of ties at the cursor's score: look further.
            offset += n;
        }
    }

    /// Summaries of candidate sagas in one batch, checked against their
    /// sagaz sets: `Ok(None)` for a stale entry.
    pub(super) async fn load_heads(
        &self,
        sagas: &[String],
    ) -> StoreResult<Vec<(Option<Head>, u64, Option<i64>, Option<String>)>> {
        let mut cmds = Vec::with_capacity(sagas.len() * 4);
        for s in sagas {
            let idx = self.saga_index_key(s);
            cmds.push(::redis::cmd("HGETALL").arg(self.head_key(s)).clone());
            cmds.push(::redis::cmd("ZCARD").arg(&idx).clone());
            cmds.push(
                ::redis::cmd("ZRANGE")
                    .arg(&idx)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .clone(),
            );
            cmds.push(::redis::cmd("ZREVRANGE").arg(&idx).arg(0).arg(0).clone());
        }
        let replies = self.many(cmds).await?;
        let mut out = Vec::with_capacity(sagas.len());
        let mut it = replies.into_iter();
        while let (Some(h), Some(n), Some(first), Some(top)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            let h: HashMap<String, String> = parse_value(h)?;
            let n: u64 = parse_value(n)?;
            let first: Vec<(String, f64)> = parse_value(first)?;
            let top: Vec<String> = parse_value(top)?;
            out.push((
                Head::from_hash(&h),
                n,
                first.first().map(|(_, s)| micros_of_score(*s)),
                top.into_iter().next(),
            ));
        }
        Ok(out)
    }
}

/// Builds sagascope's saga index from what is under the prefix (data
/// sagaz wrote, or an index left stale): SCANs `P saga:*:index` on
/// every master, reads each saga's newest snapshot in batches, rewrites
/// the summaries and sorted sets, drops entries of sagas that are gone,
/// indexes replays by the saga they produced, and marks the index
/// complete. Safe to run while others write; run it again after sagaz
/// has written more.
pub(super) async fn reindex(this: &RedisStore) -> StoreResult<ReindexReport> {
    if this.readonly {
        return Err(StoreError::PermissionDenied {
            url: this.location.clone(),
            reason: "reindex writes sagascope's index; open the store without --readonly".into(),
        });
    }
    let start = Instant::now();
    let mut report = ReindexReport::default();
    let p = glob_escape(&this.prefix);
    let keys = this.scan_keys(&format!("{p}saga:*:index"), false).await?;
    let head = format!("{}saga:", this.prefix);
    let sagas: Vec<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix(&head)?.strip_suffix(":index"))
        .map(str::to_string)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found: HashSet<&str> = sagas.iter().map(String::as_str).collect();
    for chunk in sagas.chunks(BATCH) {
        report
            .bad
            .extend(this.refresh_sagas(chunk, &HashMap::new(), true).await?);
    }
    // Count what is indexed now, and drop sagas no longer under the prefix.
    let listed: Vec<String> = this
        .cmd(
            ::redis::cmd("ZRANGE")
                .arg(this.sagas_key())
                .arg(0)
                .arg(-1)
                .clone(),
        )
        .await?;
    let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
    report.sagas_indexed = sagas
        .iter()
        .filter(|s| listed_set.contains(s.as_str()))
        .count() as u64;
    report.sagas_empty = sagas.len() as u64 - report.sagas_indexed;
    let stale: Vec<(String, Option<Head>)> = listed
        .iter()
        .filter(|s| !found.contains(s.as_str()))
        .map(|s| (s.clone(), None))
        .collect();
    report.sagas_removed = stale.len() as u64;
    this.apply_heads(&stale, true).await?;
    // Replays sagaz wrote: index them by the saga they produced.
    let rkeys = this.scan_keys(&format!("{p}saga:*:replays"), false).await?;
    for chunk in rkeys.chunks(BATCH) {
        let ids = this
            .many(
                chunk
                    .iter()
                    .map(|k| ::redis::cmd("ZRANGE").arg(k).arg(0).arg(-1).clone())
                    .collect(),
            )
            .await?;
        let ids: Vec<String> = ids
            .into_iter()
            .map(parse_value::<Vec<String>>)
            .collect::<StoreResult<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        for ids in ids.chunks(BATCH) {
            let keys: Vec<String> = ids.iter().map(|id| this.replay_key(id)).collect();
            let vals = this.mget(&keys).await?;
            let mut sets = Vec::new();
            for (key, v) in keys.iter().zip(vals) {
                let Some(raw) = v else { continue };
                match this.decode_replay(key, None, &raw) {
                    Ok(l) => {
                        sets.push(
                            ::redis::cmd("SET")
                                .arg(this.replay_of_key(&l.new_saga_id))
                                .arg(&l.replay_id)
                                .clone(),
                        );
                        report.replays_indexed += 1;
                    }
                    Err(b) => report.bad.push(b),
                }
            }
            this.many(sets).await?;
        }
    }
    this.mark_index_complete("reindex").await?;
    this.marker_checked.store(true, Ordering::Relaxed);
    report.elapsed = start.elapsed();
    Ok(report)
}

pub(super) async fn list_sagas(
    this: &RedisStore,
    filter: &SagaFilter,
    page: &SagaPageRequest,
) -> StoreResult<SagaPage> {
    let mut out = SagaPage::default();
    if !this.index_is_built().await? {
        out.index_warning = Some(this.stale_index_warning());
    }
    if page.limit == 0 {
        return Ok(out);
    }
    // The sorted sets to walk: one per wanted status, or all sagas.
    let sources: Vec<(String, Option<String>)> = if filter.statuses.is_empty() {
        vec![(this.sagas_key(), None)]
    } else {
        let mut v: Vec<(String, Option<String>)> = filter
            .statuses
            .iter()
            .map(|s| (this.status_key(s.as_str()), Some(s.as_str().to_string())))
            .collect();
        v.dedup();
        v
    };
    let max = filter.until.map(|t| t.as_micros());
    let min = filter.since.map(|t| t.as_micros());
    let mut cursor: Option<(i64, String)> = page
        .after
        .as_ref()
        .map(|c| (c.last_at.as_micros(), c.saga_id.clone()));
    let batch = page.limit.saturating_add(1).clamp(20, BATCH);
    let mut refreshed = 0usize;
    let mut repairs: Vec<Cmd> = Vec::new();
    let mut last_pos: Option<(i64, String)> = None;
    'walk: loop {
        // Next candidates from every source, merged newest first.
        let mut merged: BTreeMap<(i64, String), Option<String>> = BTreeMap::new();
        let cur = cursor.clone();
        let cur = &cur;
        let pages = join_all(sources.iter().map(|(key, st)| async move {
            (this.zset_page(key, max, min, cur.as_ref(), batch).await, st)
        }))
        .await;
        let mut exhausted = true;
        let mut horizon: Option<(i64, String)> = None;
        for (r, st) in pages {
            let (got, more) = r?;
            if more {
                exhausted = false;
                // Past the oldest entry of a full batch, this source may
                // hold more that the others' entries would skip.
                if let Some((m, s)) = got.last() {
                    let pos = (*s, m.clone());
                    if horizon.as_ref().is_none_or(|h| pos > *h) {
                        horizon = Some(pos);
                    }
                }
            }
            for (m, s) in got {
                merged.insert((s, m), st.clone());
            }
        }
        let mut cands: Vec<((i64, String), Option<String>)> = merged
            .into_iter()
            .rev()
            .filter(|(pos, _)| horizon.as_ref().is_none_or(|h| pos >= h))
            .collect();
        cands.dedup_by(|a, b| a.0 .1 == b.0 .1);
        if cands.is_empty() {
            break;
        }
        let ids: Vec<String> = cands.iter().map(|((_, m), _)| m.clone()).collect();
        let heads = this.load_heads(&ids).await?;
        let mut stale_sagas = Vec::new();
        for (((score, saga), src_status), (head, count, first_us, top)) in cands.iter().zip(heads) {
            cursor = Some((*score, saga.clone()));
            let Some(h) = head else {
                // Listed but no summary: a writer stopped half-way.
                if !this.readonly {
                    stale_sagas.push(saga.clone());
                }
                continue;
            };
            if h.last_us != *score || src_status.as_ref().is_some_and(|st| *st != h.status) {
                // An old entry (the saga moved on); the right one is elsewhere.
                if !this.readonly {
                    if let Some(st) = src_status {
                        if *st != h.status {
                            repairs.push(
                                ::redis::cmd("ZREM")
                                    .arg(this.status_key(st))
                                    .arg(saga)
                                    .clone(),
                            );
                        }
                    }
                    let key = if src_status.is_some() {
                        this.status_key(&h.status)
                    } else {
                        this.sagas_key()
                    };
                    repairs.push(
                        ::redis::cmd("ZADD")
                            .arg(key)
                            .arg(h.last_us)
                            .arg(saga)
                            .clone(),
                    );
                }
                continue;
            }
            if top.as_deref().is_some_and(|t| t != h.snapshot_id) {
                // The saga's own set has a newer (or fewer) snapshot than
                // the summary: written by sagaz, or a half-done delete.
                refreshed += 1;
                if !this.readonly {
                    stale_sagas.push(saga.clone());
                }
                continue;
            }
            let Some(summary) = RedisStore::summary_of(saga, &h, count, first_us) else {
                out.bad.push(BadEntry {
                    key: this.head_key(saga),
                    saga_id: Some(saga.clone()),
                    error: format!("last_us {} is not a valid time", h.last_us),
                });
                continue;
            };
            if !filter.matches(&summary) {
                continue;
            }
            if out.sagas.len() == page.limit {
                out.next = last_pos.map(|(us, id)| SagaCursor {
                    last_at: Timestamp::from_micros(us).unwrap_or(summary.last_at),
                    saga_id: id,
                });
                break 'walk;
            }
            last_pos = Some((*score, saga.clone()));
            out.sagas.push(summary);
        }
        if !stale_sagas.is_empty() {
            this.refresh_sagas(&stale_sagas, &HashMap::new(), true)
                .await?;
        }
        if exhausted && horizon.is_none() {
            break;
        }
    }
    if !repairs.is_empty() {
        this.many(repairs).await?;
    }
    if refreshed > 0 {
        let note = format!(
            "{refreshed} saga(s) had snapshots newer than sagascope's index (written by another program); \
             they were re-indexed and may now sit elsewhere in the list: reload it"
        );
        out.index_warning = Some(match out.index_warning.take() {
            Some(w) => format!("{w}; {note}"),
            None => note,
        });
    }
    Ok(out)
}

pub(super) async fn saga_summary(
    this: &RedisStore,
    saga_id: &str,
) -> StoreResult<Option<SagaSummary>> {
    let mut heads = this.load_heads(&[saga_id.to_string()]).await?;
    let Some((head, count, first_us, top)) = heads.pop() else {
        return Ok(None);
    };
    if top.is_none() {
        return Ok(None);
    }
    let head = match head {
        Some(h) if top.as_deref() == Some(h.snapshot_id.as_str()) => Some(h),
        // Not indexed yet (sagaz wrote it) or behind: read the saga's newest.
        _ => {
            let latest = this.latest_snapshot(saga_id, None).await?;
            if let (Some(s), false) = (&latest, this.readonly) {
                this.apply_heads(&[(saga_id.to_string(), Some(Head::of(s)))], true)
                    .await?;
            }
            latest.as_ref().map(Head::of)
        }
    };
    Ok(head.and_then(|h| RedisStore::summary_of(saga_id, &h, count, first_us)))
}

pub(super) async fn count_sagas(this: &RedisStore, filter: &SagaFilter) -> StoreResult<u64> {
    let simple = filter.name.is_none()
        && filter.name_contains.is_none()
        && filter.latest_step.is_none()
        && filter.id_prefix.is_none();
    if simple {
        let min = filter
            .since
            .map_or("-inf".to_string(), |t| t.as_micros().to_string());
        let max = filter
            .until
            .map_or("+inf".to_string(), |t| t.as_micros().to_string());
        let keys: Vec<String> = if filter.statuses.is_empty() {
            vec![this.sagas_key()]
        } else {
            filter
                .statuses
                .iter()
                .map(|s| this.status_key(s.as_str()))
                .collect()
        };
        let counts = this
            .many(
                keys.iter()
                    .map(|k| ::redis::cmd("ZCOUNT").arg(k).arg(&min).arg(&max).clone())
                    .collect(),
            )
            .await?;
        let mut total = 0u64;
        for c in counts {
            total += parse_value::<u64>(c)?;
        }
        return Ok(total);
    }
    let mut n = 0u64;
    let mut page = SagaPageRequest {
        limit: 1000,
        after: None,
    };
    loop {
        let p = this.list_sagas(filter, &page).await?;
        n += p.sagas.len() as u64;
        match p.next {
            Some(c) => page.after = Some(c),
            None => return Ok(n),
        }
    }
}
