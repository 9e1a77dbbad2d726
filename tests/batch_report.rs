//! `sagascope batch` reports, driving the built binary on real stores
//! (SQLite, and PostgreSQL when it answers): failures that differ only in
//! an order id or a timestamp are one group that keeps a real example, and
//! `--junit FILE` writes well-formed JUnit XML — one testcase per saga,
//! escaped error texts, counts that match the batch's own summary — for dry
//! runs and real runs.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use cli_world::{stderr, World, BIN};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The error the failing step prints: markup characters, a quote, an
/// order id and a timestamp that differ from saga to saga.
const PLANTED: &str = r#"card <tok> & "quoted" for order ORDER expired at 2026-11-30T04:MIN:41Z"#;

/// The planted failures, on the shared binary-driving world.
trait Plant {
    fn definition(&self) -> PathBuf;
    fn failed_sagas(&self, def: &Path, orders: &[&str]) -> PathBuf;
}

impl Plant for World {
    /// A definition whose `charge` step fails with [`PLANTED`] (the order
    /// and minute from the context) unless the context says `mode: ok`.
    fn definition(&self) -> PathBuf {
        let def = self.dir.path().join("plant_saga.toml");
        let error = PLANTED
            .replace('"', r#"\""#)
            .replace("ORDER", "$order")
            .replace("MIN", "$minute");
        let text = format!(
            r#"name = "PlantSaga"
snapshots = ["before_each_step", "on_failure", "on_completion"]

[[steps]]
name = "prepare"
run = "cat >/dev/null; echo '{{\"prepared\": true}}'"
compensate = "cat >/dev/null"

[[steps]]
name = "charge"
run = '''
input=$(cat)
case "$input" in
  *'"mode":"ok"'*) echo '{{"charged": true}}'; exit 0;;
esac
order=$(printf '%s' "$input" | sed -n 's/.*"order":"\([^"]*\)".*/\1/p')
minute=$(printf '%s' "$input" | sed -n 's/.*"minute":"\([^"]*\)".*/\1/p')
echo "{error}" >&2
exit 1
'''
"#
        );
        std::fs::write(&def, text).unwrap();
        def
    }

    /// Runs PlantSaga once per order so each fails at `charge`; returns
    /// the file listing their ids, for `--ids-from` (a failed replay makes
    /// another failed PlantSaga, so a filter would take those too).
    fn failed_sagas(&self, def: &Path, orders: &[&str]) -> PathBuf {
        let mut ids = String::new();
        for (n, order) in orders.iter().enumerate() {
            let ctx = format!(
                r#"{{"mode":"fail","order":"{order}","minute":"{}"}}"#,
                10 + n
            );
            let o = self.run(&[
                "run",
                "PlantSaga",
                "--context",
                &ctx,
                "--definitions",
                def.to_str().unwrap(),
                "--format",
                "json",
            ]);
            assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["status"], "rolled_back");
            ids += v["saga_id"].as_str().unwrap();
            ids.push('\n');
        }
        let path = self.dir.path().join("ids.txt");
        std::fs::write(&path, ids).unwrap();
        path
    }
}

/// The stores the report test runs on: SQLite always, PostgreSQL in a
/// schema of its own when it answers (CI requires it).
fn stores() -> Vec<(&'static str, World)> {
    let mut out = Vec::new();
    out.push(("sqlite", World::sqlite()));
    let pg = "postgres://postgres@127.0.0.1:5432/test";
    if common::backend_available("postgres", pg, common::tcp_open("127.0.0.1:5432")) {
        out.push((
            "postgres",
            World::with_store(&format!("{pg}?schema=t_{}", common::unique_tag())),
        ));
    }
    out
}

/// One element of a parsed JUnit document.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map_or_else(|| panic!("<{}> has no {name}", self.name), |(_, v)| v)
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn count(&self, name: &str) -> usize {
        self.attr(name).parse().unwrap()
    }
}

