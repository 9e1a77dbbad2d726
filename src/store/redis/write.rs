//! Saves, deletes, expiry (gc), the replay log and locks.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ::redis::{Cmd, Value as RValue};

use crate::model::{ReplayLog, Snapshot, Timestamp};

use super::super::*;
use super::conn::{parse_value, Conn};
use super::schema::check_id;
use super::{RedisStore, BATCH};

/// A whole snapshot save on one server, in one round trip (the Cluster
/// path can't: these keys live in different slots). Writes sagaz's value
/// and sorted set, the retention entry, and moves sagascope's saga summary
/// forward when this snapshot is the saga's newest (the compare-and-set of
/// `SUMMARY_CAS`, with the sorted sets that follow from it).
/// KEYS: 1 value, 2 saga's snapshot set, 3 retention set, 4 summary hash,
/// 5 sagas set, 6 the new status's set.
/// ARGV: 1 encoded value, 2 PXAT ms or "", 3 set score (epoch seconds),
/// 4 snapshot_id, 5 retention member, 6 retention score or "", 7 last_us,
/// 8 saga_name, 9 status, 10 step, 11 step_index, 12 saga_id, 13 prefix of
/// status set keys.
/// Returns {previous value or nil, 1 when the summary needs a recompute
/// (no summary yet and an older writer's snapshot is newer)}.
const SAVE_SINGLE: &str = include_str!("scripts/save_single.lua");

/// Takes or renews a lock. KEYS[1] = lock; ARGV = owner, ttl ms.
/// Returns {1} when taken, {0, holder, pttl} when held by another.
const LOCK_TAKE: &str = include_str!("scripts/lock_take.lua");

/// Deletes a lock only if `owner` holds it.
const LOCK_RELEASE: &str = include_str!("scripts/lock_release.lua");

impl RedisStore {
    pub(super) fn set_snapshot_cmd(&self, s: &Snapshot, now_ms: i64) -> Cmd {
        let mut c = ::redis::cmd("SET");
        c.arg(self.snapshot_key(&s.snapshot_id))
            .arg(self.codec.encode(&s.to_json()));
        // sagaz's EXPIRE from retention_until, as an absolute time. A time
        // already past would delete the value at once; delete_expired
        // handles those instead.
        if let Some(r) = s.retention_until {
            let ms = r.as_micros() / 1000;
            if ms > now_ms {
                c.arg("PXAT").arg(ms);
            }
        }
        c
    }

    pub(super) async fn write_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        for s in snapshots {
            check_id("snapshot_id", &s.snapshot_id)?;
            check_id("saga_id", &s.saga_id)?;
        }
        self.check_marker_before_write().await?;
        for chunk in snapshots.chunks(BATCH) {
            // Later entries win, as they would one by one.
            let mut latest: HashMap<&str, &Snapshot> = HashMap::new();
            for s in chunk {
                latest.insert(s.snapshot_id.as_str(), s);
            }
            let chunk: Vec<&Snapshot> = {
                let mut seen = HashSet::new();
                chunk
                    .iter()
                    .rev()
                    .filter(|s| seen.insert(s.snapshot_id.as_str()))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect()
            };
            if matches!(self.conn, Conn::Single(_)) {
                self.write_chunk_single(&chunk).await?;
                continue;
            }
            // A replaced snapshot may have moved to another saga.
            let keys: Vec<String> = chunk
                .iter()
                .map(|s| self.snapshot_key(&s.snapshot_id))
                .collect();
            let old = self.mget(&keys).await?;
            let mut touched: Vec<String> = Vec::new();
            let mut cmds = Vec::new();
            let now_ms = Timestamp::now().as_micros() / 1000;
            for (s, old) in chunk.iter().zip(old) {
                if let Some(raw) = old {
                    self.note_replaced(s, &raw, &mut cmds, &mut touched);
                }
                cmds.push(self.set_snapshot_cmd(s, now_ms));
                cmds.push(
                    ::redis::cmd("ZADD")
                        .arg(self.saga_index_key(&s.saga_id))
                        .arg(s.created_at.as_epoch_seconds())
                        .arg(&s.snapshot_id)
                        .clone(),
                );
                match s.retention_until {
                    Some(r) => cmds.push(
                        ::redis::cmd("ZADD")
                            .arg(self.retention_key())
                            .arg(r.as_micros())
                            .arg(Self::retention_member(s))
                            .clone(),
                    ),
                    None => cmds.push(
                        ::redis::cmd("ZREM")
                            .arg(self.retention_key())
                            .arg(Self::retention_member(s))
                            .clone(),
                    ),
                }
            }
            self.many(cmds).await?;
            // Sagas whose head did not move (an older snapshot arrived) are
            // settled by the compare-and-set; those that lost one are forced.
            let known: HashMap<String, Snapshot> = chunk
                .iter()
                .map(|s| (s.snapshot_id.clone(), (*s).clone()))
                .collect();
            let mut sagas: Vec<String> = chunk
                .iter()
                .map(|s| s.saga_id.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            sagas.sort();
            self.refresh_sagas(&sagas, &known, false).await?;
            self.refresh_touched(touched).await?;
        }
        Ok(())
    }

