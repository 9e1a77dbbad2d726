//! The saga summaries sagascope keeps beside sagaz's objects: computing
//! and storing them, and listing sagas from them.

use std::collections::BTreeMap;

use futures::StreamExt;

use crate::model::{SagaSummary, Snapshot};

use super::super::entry;
use super::super::*;
use super::schema::{compact, id_ok, parse_small, Entry, StoredSummary, SUMMARIES};
use super::{ObjectStore, PutMeta, PARALLEL};

impl ObjectStore {
    /// Recomputes a saga's summary from both indexes and stores it with
    /// one compare-and-swap (deleting it when the saga has no snapshots
    /// left). Returns the summary, also when read-only or when the swap lost.
    ///
    /// One attempt is enough because a summary can always be checked: it
    /// records the ETag of sagaz's index it was computed from, and sagaz's
    /// index is read *before* the markers are listed. Every writer adds its
    /// marker before it updates sagaz's index, so a summary whose ETag is
    /// the index's current one has seen every marker; one whose ETag is
    /// older (a lost race, a crash, or sagaz writing alone) is recomputed by
    /// the next reader or writer.
    pub(super) async fn refresh_summary(
        &self,
        saga_id: &str,
        known: &[Snapshot],
    ) -> StoreResult<Option<StoredSummary>> {
        let key = format!("{SUMMARIES}{saga_id}.json");
        let current = self.driver.get(&key).await?;
        let old = current
            .as_ref()
            .and_then(|o| parse_small(&o.bytes))
            .and_then(|v| StoredSummary::from_json(&v));
        let mut sagaz = self.read_sagaz_index(saga_id).await?;
        let markers = self.list_markers(saga_id).await?;
        let entries = self.merge(saga_id, markers, &mut sagaz);
        let computed = self
            .compute_summary(saga_id, &entries, sagaz.etag.clone(), old.as_ref(), known)
            .await?;
        if self.readonly {
            return Ok(computed);
        }
        match (&computed, &current) {
            (None, None) => {}
            (None, Some(obj)) => {
                self.driver.delete_if(&key, &obj.etag).await?;
            }
            (Some(c), Some(_)) if old.as_ref() == Some(c) => {}
            (Some(c), cur) => {
                self.driver
                    .put_if(
                        &key,
                        compact(&c.to_json()),
                        cur.as_ref().map(|o| o.etag.as_str()),
                        &PutMeta::default(),
                    )
                    .await?;
            }
        }
        Ok(computed)
    }

    pub(super) async fn compute_summary(
        &self,
        saga_id: &str,
        entries: &[Entry],
        sagaz_etag: Option<String>,
        old: Option<&StoredSummary>,
        known: &[Snapshot],
    ) -> StoreResult<Option<StoredSummary>> {
        let (Some(first), Some(_)) = (entries.first(), entries.last()) else {
            return Ok(None);
        };
        // The newest readable snapshot gives name, status and step; the
        // caller's own snapshots and the old summary save a read.
        for e in entries.iter().rev() {
            let latest = if let Some(s) = known
                .iter()
                .find(|s| s.snapshot_id == e.snapshot_id && s.saga_id == saga_id)
            {
                Some(s.clone())
            } else if let Some(o) = old.filter(|o| {
                o.latest_snapshot_id == e.snapshot_id && o.summary.last_at == e.created_at
            }) {
                return Ok(Some(StoredSummary {
                    summary: SagaSummary {
                        snapshot_count: entries.len() as u64,
                        first_at: first.created_at,
                        ..o.summary.clone()
                    },
                    latest_snapshot_id: e.snapshot_id.clone(),
                    sagaz_etag,
                }));
            } else {
                self.read_snapshot(saga_id, &e.snapshot_id)
                    .await
                    .ok()
                    .flatten()
            };
            if let Some(s) = latest {
                return Ok(Some(StoredSummary {
                    summary: SagaSummary {
                        saga_id: saga_id.to_string(),
                        saga_name: s.saga_name,
                        latest_status: s.status,
                        latest_step: s.step_name,
                        latest_step_index: s.step_index,
                        snapshot_count: entries.len() as u64,
                        first_at: first.created_at,
                        last_at: e.created_at,
                    },
                    latest_snapshot_id: e.snapshot_id.clone(),
                    sagaz_etag,
                }));
            }
        }
        Ok(None)
    }

