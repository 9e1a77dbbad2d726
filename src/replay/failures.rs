//! Grouping failures: one key per kind of error, so that "card token for
//! order ord-1012 expired" and the same message for ord-1013 count as one
//! failure, not two. The TUI's overview and the CLI's batch report group
//! with the same function, so their groups agree. Also the overview itself:
//! counts by status, failures grouped by step and error, failures per hour.

use std::collections::HashMap;

use crate::model::{SagaStatus, SagaSummary, Timestamp};
use crate::store::{SagaFilter, SagaPageRequest, SnapshotStore, StoreError};

/// The key errors are grouped by: `message` with every word that holds a
/// digit replaced by a placeholder — `<uuid>` for UUIDs, `<time>` for dates
/// and times, `<n>` for numbers, `<id>` for any other word with a digit
/// (order ids, hex ids, `v2`) — and runs of white space made one space.
/// Words without digits (step names, `card_token`) are kept as they are,
/// so different errors stay apart.
///
/// ```
/// use sagascope::replay::failures::error_group_key;
/// assert_eq!(
///     error_group_key("card token for order ord-1012 expired"),
///     error_group_key("card token for order ord-1013 expired"),
/// );
/// assert_eq!(
///     error_group_key("timeout after 30s at 2026-11-30T04:24:41Z"),
///     "timeout after <id> at <time>",
/// );
/// ```
pub fn error_group_key(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let mut pending_space = false;
    for c in message.chars() {
        if is_word_char(c) {
            word.push(c);
            continue;
        }
        flush_word(&mut out, &mut word, &mut pending_space);
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    flush_word(&mut out, &mut word, &mut pending_space);
    out
}

/// Characters that can sit inside one id, number or timestamp: `ord-1012`,
/// `3.5`, `04:24:41`, `2026-11-30T04:24:41.123+01:00`, `/orders/17`.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+' | '/')
}

fn flush_word(out: &mut String, word: &mut String, pending_space: &mut bool) {
    if word.is_empty() {
        return;
    }
    if *pending_space {
        out.push(' ');
        *pending_space = false;
    }
    // Sentence punctuation after a word ("expired.", "ord-1012:") is not
    // part of it.
    let core = word.trim_end_matches(['.', ':', '-', '/', '+']);
    let tail = &word[core.len()..];
    out.push_str(&classify(core));
    out.push_str(tail);
    word.clear();
}

fn classify(word: &str) -> std::borrow::Cow<'_, str> {
    if !word.chars().any(|c| c.is_ascii_digit()) {
        return word.into();
    }
    if is_uuid(word) {
        "<uuid>".into()
    } else if is_number(word) {
        "<n>".into()
    } else if is_time(word) {
        "<time>".into()
    } else {
        "<id>".into()
    }
}

fn is_uuid(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_number(word: &str) -> bool {
    let digits = word.strip_prefix(['-', '+']).unwrap_or(word);
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.starts_with(|c: char| c.is_ascii_digit())
}

/// Dates and clock times: digits with `-` or `:` between them, an optional
/// `T` between date and time, fractions, and a `Z` or offset at the end.
fn is_time(word: &str) -> bool {
    word.contains(['-', ':'])
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '+' | 'T' | 'Z'))
}

/// Failures that share a step and an error (after [`error_group_key`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroup {
    /// The step the sagas failed at (their newest snapshot's step).
    pub step: String,
    /// The grouping key: the error with ids and numbers replaced.
    pub key: String,
    /// One real error of the group, as recorded (the newest).
    pub example: String,
    /// The sagas in the group, newest activity first.
    pub sagas: Vec<SagaSummary>,
}

/// What the store holds at a glance: real totals by status, the newest
/// failures grouped by step and error, failures per hour over the last day.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// When it was computed (the per-hour buckets end here).
    pub at: Timestamp,
    /// Every saga in the store.
    pub total: u64,
    /// Sagas by the status of their newest snapshot, in sagaz's order,
    /// statuses without sagas left out; sagas of other statuses are
    /// `total` less the sum.
    pub by_status: Vec<(SagaStatus, u64)>,
    /// Sagas whose newest status is a failure (failed, rolled back,
    /// partially committed).
    pub failures: u64,
    /// How many of them were read to build `groups` (the newest ones; at
    /// most the limit asked for).
    pub grouped: usize,
    /// The failures read, by step and error, largest group first.
    pub groups: Vec<ErrorGroup>,
    /// Failed sagas last active in each hour of the last 24, oldest first:
    /// `per_hour[23]` is the hour up to `at`.
    pub per_hour: [u64; 24],
}

/// The statuses that count as failures.
pub fn failure_statuses() -> Vec<SagaStatus> {
    SagaStatus::KNOWN
        .iter()
        .filter(|s| s.is_failure())
        .cloned()
        .collect()
}

const HOUR_US: i64 = 3_600_000_000;