    /// Recomputes the summaries of the sagas a save took snapshots away
    /// from (`note_replaced`'s list), each once.
    pub(super) async fn refresh_touched(&self, mut touched: Vec<String>) -> StoreResult<()> {
        if !touched.is_empty() {
            touched.sort();
            touched.dedup();
            self.refresh_sagas(&touched, &HashMap::new(), true).await?;
        }
        Ok(())
    }

    /// A save replaced `raw` (the previous value under the same id): if the
    /// snapshot moved to another saga, queue the removal of its old index
    /// entries; either way both sagas' summaries are recomputed afterwards
    /// (the replaced snapshot may have been its saga's newest).
    pub(super) fn note_replaced(
        &self,
        new: &Snapshot,
        raw: &[u8],
        cmds: &mut Vec<Cmd>,
        touched: &mut Vec<String>,
    ) {
        let Ok(prev) = self.decode_snapshot("", None, raw) else {
            return;
        };
        if prev.saga_id != new.saga_id {
            cmds.push(
                ::redis::cmd("ZREM")
                    .arg(self.saga_index_key(&prev.saga_id))
                    .arg(&prev.snapshot_id)
                    .clone(),
            );
            cmds.push(
                ::redis::cmd("ZREM")
                    .arg(self.retention_key())
                    .arg(Self::retention_member(&prev))
                    .clone(),
            );
        }
        touched.push(prev.saga_id);
        touched.push(new.saga_id.clone());
    }

    /// One server: each snapshot is one `SAVE_SINGLE` call, the chunk one
    /// pipeline, so a save is one round trip. What the script can't do (it
    /// can't decode a replaced value) follows only when needed.
    pub(super) async fn write_chunk_single(&self, chunk: &[&Snapshot]) -> StoreResult<()> {
        let now_ms = Timestamp::now().as_micros() / 1000;
        let status_prefix = self.status_key("");
        let sha = self.script_sha(&self.save_sha, SAVE_SINGLE).await?;
        let cmds: Vec<Cmd> = chunk
            .iter()
            .map(|s| {
                let mut c = ::redis::cmd("EVALSHA");
                c.arg(sha)
                    .arg(6)
                    .arg(self.snapshot_key(&s.snapshot_id))
                    .arg(self.saga_index_key(&s.saga_id))
                    .arg(self.retention_key())
                    .arg(self.head_key(&s.saga_id))
                    .arg(self.sagas_key())
                    .arg(self.status_key(s.status.as_str()))
                    .arg(self.codec.encode(&s.to_json()));
                // sagaz's EXPIRE from retention_until, as an absolute time;
                // one already past is left to delete_expired.
                match s.retention_until.map(|r| r.as_micros() / 1000) {
                    Some(ms) if ms > now_ms => c.arg(ms),
                    _ => c.arg(""),
                };
                c.arg(s.created_at.as_epoch_seconds())
                    .arg(&s.snapshot_id)
                    .arg(Self::retention_member(s));
                match s.retention_until {
                    Some(r) => c.arg(r.as_micros()),
                    None => c.arg(""),
                };
                c.arg(s.created_at.as_micros())
                    .arg(&s.saga_name)
                    .arg(s.status.as_str())
                    .arg(&s.step_name)
                    .arg(s.step_index)
                    .arg(&s.saga_id)
                    .arg(&status_prefix);
                c
            })
            .collect();
        let replies = self.eval_sha_many(&cmds, SAVE_SINGLE).await?;
        let mut fix = Vec::new();
        let mut touched = Vec::new();
        let mut recompute = Vec::new();
        for (s, r) in chunk.iter().zip(replies) {
            let (old, needs): (Option<Vec<u8>>, i64) = parse_value(r)?;
            if needs == 1 {
                recompute.push(s.saga_id.clone());
            }
            if let Some(raw) = old {
                self.note_replaced(s, &raw, &mut fix, &mut touched);
            }
        }
        if !fix.is_empty() {
            self.many(fix).await?;
        }
        if !recompute.is_empty() {
            recompute.sort();
            recompute.dedup();
            let known: HashMap<String, Snapshot> = chunk
                .iter()
                .map(|s| (s.snapshot_id.clone(), (*s).clone()))
                .collect();
            self.refresh_sagas(&recompute, &known, false).await?;
        }
        self.refresh_touched(touched).await
    }

