//! The saga list: newest snapshot per saga, found by index walks over
//! sagaz's table (sagascope's `sagascope_snapshots_*` indexes), with counts
//! and first times, in pages.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::super::sql::{one_summary, sql_int, summary_from_row, Bind};
use super::conn::db_err;
use super::read::Params;
use super::schema::uuid_for_read;
use super::*;

/// How a bad saga-list row is named: `saga_snapshots/saga:{saga_id}`.
const SUMMARY_KEY: &str = "saga_snapshots/saga:";

/// LIKE pattern for "starts with", with the wildcards escaped.
fn like_prefix(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 1);
    for c in p.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Newest snapshots per saga that pass `filter`, as a `WHERE` body over
/// `saga_snapshots AS s`. The `NOT EXISTS` probe keeps only each saga's
/// newest row (by `created_at`, ties by `snapshot_id`, as everywhere).
pub(super) fn newest_per_saga_where(
    filter: &SagaFilter,
    after: Option<&SagaCursor>,
    p: &mut Params,
) -> Option<String> {
    let mut conds: Vec<String> = Vec::new();
    match filter.statuses.len() {
        0 => {}
        1 => conds.push(format!(
            "s.status = {}",
            p.push(Bind::Text(filter.statuses[0].as_str().into()))
        )),
        _ => conds.push(format!(
            "s.status = ANY({})",
            p.push(Bind::TextList(
                filter
                    .statuses
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect()
            ))
        )),
    }
    if let Some(n) = &filter.name {
        conds.push(format!("s.saga_name = {}", p.push(Bind::Text(n.clone()))));
    }
    if let Some(part) = &filter.name_contains {
        // translate() folds ASCII only, as SagaFilter::matches does (lower()
        // would fold other letters too, by the database's locale); strpos()
        // takes the text as it is, no LIKE pattern to escape.
        conds.push(format!(
            "strpos(translate(s.saga_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), {}) > 0",
            p.push(Bind::Text(part.to_ascii_lowercase()))
        ));
    }
    if let Some(st) = &filter.latest_step {
        conds.push(format!("s.step_name = {}", p.push(Bind::Text(st.clone()))));
    }
    if let Some(t) = filter.since {
        conds.push(format!(
            "s.created_at >= {}",
            p.push(Bind::Time(t.as_datetime()))
        ));
    }
    if let Some(t) = filter.until {
        conds.push(format!(
            "s.created_at <= {}",
            p.push(Bind::Time(t.as_datetime()))
        ));
    }
    if let Some(prefix) = &filter.id_prefix {
        conds.push(format!(
            "s.saga_id::text LIKE {}",
            p.push(Bind::Text(like_prefix(&prefix.to_ascii_lowercase())))
        ));
    }
    if let Some(c) = after {
        // A cursor naming a non-UUID saga cannot come from this store.
        let id = uuid_for_read(&c.saga_id)?;
        let t = p.push(Bind::Time(c.last_at.as_datetime()));
        let i = p.push(Bind::Uuid(id));
        conds.push(format!("(s.created_at, s.saga_id) < ({t}, {i})"));
    }
    conds.push(
        "NOT EXISTS (SELECT 1 FROM saga_snapshots n WHERE n.saga_id = s.saga_id \
         AND (n.created_at, n.snapshot_id) > (s.created_at, s.snapshot_id))"
            .into(),
    );
    Some(conds.join(" AND "))
}

/// The saga-list query (used by `list_sagas`, `saga_summary` and the
/// EXPLAIN test). Returns `None` when nothing can match.
pub fn saga_list_sql(
    filter: &SagaFilter,
    after: Option<&SagaCursor>,
    limit: i64,
) -> Option<(String, usize)> {
    let mut p = PostgresStore::params();
    let cond = newest_per_saga_where(filter, after, &mut p)?;
    let lim = p.push(Bind::Int(limit));
    let n = p.len();
    Some((saga_list_text(&cond, &lim), n))
}