/// Resolves the five predefined entities and character references.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(';').expect("an entity ends with ;") + at;
        let entity = &rest[at + 1..end];
        out.push(match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n => {
                let code = match n.strip_prefix("#x") {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                    None => n
                        .strip_prefix('#')
                        .expect("a known entity")
                        .parse()
                        .unwrap(),
                };
                char::from_u32(code).unwrap()
            }
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Parses `xml` with a real XML tokenizer, checking that it is well formed
/// (one root, every element closed in order), and returns the root.
fn parse_xml(xml: &str) -> Element {
    let mut stack: Vec<Element> = vec![Element::default()];
    for token in xmlparser::Tokenizer::from(xml) {
        let token = token.unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{xml}"));
        match token {
            xmlparser::Token::ElementStart { local, .. } => stack.push(Element {
                name: local.to_string(),
                ..Element::default()
            }),
            xmlparser::Token::Attribute { local, value, .. } => stack
                .last_mut()
                .unwrap()
                .attrs
                .push((local.to_string(), unescape(&value))),
            xmlparser::Token::Text { text } => stack.last_mut().unwrap().text += &unescape(&text),
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Close(_, name) => {
                    let e = stack.pop().unwrap();
                    assert_eq!(e.name, name.as_str(), "closed in order");
                    stack.last_mut().unwrap().children.push(e);
                }
                xmlparser::ElementEnd::Empty => {
                    let e = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(e);
                }
            },
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "every element closed");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.pop().unwrap()
}

/// Runs a batch over the sagas in `ids` with `--report` and `--junit`;
/// returns the exit code, the JSON report and the JUnit root.
fn batch(w: &World, def: &Path, ids: &Path, extra: &[&str]) -> (Option<i32>, Value, Element) {
    let report = w.dir.path().join("report.json");
    let junit = w.dir.path().join("junit.xml");
    let mut args = vec![
        "batch",
        "--ids-from",
        ids.to_str().unwrap(),
        "--from-step",
        "charge",
        "--definitions",
        def.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = w.run(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    let last: Value = serde_json::from_str(out.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}\n{}", stderr(&o)));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["summary"]["total"], last["summary"]["total"]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    (o.status.code(), report, parse_xml(&xml))
}

/// The JUnit document says what the batch summary says: one testcase per
/// saga, failures and skips counted the same.
fn assert_junit_matches(backend: &str, root: &Element, report: &Value) {
    let s = &report["summary"];
    let n = |k: &str| s[k].as_u64().unwrap() as usize;
    let problems = n("failed") + n("locked") + n("abandoned") + n("errors");
    assert_eq!(root.name, "testsuites", "{backend}");
    let suite = root.child("testsuite").expect("a testsuite");
    for e in [root, suite] {
        assert_eq!(e.count("tests"), n("total"), "{backend}");
        assert_eq!(e.count("failures"), problems, "{backend}");
        assert_eq!(e.count("skipped"), n("skipped"), "{backend}");
    }
    let cases: Vec<&Element> = suite
        .children
        .iter()
        .filter(|c| c.name == "testcase")
        .collect();
    assert_eq!(cases.len(), n("total"), "{backend}: one testcase per saga");
    let failures = cases
        .iter()
        .filter(|c| c.child("failure").is_some())
        .count();
    let skipped = cases
        .iter()
        .filter(|c| c.child("skipped").is_some())
        .count();
    assert_eq!((failures, skipped), (problems, n("skipped")), "{backend}");
    // Each testcase is its saga: name = id, classname = saga name, and a
    // failure's type is the item's result.
    for item in report["items"].as_array().unwrap() {
        let id = item["saga_id"].as_str().unwrap();
        let case = cases
            .iter()
            .find(|c| c.attr("name") == id)
            .unwrap_or_else(|| panic!("{backend}: no testcase for {id}"));
        assert_eq!(case.attr("classname"), "PlantSaga", "{backend}");
        let secs: f64 = case.attr("time").parse().unwrap();
        assert!(secs >= 0.0, "{backend}");
        if let Some(f) = case.child("failure") {
            assert_eq!(
                f.attr("type"),
                item["result"].as_str().unwrap(),
                "{backend}"
            );
            assert_eq!(
                f.attr("message"),
                item["error"].as_str().unwrap(),
                "{backend}"
            );
        }
    }
}

#[test]
fn batch_groups_failures_by_kind_of_error_and_writes_junit_that_matches_its_summary() {
    let orders = ["ord-1011", "ord-1012", "ord-1013", "ord-1014"];
    for (backend, w) in stores() {
        let def = w.definition();
        let ids = w.failed_sagas(&def, &orders);

        // A dry run: every saga plans fine; the JUnit file says so too.
        let (code, report, root) = batch(&w, &def, &ids, &["--dry-run"]);
        assert_eq!(code, Some(0), "{backend}: {report}");
        assert_eq!(report["summary"]["ok"], 4, "{backend}: {report}");
        assert_junit_matches(backend, &root, &report);
        let suite = root.child("testsuite").unwrap();
        assert!(suite.attr("name").ends_with("(dry run)"), "{backend}");

        // The real run without a fix: the four errors differ in the order
        // and the timestamp, and are one group keeping a real example.
        let (code, report, root) = batch(&w, &def, &ids, &[]);
        assert_eq!(code, Some(1), "{backend}: {report}");
        let s = &report["summary"];
        assert_eq!(s["failed"], 4, "{backend}: {report}");
        let groups = s["failure_groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{backend}: one kind of error: {groups:?}");
        let g = &groups[0];
        assert_eq!(
            (g["count"].as_u64(), g["step"].as_str()),
            (Some(4), Some("charge"))
        );
        let example = g["example"].as_str().unwrap();
        let key = g["error"].as_str().unwrap();
        let real: Vec<String> = orders
            .iter()
            .enumerate()
            .map(|(n, o)| {
                PLANTED
                    .replace("ORDER", o)
                    .replace("MIN", &(10 + n).to_string())
            })
            .collect();
        assert!(
            real.iter().any(|r| example.contains(r.as_str())),
            "{backend}: the example is one saga's real error: {example:?}"
        );
        assert!(
            !orders.iter().any(|o| key.contains(o)) && !key.contains("2026-11-30"),
            "{backend}: the group's key names no order and no time: {key:?}"
        );
        assert!(
            key.contains(r#"card <tok> & "quoted" for order"#),
            "{backend}: {key:?}"
        );
        assert_junit_matches(backend, &root, &report);
        // The planted markup survives escaping: the parsed message is the
        // saga's error, character for character.
        let suite = root.child("testsuite").unwrap();
        let messages: Vec<&str> = suite
            .children
            .iter()
            .filter_map(|c| c.child("failure"))
            .map(|f| f.attr("message"))
            .collect();
        assert_eq!(messages.len(), 4, "{backend}");
        for r in &real {
            assert!(
                messages.iter().any(|m| m.contains(r.as_str())),
                "{backend}: {r:?} not among {messages:?}"
            );
        }

        // Fixed: all ok; then once more: all skipped as already replayed.
        let (code, report, root) = batch(&w, &def, &ids, &["--override", "mode=ok"]);
        assert_eq!(code, Some(0), "{backend}: {report}");
        assert_eq!(report["summary"]["ok"], 4, "{backend}: {report}");
        assert_junit_matches(backend, &root, &report);
        let (code, report, root) = batch(&w, &def, &ids, &["--override", "mode=ok"]);
        assert_eq!(code, Some(0), "{backend}: {report}");
        assert_eq!(report["summary"]["skipped"], 4, "{backend}: {report}");
        assert_junit_matches(backend, &root, &report);
        let skipped = root
            .child("testsuite")
            .unwrap()
            .children
            .iter()
            .filter_map(|c| c.child("skipped"))
            .count();
        assert_eq!(skipped, 4, "{backend}");
    }
}

#[test]
fn batch_help_documents_the_reports_and_the_exit_codes() {
    let o = Command::new(BIN)
        .args(["batch", "--help"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "--junit <FILE>",
        "--report <FILE>",
        "one testcase per saga",
        "Exit codes:",
        "0  every saga ok or skipped",
        "1  some saga failed",
    ] {
        assert!(
            help.contains(needle),
            "{needle:?} not in batch --help:\n{help}"
        );
    }
}