    /// Removes snapshots (known by id and saga) from sagaz's keys and
    /// sagascope's index; returns how many were in their saga's set.
    pub(super) async fn remove_snapshots(&self, items: &[(String, String)]) -> StoreResult<u64> {
        let mut removed = 0u64;
        for chunk in items.chunks(BATCH) {
            let mut cmds = Vec::new();
            for (snap, saga) in chunk {
                cmds.push(
                    ::redis::cmd("ZREM")
                        .arg(self.saga_index_key(saga))
                        .arg(snap)
                        .clone(),
                );
                cmds.push(::redis::cmd("DEL").arg(self.snapshot_key(snap)).clone());
                cmds.push(
                    ::redis::cmd("ZREM")
                        .arg(self.retention_key())
                        .arg(format!("{snap} {saga}"))
                        .clone(),
                );
            }
            let replies = self.many(cmds).await?;
            for r in replies.chunks(3) {
                let in_set: i64 = parse_value(r[0].clone())?;
                let existed: i64 = parse_value(r[1].clone())?;
                if in_set > 0 || existed > 0 {
                    removed += 1;
                }
            }
            let mut sagas: Vec<String> = chunk.iter().map(|(_, s)| s.clone()).collect();
            sagas.sort();
            sagas.dedup();
            self.refresh_sagas(&sagas, &HashMap::new(), true).await?;
        }
        Ok(removed)
    }
}

pub(super) async fn delete_snapshot(this: &RedisStore, snapshot_id: &str) -> StoreResult<bool> {
    if check_id("snapshot_id", snapshot_id).is_err() {
        return Ok(false);
    }
    let key = this.snapshot_key(snapshot_id);
    let raw: Option<Vec<u8>> = this.get(&key).await?;
    let Some(raw) = raw else {
        return Ok(false);
    };
    match this.decode_snapshot(&key, None, &raw) {
        Ok(s) => Ok(this.remove_snapshots(&[(s.snapshot_id, s.saga_id)]).await? > 0),
        // Unreadable: find its saga by a text search of the value, so
        // the saga's index and summary lose it too (a user deleting a
        // broken entry expects the saga to be clean after).
        Err(_) => {
            let saga = crate::store::codec::salvage_string_field(&this.codec, &raw, "saga_id")
                .filter(|s| check_id("saga_id", s).is_ok());
            if let Some(saga) = saga {
                return Ok(this
                    .remove_snapshots(&[(snapshot_id.to_string(), saga)])
                    .await?
                    > 0);
            }
            let n: i64 = this.cmd(::redis::cmd("DEL").arg(&key).clone()).await?;
            Ok(n > 0)
        }
    }
}

pub(super) async fn delete_saga(this: &RedisStore, saga_id: &str) -> StoreResult<u64> {
    let ids: Vec<String> = this
        .cmd(
            ::redis::cmd("ZRANGE")
                .arg(this.saga_index_key(saga_id))
                .arg(0)
                .arg(-1)
                .clone(),
        )
        .await?;
    // Count values that still exist, as the other backends count rows.
    let vals = this
        .mget(&ids.iter().map(|i| this.snapshot_key(i)).collect::<Vec<_>>())
        .await?;
    let present = vals.iter().filter(|v| v.is_some()).count() as u64;
    let items: Vec<(String, String)> = ids.into_iter().map(|i| (i, saga_id.to_string())).collect();
    this.remove_snapshots(&items).await?;
    this.cmd::<i64>(
        ::redis::cmd("DEL")
            .arg(this.saga_index_key(saga_id))
            .clone(),
    )
    .await?;
    this.apply_heads(&[(saga_id.to_string(), None)], true)
        .await?;
    Ok(present)
}