fn saga_list_text(cond: &str, lim: &str) -> String {
    format!(
        "SELECT p.saga_id, p.saga_name, p.status, p.step_name, p.step_index, c.n, c.first_at, p.created_at \
         FROM (SELECT s.saga_id, s.saga_name, s.status, s.step_name, s.step_index, s.created_at \
               FROM saga_snapshots s WHERE {cond} \
               ORDER BY s.created_at DESC, s.saga_id DESC LIMIT {lim}) p \
         CROSS JOIN LATERAL (SELECT count(*) AS n, min(x.created_at) AS first_at \
               FROM saga_snapshots x WHERE x.saga_id = p.saga_id) c \
         ORDER BY p.created_at DESC, p.saga_id DESC"
    )
}

impl PostgresStore {
    /// `EXPLAIN (ANALYZE, FORMAT TEXT)` of the saga-list query for a filter,
    /// to check that browsing walks indexes.
    pub async fn explain_list_sagas(
        &self,
        filter: &SagaFilter,
        limit: usize,
    ) -> StoreResult<String> {
        let mut p = PostgresStore::params();
        let Some(cond) = newest_per_saga_where(filter, None, &mut p) else {
            return Ok(String::new());
        };
        let lim = p.push(Bind::Int(sql_int(limit)));
        let rows = p
            .query(format!(
                "EXPLAIN (ANALYZE, COSTS OFF) {}",
                saga_list_text(&cond, &lim)
            ))
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    pub(super) async fn list_sagas(
        &self,
        filter: &SagaFilter,
        page: &SagaPageRequest,
    ) -> StoreResult<SagaPage> {
        let mut p = PostgresStore::params();
        let Some(cond) = newest_per_saga_where(filter, page.after.as_ref(), &mut p) else {
            return Ok(SagaPage::default());
        };
        let lim = p.push(Bind::Int(
            (page.limit.min(i64::MAX as usize - 1) as i64) + 1,
        ));
        let rows = p
            .query(saga_list_text(&cond, &lim))
            // Unnamed, so planned for these values every time (see parse_url).
            .persistent(false)
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        let more = rows.len() > page.limit;
        let mut out = SagaPage::default();
        for row in rows.iter().take(page.limit) {
            match summary_from_row(row, SUMMARY_KEY) {
                Ok(s) => out.sagas.push(s),
                Err(b) => out.bad.push(b),
            }
        }
        if more && page.limit > 0 {
            // From the raw row, so a bad row never makes paging repeat or skip.
            if let Some(row) = rows.get(page.limit - 1) {
                let id: Option<Uuid> = row.try_get(0).ok();
                let at: Option<DateTime<Utc>> = row.try_get(7).ok();
                if let (Some(id), Some(at)) = (id, at) {
                    out.next = Some(SagaCursor {
                        last_at: Timestamp::from_datetime(at),
                        saga_id: id.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>> {
        let Some(id) = uuid_for_read(saga_id) else {
            return Ok(None);
        };
        let mut p = PostgresStore::params();
        let Some(cond) = newest_per_saga_where(&SagaFilter::default(), None, &mut p) else {
            return Ok(None);
        };
        let cond = format!("s.saga_id = {} AND {cond}", p.push(Bind::Uuid(id)));
        let lim = p.push(Bind::Int(1));
        let row = p
            .query(saga_list_text(&cond, &lim))
            .fetch_optional(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        one_summary(row, SUMMARY_KEY)
    }

    pub(super) async fn count_sagas(&self, filter: &SagaFilter) -> StoreResult<u64> {
        let mut p = PostgresStore::params();
        let Some(cond) = newest_per_saga_where(filter, None, &mut p) else {
            return Ok(0);
        };
        let row = p
            .query(format!(
                "SELECT count(*) FROM saga_snapshots s WHERE {cond}"
            ))
            .persistent(false)
            .fetch_one(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(row.try_get::<i64, _>(0).map_err(db_err)?.max(0) as u64)
    }
}
