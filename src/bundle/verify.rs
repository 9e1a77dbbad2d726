//! Verifying a copy (`migrate --verify`) by a pass of its own. The copy
//! loop's data is not reused: a bug in how the copy enumerated the source
//! (a listing that stops early, a page lost) would be repeated by a check
//! that trusted the same enumeration. So the source is counted with
//! `count_sagas` (on Redis a ZCOUNT over the index, independent of the
//! paging code), enumerated again with a different page size, and each
//! saga's snapshots are counted with `count_snapshots` and read again for
//! a digest that is compared with the destination's.

use std::collections::HashSet;

use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{all_snapshots, comparable_replay, comparable_snapshot, replays_oldest_first, Kept};
use crate::store::{SagaFilter, SagaPageRequest, SnapshotStore, StoreError};

/// Page sizes that differ from the copy's (1,000 sagas, 5,000 snapshots),
/// so a paging bug that depends on the size does not hide itself.
const SAGA_PAGE: usize = 317;
const SNAPSHOT_PAGE: usize = 1_999;
/// Sagas checked at once.
const IN_FLIGHT: usize = 8;
/// Differences listed in full; the rest are counted.
const LISTED: usize = 20;

/// What the verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// `count_sagas` on the source.
    pub source_sagas_counted: u64,
    /// Sagas the source's listing gave (enumerated by the verifier).
    pub source_sagas_listed: u64,
    /// `count_sagas` on the destination (at least the source's when verified;
    /// it may hold other sagas too).
    pub destination_sagas_counted: u64,
    /// Snapshots checked, summed over the source's sagas (`count_snapshots`).
    pub snapshots: u64,
    /// Replay-log entries checked, summed over the source's sagas.
    pub replays: u64,
    /// What differs, one line each (the first 20; the rest are only
    /// counted in [`difference_count`](Self::difference_count)).
    pub differences: Vec<String>,
    /// How many differences there were in all.
    pub difference_count: u64,
}

impl VerifyReport {
    /// Every count agreed and every digest was equal.
    pub fn verified(&self) -> bool {
        self.difference_count == 0
    }

    fn differs(&mut self, what: String) {
        self.difference_count += 1;
        if self.differences.len() < LISTED {
            self.differences.push(what);
        }
    }
}

fn digest<'a>(values: impl Iterator<Item = &'a serde_json::Value>) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_string().as_bytes());
        h.update(b"\n");
    }
    super::hex(&h.finalize())
}

struct SagaCheck {
    snapshots: u64,
    replays: u64,
    differences: Vec<String>,
}

async fn check_saga(
    from: &dyn SnapshotStore,
    to: &dyn SnapshotStore,
    kept: Kept,
    id: &str,
) -> Result<SagaCheck, StoreError> {
    let mut out = SagaCheck {
        snapshots: 0,
        replays: 0,
        differences: Vec::new(),
    };
    let (src_count, dst_count) = (
        from.count_snapshots(id).await?,
        to.count_snapshots(id).await?,
    );
    let (src, src_bad) = all_snapshots(from, id, SNAPSHOT_PAGE).await?;
    let (dst, _) = all_snapshots(to, id, SNAPSHOT_PAGE).await?;
    out.snapshots = src_count;
    let src_listed = (src.len() + src_bad.len()) as u64;
    if src_listed != src_count {
        out.differences.push(format!(
            "saga {id}: the source lists {src_listed} snapshot(s) but counts {src_count}"
        ));
    }
    if dst_count != src_count {
        out.differences.push(format!(
            "saga {id}: the destination has {dst_count} snapshot(s), the source {src_count}"
        ));
    }
    let mut a: Vec<_> = src.iter().map(|s| comparable_snapshot(s, kept)).collect();
    let mut b: Vec<_> = dst.iter().map(|s| comparable_snapshot(s, kept)).collect();
    // Sorted by their text so the order a store lists ties in does not matter.
    a.sort_by_cached_key(|v| v.to_string());
    b.sort_by_cached_key(|v| v.to_string());
    if digest(a.iter()) != digest(b.iter()) {
        out.differences
            .push(format!("saga {id}: the snapshots' digests differ"));
    }
    let (src_r, _) = replays_oldest_first(from, id).await?;
    let (dst_r, _) = replays_oldest_first(to, id).await?;
    out.replays = src_r.len() as u64;
    let ids = |l: &[crate::model::ReplayLog]| -> Vec<String> {
        let mut v: Vec<String> = l.iter().map(|r| r.replay_id.clone()).collect();
        v.sort();
        v
    };
    if ids(&src_r) != ids(&dst_r) {
        out.differences.push(format!(
            "saga {id}: the destination has {} replay log entries, the source {} (or other ids)",
            dst_r.len(),
            src_r.len()
        ));
    } else {
        let a: Vec<_> = src_r.iter().map(comparable_replay).collect();
        let b: Vec<_> = dst_r.iter().map(comparable_replay).collect();
        if digest(a.iter()) != digest(b.iter()) {
            out.differences
                .push(format!("saga {id}: the replay logs' digests differ"));
        }
    }
    Ok(out)
}

/// Checks that `to` holds every saga of `from` (snapshots and replay log)
/// with equal content, independently of how they were copied.
pub async fn verify_copy(
    from: &dyn SnapshotStore,
    to: &dyn SnapshotStore,
) -> Result<VerifyReport, StoreError> {
    let all = SagaFilter::default();
    let mut report = VerifyReport {
        source_sagas_counted: from.count_sagas(&all).await?,
        destination_sagas_counted: to.count_sagas(&all).await?,
        ..VerifyReport::default()
    };
    let mut ids: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut req = SagaPageRequest {
        limit: SAGA_PAGE,
        after: None,
    };
    loop {
        let page = from.list_sagas(&all, &req).await?;
        for s in page.sagas {
            if seen.insert(s.saga_id.clone()) {
                ids.push(s.saga_id);
            }
        }
        match page.next {
            Some(n) => req.after = Some(n),
            None => break,
        }
    }
    report.source_sagas_listed = ids.len() as u64;
    if report.source_sagas_listed != report.source_sagas_counted {
        report.differs(format!(
            "the source lists {} saga(s) but counts {}: the copy cannot be complete",
            report.source_sagas_listed, report.source_sagas_counted
        ));
    }
    if report.destination_sagas_counted < report.source_sagas_counted {
        report.differs(format!(
            "the destination has {} saga(s), the source {}",
            report.destination_sagas_counted, report.source_sagas_counted
        ));
    }
    let kept = Kept::by(&[from, to]);
    let mut checks = futures::stream::iter(ids.iter())
        .map(|id| check_saga(from, to, kept, id))
        .buffer_unordered(IN_FLIGHT);
    while let Some(c) = checks.next().await {
        let c = c?;
        report.snapshots += c.snapshots;
        report.replays += c.replays;
        for d in c.differences {
            report.differs(d);
        }
    }
    Ok(report)
}