pub(super) async fn delete_expired(this: &RedisStore, now: Timestamp) -> StoreResult<u64> {
    let key = this.retention_key();
    let mut total = 0;
    loop {
        let members: Vec<String> = this
            .cmd(
                ::redis::cmd("ZRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(format!("({}", now.as_micros()))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(BATCH)
                    .clone(),
            )
            .await?;
        if members.is_empty() {
            return Ok(total);
        }
        let mut items = Vec::new();
        let mut odd = Vec::new();
        for m in &members {
            match m.split_once(' ') {
                Some((snap, saga)) => items.push((snap.to_string(), saga.to_string())),
                None => odd.push(m.clone()),
            }
        }
        total += this.remove_snapshots(&items).await?;
        if !odd.is_empty() {
            let mut c = ::redis::cmd("ZREM");
            c.arg(&key);
            for m in odd {
                c.arg(m);
            }
            this.cmd::<i64>(c).await?;
        }
    }
}

pub(super) async fn save_replay(this: &RedisStore, log: &ReplayLog) -> StoreResult<()> {
    check_id("replay_id", &log.replay_id)?;
    let key = this.replay_key(&log.replay_id);
    let old: Option<Vec<u8>> = this.get(&key).await?;
    let mut cmds = Vec::new();
    if let Some(prev) = old.and_then(|r| this.decode_replay(&key, None, &r).ok()) {
        if prev.original_saga_id != log.original_saga_id {
            cmds.push(
                ::redis::cmd("ZREM")
                    .arg(this.replay_index_key(&prev.original_saga_id))
                    .arg(&prev.replay_id)
                    .clone(),
            );
        }
        if prev.new_saga_id != log.new_saga_id {
            cmds.push(
                ::redis::cmd("DEL")
                    .arg(this.replay_of_key(&prev.new_saga_id))
                    .clone(),
            );
        }
    }
    cmds.push(
        ::redis::cmd("SET")
            .arg(&key)
            .arg(this.codec.encode(&log.to_json()))
            .clone(),
    );
    cmds.push(
        ::redis::cmd("ZADD")
            .arg(this.replay_index_key(&log.original_saga_id))
            .arg(log.created_at.as_epoch_seconds())
            .arg(&log.replay_id)
            .clone(),
    );
    cmds.push(
        ::redis::cmd("SET")
            .arg(this.replay_of_key(&log.new_saga_id))
            .arg(&log.replay_id)
            .clone(),
    );
    this.many(cmds).await?;
    Ok(())
}

pub(super) async fn delete_replay(this: &RedisStore, replay_id: &str) -> StoreResult<bool> {
    if check_id("replay_id", replay_id).is_err() {
        return Ok(false);
    }
    let key = this.replay_key(replay_id);
    let Some(old) = this.get::<Vec<u8>>(&key).await? else {
        return Ok(false);
    };
    let mut cmds = vec![::redis::cmd("DEL").arg(&key).clone()];
    if let Ok(prev) = this.decode_replay(&key, None, &old) {
        cmds.push(
            ::redis::cmd("ZREM")
                .arg(this.replay_index_key(&prev.original_saga_id))
                .arg(replay_id)
                .clone(),
        );
        let of_key = this.replay_of_key(&prev.new_saga_id);
        if this.get::<String>(&of_key).await?.as_deref() == Some(replay_id) {
            cmds.push(::redis::cmd("DEL").arg(of_key).clone());
        }
    }
    this.many(cmds).await?;
    Ok(true)
}

pub(super) async fn try_lock(
    this: &RedisStore,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> StoreResult<LockOutcome> {
    let ms = ttl.as_millis().clamp(1, i64::MAX as u128) as i64;
    let reply: Vec<RValue> = this
        .cmd(
            ::redis::cmd("EVAL")
                .arg(LOCK_TAKE)
                .arg(1)
                .arg(this.lock_key(name))
                .arg(owner)
                .arg(ms)
                .clone(),
        )
        .await?;
    let mut it = reply.into_iter();
    let taken: i64 = it.next().map(parse_value).transpose()?.unwrap_or(0);
    if taken == 1 {
        return Ok(LockOutcome::Acquired);
    }
    let holder: String = it.next().map(parse_value).transpose()?.unwrap_or_default();
    let pttl: i64 = it.next().map(parse_value).transpose()?.unwrap_or(0);
    Ok(LockOutcome::Held {
        owner: holder,
        until: Timestamp::now().plus_micros(pttl.max(0) * 1000),
    })
}

pub(super) async fn unlock(this: &RedisStore, name: &str, owner: &str) -> StoreResult<()> {
    this.cmd::<i64>(
        ::redis::cmd("EVAL")
            .arg(LOCK_RELEASE)
            .arg(1)
            .arg(this.lock_key(name))
            .arg(owner)
            .clone(),
    )
    .await?;
    Ok(())
}