/// Computes the [`Overview`] at `now`, reading the newest `limit`
/// failures' last snapshots for their errors. Totals come from the store's
/// counts (one query per status and hour), not from a scan.
pub async fn overview(
    store: &dyn SnapshotStore,
    now: Timestamp,
    limit: usize,
) -> Result<Overview, StoreError> {
    let count = |statuses: Vec<SagaStatus>, since, until| {
        let filter = SagaFilter {
            statuses,
            since,
            until,
            ..SagaFilter::default()
        };
        async move { store.count_sagas(&filter).await }
    };
    let total = count(Vec::new(), None, None).await?;
    let mut by_status = Vec::new();
    for s in SagaStatus::KNOWN {
        let n = count(vec![s.clone()], None, None).await?;
        if n > 0 {
            by_status.push((s, n));
        }
    }
    let failing = failure_statuses();
    let failures = by_status
        .iter()
        .filter(|(s, _)| s.is_failure())
        .map(|(_, n)| n)
        .sum();
    let mut per_hour = [0u64; 24];
    for (h, slot) in per_hour.iter_mut().enumerate() {
        let start = now.plus_micros(-HOUR_US * (24 - h as i64));
        // Both ends of the store's range are inclusive: stop a microsecond
        // short of the next hour so no saga counts twice.
        let end = if h == 23 {
            now
        } else {
            start.plus_micros(HOUR_US - 1)
        };
        *slot = count(failing.clone(), Some(start), Some(end)).await?;
    }
    // The newest failures, then each one's last snapshot for its error.
    let filter = SagaFilter {
        statuses: failing,
        ..SagaFilter::default()
    };
    let mut sagas: Vec<SagaSummary> = Vec::new();
    let mut after = None;
    while sagas.len() < limit {
        let page = store
            .list_sagas(
                &filter,
                &SagaPageRequest {
                    limit: (limit - sagas.len()).min(500),
                    after,
                },
            )
            .await?;
        sagas.extend(page.sagas);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    sagas.truncate(limit);
    let grouped = sagas.len();
    // Eight reads at a time: a remote store answers them in parallel.
    let mut errors: Vec<Option<String>> = Vec::with_capacity(sagas.len());
    for chunk in sagas.chunks(8) {
        let reads = chunk
            .iter()
            .map(|s| s.saga_id.clone())
            .map(|id| async move {
                match store.latest_snapshot(&id, None).await {
                    Ok(Some(snap)) => Ok(snap.error_message()),
                    Ok(None) | Err(StoreError::Corrupt { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            });
        for r in futures::future::join_all(reads).await {
            errors.push(r?);
        }
    }
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    let mut groups: Vec<ErrorGroup> = Vec::new();
    for (s, error) in sagas.into_iter().zip(errors) {
        let example = error.unwrap_or_default();
        let key = error_group_key(&example);
        let slot = *at
            .entry((s.latest_step.clone(), key.clone()))
            .or_insert_with(|| {
                groups.push(ErrorGroup {
                    step: s.latest_step.clone(),
                    key,
                    example,
                    sagas: Vec::new(),
                });
                groups.len() - 1
            });
        groups[slot].sagas.push(s);
    }
    // Largest first; ties keep the newest first (the scan's order).
    groups.sort_by_key(|g| std::cmp::Reverse(g.sagas.len()));
    Ok(Overview {
        at: now,
        total,
        by_status,
        failures,
        grouped,
        groups,
        per_hour,
    })
}

#[cfg(test)]
mod tests {
    use super::error_group_key;

    #[test]
    fn ids_that_differ_share_a_group_and_the_words_around_them_stay() {
        let a = error_group_key("card token for order ord-1012 expired");
        assert_eq!(a, "card token for order <id> expired");
        assert_eq!(a, error_group_key("card token for order ord-1013 expired"));
    }

    #[test]
    fn uuids_timestamps_and_numbers_each_get_a_placeholder() {
        assert_eq!(
            error_group_key(
                "saga 4986dd05-1c2b-4d3e-9f00-0123456789ab failed at 2026-11-30T04:24:41.5Z after 3 tries"
            ),
            "saga <uuid> failed at <time> after <n> tries"
        );
        assert_eq!(
            error_group_key("took 1.25 s, limit 2026-11-30 04:24:41"),
            "took <n> s, limit <time> <time>"
        );
    }

    #[test]
    fn punctuation_after_an_id_is_kept_and_white_space_is_folded() {
        assert_eq!(
            error_group_key("  no seat on flight LH-400:  booked  (id=77).\n"),
            "no seat on flight <id>: booked (id=<n>)."
        );
    }

    #[test]
    fn different_errors_stay_apart() {
        assert_ne!(
            error_group_key("card declined for ord-1"),
            error_group_key("card expired for ord-1")
        );
        assert_eq!(error_group_key(""), "");
        assert_eq!(error_group_key("no_stock"), "no_stock");
    }
}
