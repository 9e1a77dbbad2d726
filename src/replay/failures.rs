//! Grouping failures: one key per kind of error, so that "card token for
//! order ord-1012 expired" and the same message for ord-1013 count as one
//! failure, not two. The TUI's overview and the CLI's batch report group
//! with the same function, so their groups agree.

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
