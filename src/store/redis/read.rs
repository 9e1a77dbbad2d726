//! Gets, listings and paging of snapshots and replays, and time travel.

use std::collections::HashMap;

use crate::model::{ReplayLog, Snapshot, Timestamp};

use super::super::entry;
use super::super::*;
use super::conn::{parse_value, Conn};
use super::schema::check_id;
use super::{RedisStore, BATCH};

/// A page of a saga's snapshots in one round trip on one server: the ids
/// from its sorted set and their values. KEYS[1] = the set; ARGV = command
/// (ZRANGEBYSCORE or ZREVRANGEBYSCORE), the two bounds in its order,
/// offset, count, key prefix. Returns {ids, values}.
const RANGE_VALUES: &str = include_str!("scripts/range_values.lua");

impl RedisStore {
    /// A page of a saga's sorted set by score (`LIMIT offset count`, newest
    /// first for `Desc`) and the values of its ids: one script on one
    /// server, two round trips on a Cluster (the values live in other slots).
    pub(super) async fn range_values(
        &self,
        key: &str,
        order: Order,
        lo: &str,
        hi: &str,
        offset: usize,
        count: usize,
    ) -> StoreResult<(Vec<String>, Vec<Option<Vec<u8>>>)> {
        let (cmd, a, b) = match order {
            Order::Asc => ("ZRANGEBYSCORE", lo, hi),
            Order::Desc => ("ZREVRANGEBYSCORE", hi, lo),
        };
        if matches!(self.conn, Conn::Single(_)) {
            let sha = self.script_sha(&self.range_sha, RANGE_VALUES).await?;
            let mut e = ::redis::cmd("EVALSHA");
            e.arg(sha)
                .arg(1)
                .arg(key)
                .arg(cmd)
                .arg(a)
                .arg(b)
                .arg(offset)
                .arg(count)
                .arg(&self.prefix);
            return self.eval_sha(e, RANGE_VALUES).await;
        }
        let mut c = ::redis::cmd(cmd);
        c.arg(key).arg(a).arg(b).arg("LIMIT").arg(offset).arg(count);
        let ids: Vec<String> = self.cmd(c).await?;
        let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
        let vals = self.mget(&keys).await?;
        Ok((ids, vals))
    }

    /// The `step_name` of an encoded snapshot, read without building the
    /// rest of it (None when it can't be read: the full decode reports why).
    pub(super) fn peek_step(&self, raw: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Peek {
            step_name: String,
        }
        let bytes = self.codec.decompress(raw).ok()?;
        serde_json::from_slice::<Peek>(&bytes)
            .ok()
            .map(|p| p.step_name)
    }

    /// The newest snapshot of one step: walks the saga's set newest first in
    /// growing pages, peeking at each value's step and decoding only the
    /// answer. Unreadable entries are passed over (another step's, maybe).
    pub(super) async fn latest_for_step(
        &self,
        index_key: &str,
        saga_id: &str,
        step: &str,
    ) -> StoreResult<Option<Snapshot>> {
        let mut start = 0usize;
        let mut batch = 16usize;
        loop {
            let (ids, vals) = self
                .range_values(index_key, Order::Desc, "-inf", "+inf", start, batch)
                .await?;
            let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
            for (key, v) in keys.iter().zip(vals) {
                let Some(raw) = v else { continue };
                if self.peek_step(&raw).is_some_and(|s| s != step) {
                    continue;
                }
                match self.decode_snapshot(key, Some(saga_id), &raw) {
                    Ok(s) if s.step_name == step => return Ok(Some(s)),
                    _ => {}
                }
            }
            if ids.len() < batch {
                return Ok(None);
            }
            start += batch;
            batch = (batch * 4).min(BATCH);
        }
    }

    /// Reads snapshots by id, in the given order, skipping ids whose value is
    /// gone (expired: sagaz leaves them in its sets).
    pub(super) async fn fetch_snapshots(
        &self,
        saga_id: Option<&str>,
        ids: &[String],
    ) -> StoreResult<Listing<Snapshot>> {
        let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
        let vals = self.mget(&keys).await?;
        Ok(self.decode_values(saga_id, &keys, vals))
    }

    /// Decodes fetched values (on every core when there are many), skipping
    /// missing ones.
    pub(super) fn decode_values(
        &self,
        saga_id: Option<&str>,
        keys: &[String],
        vals: Vec<Option<Vec<u8>>>,
    ) -> Listing<Snapshot> {
        let found: Vec<(&String, Vec<u8>)> = keys
            .iter()
            .zip(vals)
            .filter_map(|(k, v)| v.map(|raw| (k, raw)))
            .collect();
        let mut out = Listing::default();
        for r in par_map(&found, |(key, raw)| self.decode_snapshot(key, saga_id, raw)) {
            match r {
                Ok(s) => out.items.push(s),
                Err(b) => out.bad.push(b),
            }
        }
        out
    }

