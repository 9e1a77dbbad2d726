//! `batch --junit FILE`: a batch as a JUnit XML report, the format CI
//! systems (GitLab, Jenkins, GitHub test reporters) show as test results.
//! One test suite per batch, one test case per saga: classname is the saga's
//! name, name its id, time the seconds spent on it. A saga that failed,
//! was locked, has an abandoned replay or could not be replayed
//! has a `<failure>` whose `type` is its result and `message` its error; a
//! saga a guard skipped (completed, already replayed, maybe running) has a
//! `<skipped>`.

use std::fmt::Write as _;

use crate::replay::batch::{BatchItem, BatchSummary, ItemResult};

/// The JUnit XML document of a batch.
pub fn junit_xml(s: &BatchSummary, items: &[BatchItem]) -> String {
    let failures = s.failed + s.locked + s.abandoned + s.errors;
    let suite = format!(
        "sagascope batch from {}{}",
        s.from_step,
        if s.dry_run { " (dry run)" } else { "" }
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\"",
        s.total, s.skipped, s.elapsed_secs
    );
    let _ = writeln!(
        out,
        "<testsuites name=\"sagascope batch\" {counts}>\n  <testsuite name=\"{}\" {counts}>",
        attr(&suite)
    );
    // The summary's own counts, so a reader can tell failed from locked
    // without walking the cases.
    out.push_str("    <properties>\n");
    for (name, value) in [
        ("from_step", s.from_step.clone()),
        ("dry_run", s.dry_run.to_string()),
        ("ok", s.ok.to_string()),
        ("failed", s.failed.to_string()),
        ("skipped", s.skipped.to_string()),
        ("locked", s.locked.to_string()),
        ("abandoned", s.abandoned.to_string()),
        ("errors", s.errors.to_string()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(&value)
        );
    }
    out.push_str("    </properties>\n");
    for i in items {
        testcase(&mut out, i);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn result_name(r: ItemResult) -> &'static str {
    match r {
        ItemResult::Ok => "ok",
        ItemResult::Failed => "failed",
        ItemResult::Skipped => "skipped",
        ItemResult::Locked => "locked",
        ItemResult::Abandoned => "abandoned",
        ItemResult::Error => "error",
    }
}

fn testcase(out: &mut String, i: &BatchItem) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
        attr(i.saga_name.as_deref().unwrap_or("(unknown saga)")),
        attr(&i.saga_id),
        i.elapsed_secs
    );
    let mut body = String::new();
    match i.result {
        ItemResult::Ok => {}
        ItemResult::Skipped => {
            let message = match &i.new_saga_id {
                Some(n) => format!("already replayed successfully as saga {n}"),
                None => "already replayed successfully".to_string(),
            };
            let _ = writeln!(body, "      <skipped message=\"{}\"/>", attr(&message));
        }
        r => {
            let error = i.error.as_deref().unwrap_or("");
            let detail = match &i.step {
                Some(step) => format!("at step {step}: {error}"),
                None => error.to_string(),
            };
            let _ = writeln!(
                body,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                attr(error),
                result_name(r),
                text(&detail)
            );
        }
    }
    let mut ids = Vec::new();
    if let Some(r) = &i.replay_id {
        ids.push(format!("replay {r}"));
    }
    if let Some(n) = &i.new_saga_id {
        ids.push(format!("new saga {n}"));
    }
    if !ids.is_empty() {
        let _ = writeln!(
            body,
            "      <system-out>{}</system-out>",
            text(&ids.join("\n"))
        );
    }
    if body.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        out.push_str(&body);
        out.push_str("    </testcase>\n");
    }
}

/// Escapes element text: `&`, `<`, `>`, and characters XML 1.0 cannot hold.
fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes an attribute value (in double quotes): as [`text`], plus quotes,
/// and line breaks and tabs as character references so they survive
/// attribute-value normalisation.
fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attr => out.push_str("&quot;"),
            '\'' if in_attr => out.push_str("&apos;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if in_attr => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            // Control characters (an ANSI escape in a step's stderr) and
            // U+FFFE/U+FFFF are not allowed in XML 1.0, not even as
            // references: shown as \u{..} instead.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(items: &[BatchItem], dry_run: bool) -> BatchSummary {
        crate::replay::batch::summarize(items, dry_run, "charge_payment", 1.5)
    }

    fn item(id: &str, result: ItemResult, error: Option<&str>) -> BatchItem {
        BatchItem {
            saga_id: id.into(),
            saga_name: Some("OrderSaga".into()),
            result,
            step: error.map(|_| "charge_payment".into()),
            error: error.map(str::to_string),
            replay_id: Some(format!("r-{id}")),
            new_saga_id: None,
            elapsed_secs: 0.25,
        }
    }

    #[test]
    fn a_failed_saga_is_a_failure_with_its_result_as_type_and_escaped_message() {
        let items = [
            item("s1", ItemResult::Ok, None),
            item(
                "s2",
                ItemResult::Failed,
                Some("bad <card> & \"token\"\nline 2\u{1b}[31m"),
            ),
            BatchItem {
                new_saga_id: Some("n3".into()),
                ..item("s3", ItemResult::Skipped, None)
            },
        ];
        let xml = junit_xml(&summary(&items, false), &items);
        assert!(xml.contains(
            r#"<testsuite name="sagascope batch from charge_payment" tests="3" failures="1" errors="0" skipped="1" time="1.500">"#
        ), "{xml}");
        assert!(
            xml.contains(r#"<testcase classname="OrderSaga" name="s1" time="0.250">"#),
            "{xml}"
        );
        assert!(xml.contains(
            "<failure message=\"bad &lt;card&gt; &amp; &quot;token&quot;&#10;line 2\\u{1b}[31m\" type=\"failed\">at step charge_payment: bad &lt;card&gt; &amp; \"token\"\nline 2\\u{1b}[31m</failure>"
        ), "{xml}");
        assert!(
            xml.contains(r#"<skipped message="already replayed successfully as saga n3"/>"#),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'));
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert_eq!(
            xml.matches("</testcase>").count(),
            3,
            "each case with a body is closed"
        );
    }

    #[test]
    fn every_problem_result_is_a_failure_and_an_empty_batch_is_a_valid_empty_suite() {
        let items = [
            item("a", ItemResult::Failed, Some("x")),
            item("b", ItemResult::Locked, Some("y")),
            item("c", ItemResult::Abandoned, Some("z")),
            item("d", ItemResult::Error, None),
        ];
        let xml = junit_xml(&summary(&items, true), &items);
        assert!(xml.contains("from charge_payment (dry run)"), "{xml}");
        assert!(xml.contains(r#"failures="4""#), "{xml}");
        for t in ["failed", "locked", "abandoned", "error"] {
            assert!(xml.contains(&format!("type=\"{t}\"")), "{t}: {xml}");
        }
        let empty = junit_xml(&summary(&[], true), &[]);
        assert!(empty.contains(r#"tests="0" failures="0""#), "{empty}");
        assert!(empty.ends_with("  </testsuite>\n</testsuites>\n"));
    }
}