    /// Every saga id with a summary or a sagaz index, with the ETags of its
    /// sagaz index and of its summary (either may be absent).
    pub(super) async fn saga_ids(
        &self,
    ) -> StoreResult<BTreeMap<String, (Option<String>, Option<String>)>> {
        let (summaries, indexes) = futures::try_join!(
            self.driver.list(SUMMARIES),
            self.driver.list(self.layout.index_dir())
        )?;
        let mut out: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
        for l in indexes {
            if let Some(id) = l
                .key
                .strip_prefix(self.layout.index_dir())
                .and_then(|k| k.strip_suffix(".json"))
            {
                if !id.contains('/') {
                    out.entry(id.to_string()).or_default().0 = Some(l.etag);
                }
            }
        }
        for l in summaries {
            if let Some(id) = l
                .key
                .strip_prefix(SUMMARIES)
                .and_then(|k| k.strip_suffix(".json"))
            {
                if !id.contains('/') {
                    out.entry(id.to_string()).or_default().1 = Some(l.etag);
                }
            }
        }
        Ok(out)
    }

    /// One saga's summary: the stored one when it is current (from memory
    /// when its ETag has not changed), else recomputed and stored (unless
    /// read-only). The flag says it had to be recomputed.
    pub(super) async fn summary_of(
        &self,
        saga_id: &str,
        sagaz_etag: Option<&str>,
        summary_etag: Option<&str>,
    ) -> Result<(Option<SagaSummary>, bool), BadEntry> {
        let key = format!("{SUMMARIES}{saga_id}.json");
        let to_bad = |e: StoreError| self.bad_read(&key, Some(saga_id), e);
        if let Some(etag) = summary_etag {
            let cached = self
                .cache()
                .get(saga_id)
                .filter(|(e, s)| e == etag && s.sagaz_etag.as_deref() == sagaz_etag)
                .map(|(_, s)| s.summary.clone());
            if let Some(s) = cached {
                return Ok((Some(s), false));
            }
            if let Some(obj) = self.driver.get(&key).await.map_err(to_bad)? {
                let stored = parse_small(&obj.bytes).and_then(|v| StoredSummary::from_json(&v));
                if let Some(stored) = stored {
                    let current = stored.sagaz_etag.as_deref() == sagaz_etag;
                    let summary = stored.summary.clone();
                    self.cache().insert(saga_id.to_string(), (obj.etag, stored));
                    if current {
                        return Ok((Some(summary), false));
                    }
                }
            }
        }
        let computed = self.refresh_summary(saga_id, &[]).await.map_err(to_bad)?;
        Ok((computed.map(|c| c.summary), true))
    }

    /// Every saga's summary, bad ones named, and how many had to be
    /// recomputed.
    pub(super) async fn all_summaries(
        &self,
    ) -> StoreResult<(Vec<SagaSummary>, Vec<BadEntry>, usize)> {
        let ids = self.saga_ids().await?;
        let results: Vec<Result<(Option<SagaSummary>, bool), BadEntry>> =
            futures::stream::iter(ids)
                .map(|(id, (sagaz, summary))| async move {
                    self.summary_of(&id, sagaz.as_deref(), summary.as_deref())
                        .await
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        let mut out = (vec![], vec![], 0);
        for r in results {
            match r {
                Ok((s, recomputed)) => {
                    out.0.extend(s);
                    out.2 += usize::from(recomputed);
                }
                Err(b) => out.1.push(b),
            }
        }
        Ok(out)
    }
}

pub(super) async fn list_sagas(
    this: &ObjectStore,
    filter: &SagaFilter,
    page: &SagaPageRequest,
) -> StoreResult<SagaPage> {
    let (all, bad, recomputed) = this.all_summaries().await?;
    Ok(SagaPage {
        bad,
        index_warning: (this.readonly && recomputed > 0).then(|| {
            format!(
                "{recomputed} saga(s) have no current sagascope summary (written or changed by sagaz); \
                 they were summarised from their newest snapshots. Open the store once without \
                 --readonly to index them"
            )
        }),
        ..entry::saga_page(all, filter, page)
    })
}

pub(super) async fn saga_summary(
    this: &ObjectStore,
    saga_id: &str,
) -> StoreResult<Option<SagaSummary>> {
    if !id_ok(saga_id) {
        return Ok(None);
    }
    let sagaz_etag = this
        .driver
        .get(&this.layout.index_key(saga_id))
        .await?
        .map(|o| o.etag);
    let summary_etag = this
        .driver
        .get(&format!("{SUMMARIES}{saga_id}.json"))
        .await?
        .map(|o| o.etag);
    this.summary_of(saga_id, sagaz_etag.as_deref(), summary_etag.as_deref())
        .await
        .map(|(s, _)| s)
        .map_err(|entry| StoreError::Corrupt { entry })
}

pub(super) async fn count_sagas(this: &ObjectStore, filter: &SagaFilter) -> StoreResult<u64> {
    let (all, _, _) = this.all_summaries().await?;
    Ok(all.iter().filter(|s| filter.matches(s)).count() as u64)
}