    /// A saga's snapshot values in index order, each decoded or named as
    /// bad; `None` for an id whose value is gone (sagaz leaves expired ids
    /// in its sets). A key of the wrong type reads as nothing through MGET:
    /// those are told apart from gone ones with TYPE, and a value holding
    /// another saga's snapshot is bad here, not skipped.
    pub(super) async fn entries_in_order(
        &self,
        saga_id: &str,
        ids: &[String],
        vals: Vec<Option<Vec<u8>>>,
    ) -> StoreResult<Vec<Option<Result<Snapshot, BadEntry>>>> {
        let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
        let found: Vec<(usize, Vec<u8>)> = vals
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|raw| (i, raw)))
            .collect();
        let mut out: Vec<Option<Result<Snapshot, BadEntry>>> = vec![None; keys.len()];
        let decoded = par_map(&found, |(i, raw)| {
            let key = &keys[*i];
            self.decode_snapshot(key, Some(saga_id), raw).and_then(|s| {
                if s.saga_id == saga_id {
                    Ok(s)
                } else {
                    Err(BadEntry {
                        key: key.clone(),
                        saga_id: Some(saga_id.to_string()),
                        error: format!(
                            "listed under saga {saga_id} but holds a snapshot of saga {}",
                            s.saga_id
                        ),
                    })
                }
            })
        });
        for ((i, _), r) in found.iter().zip(decoded) {
            out[*i] = Some(r);
        }
        let missing: Vec<usize> = (0..keys.len()).filter(|i| out[*i].is_none()).collect();
        if !missing.is_empty() {
            let types = self
                .many(
                    missing
                        .iter()
                        .map(|i| ::redis::cmd("TYPE").arg(&keys[*i]).clone())
                        .collect(),
                )
                .await?;
            for (i, t) in missing.into_iter().zip(types) {
                let t: String = parse_value(t).unwrap_or_default();
                if t != "none" && !t.is_empty() {
                    out[i] = Some(Err(BadEntry {
                        key: keys[i].clone(),
                        saga_id: Some(saga_id.to_string()),
                        error: format!("not a snapshot value: the key holds a Redis {t}"),
                    }));
                }
            }
        }
        Ok(out)
    }
}

pub(super) async fn get_snapshot(
    this: &RedisStore,
    snapshot_id: &str,
) -> StoreResult<Option<Snapshot>> {
    if check_id("snapshot_id", snapshot_id).is_err() {
        return Ok(None);
    }
    let key = this.snapshot_key(snapshot_id);
    let raw: Option<Vec<u8>> = this.get(&key).await?;
    raw.map(|r| {
        this.decode_snapshot(&key, None, &r)
            .map_err(|entry| StoreError::Corrupt { entry })
    })
    .transpose()
}

pub(super) async fn latest_snapshot(
    this: &RedisStore,
    saga_id: &str,
    step: Option<&str>,
) -> StoreResult<Option<Snapshot>> {
    let key = this.saga_index_key(saga_id);
    if let Some(st) = step {
        return this.latest_for_step(&key, saga_id, st).await;
    }
    let mut start = 0usize;
    let batch = 5;
    loop {
        let ids: Vec<String> = this
            .cmd(
                ::redis::cmd("ZREVRANGE")
                    .arg(&key)
                    .arg(start)
                    .arg(start + batch - 1)
                    .clone(),
            )
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let got = this.fetch_snapshots(Some(saga_id), &ids).await?;
        // Newest first: a bad entry newer than every good one is the answer's fault.
        let mut items: Vec<Result<Snapshot, BadEntry>> = got.items.into_iter().map(Ok).collect();
        items.extend(got.bad.into_iter().map(Err));
        let order: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let pos = |r: &Result<Snapshot, BadEntry>| match r {
            Ok(s) => order
                .get(s.snapshot_id.as_str())
                .copied()
                .unwrap_or(usize::MAX),
            Err(b) => order
                .get(b.key.strip_prefix(&this.prefix).unwrap_or(&b.key))
                .copied()
                .unwrap_or(usize::MAX),
        };
        items.sort_by_key(|r| pos(r));
        for r in items {
            match r {
                Ok(s) if step.is_none_or(|st| s.step_name == st) => return Ok(Some(s)),
                Ok(_) => {}
                Err(b) if step.is_none() => return Err(StoreError::Corrupt { entry: b }),
                Err(_) => {}
            }
        }
        if ids.len() < batch {
            return Ok(None);
        }
        start += batch;
    }
}

pub(super) async fn snapshot_at(
    this: &RedisStore,
    saga_id: &str,
    at: Timestamp,
) -> StoreResult<Option<Snapshot>> {
    let key = this.saga_index_key(saga_id);
    // Scores are float seconds: take a few beyond the first in case
    // several times round to one score.
    let (ids, vals) = this
        .range_values(
            &key,
            Order::Desc,
            "-inf",
            &at.as_epoch_seconds().to_string(),
            0,
            20,
        )
        .await?;
    // Newest first: the answer is the newest readable one at or before
    // `at` (scores are rounded: compare exact times), unless an
    // unreadable entry comes before it — then the answer is that entry
    // and it is reported. Bad entries older than the answer don't
    // matter (they once failed every time travel after them).
    let mut best: Option<Snapshot> = None;
    for r in this
        .entries_in_order(saga_id, &ids, vals)
        .await?
        .into_iter()
        .flatten()
    {
        match r {
            Ok(s) if s.created_at <= at => {
                if best
                    .as_ref()
                    .is_none_or(|b| (s.created_at, &s.snapshot_id) > (b.created_at, &b.snapshot_id))
                {
                    best = Some(s);
                }
            }
            Ok(_) => {}
            Err(entry) if best.is_none() => return Err(StoreError::Corrupt { entry }),
            Err(_) => break,
        }
    }
    Ok(best)
}

pub(super) async fn list_snapshots(
    this: &RedisStore,
    saga_id: &str,
    q: &SnapshotQuery,
) -> StoreResult<Listing<Snapshot>> {
    let key = this.saga_index_key(saga_id);
    let mut lo = q.since.map(|t| t.as_epoch_seconds());
    let mut hi = q.until.map(|t| t.as_epoch_seconds());
    if let Some(c) = &q.after {
        let s = c.created_at.as_epoch_seconds();
        match q.order {
            Order::Asc => lo = Some(lo.map_or(s, |l| l.max(s))),
            Order::Desc => hi = Some(hi.map_or(s, |h| h.min(s))),
        }
    }
    let lo_arg = lo.map_or("-inf".to_string(), |v| v.to_string());
    let hi_arg = hi.map_or("+inf".to_string(), |v| v.to_string());
    // The set's order is (score, member) with score = created_at in
    // float seconds: the snapshot order, but for ties that rounding
    // merges. Entries at the cursor's own score come back again and
    // `admits` drops them.
    super::page_in_order(
        q.limit.unwrap_or(usize::MAX),
        |s| q.admits(s),
        |rows, offset| {
            let (key, lo_arg, hi_arg) = (&key, &lo_arg, &hi_arg);
            async move {
                let (ids, vals) = this
                    .range_values(key, q.order, lo_arg, hi_arg, offset, rows)
                    .await?;
                this.entries_in_order(saga_id, &ids, vals).await
            }
        },
    )
    .await
}

pub(super) async fn count_snapshots(this: &RedisStore, saga_id: &str) -> StoreResult<u64> {
    this.cmd(
        ::redis::cmd("ZCARD")
            .arg(this.saga_index_key(saga_id))
            .clone(),
    )
    .await
}

pub(super) async fn get_replay(
    this: &RedisStore,
    replay_id: &str,
) -> StoreResult<Option<ReplayLog>> {
    let key = this.replay_key(replay_id);
    let raw: Option<Vec<u8>> = this.get(&key).await?;
    raw.map(|r| {
        this.decode_replay(&key, None, &r)
            .map_err(|entry| StoreError::Corrupt { entry })
    })
    .transpose()
}

pub(super) async fn list_replays(
    this: &RedisStore,
    original_saga_id: &str,
    limit: Option<usize>,
) -> StoreResult<Listing<ReplayLog>> {
    let ids: Vec<String> = this
        .cmd(
            ::redis::cmd("ZREVRANGE")
                .arg(this.replay_index_key(original_saga_id))
                .arg(0)
                .arg(-1)
                .clone(),
        )
        .await?;
    let keys: Vec<String> = ids.iter().map(|id| this.replay_key(id)).collect();
    let mut out = Listing::default();
    let want = limit.unwrap_or(usize::MAX);
    for chunk in keys.chunks(BATCH) {
        if out.items.len() >= want {
            break;
        }
        let vals = this.mget(chunk).await?;
        for (key, v) in chunk.iter().zip(vals) {
            if let Some(raw) = v {
                match this.decode_replay(key, Some(original_saga_id), &raw) {
                    Ok(l) => out.items.push(l),
                    Err(b) => out.bad.push(b),
                }
            }
        }
    }
    entry::newest_replays_first(&mut out.items, limit);
    Ok(out)
}

pub(super) async fn replay_producing(
    this: &RedisStore,
    new_saga_id: &str,
) -> StoreResult<Option<ReplayLog>> {
    let id: Option<String> = this.get(&this.replay_of_key(new_saga_id)).await?;
    match id {
        Some(id) => Ok(this
            .get_replay(&id)
            .await?
            .filter(|l| l.new_saga_id == new_saga_id)),
        None => Ok(None),
    }
}
