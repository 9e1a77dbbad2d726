//! Moving sagas without losing or inventing any: `export`/`import` bundles
//! that are cut short, not bundles at all, or collide with what the store
//! holds; `migrate --verify` checked by a pass of its own; `run --saga-id`
//! onto an existing saga. Bad input gets a one-line error and loses nothing.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use sagascope::bundle::{self, verify::verify_copy, BundleWriter, Record};
use sagascope::model::{ReplayLog, ReplayStatus, SagaSummary, Snapshot, Timestamp};
use sagascope::store::{
    self, Capabilities, Health, Listing, LockOutcome, OpenOptions, SagaFilter, SagaPage,
    SagaPageRequest, SnapshotQuery, SnapshotStore, StoreResult, StoreUrl,
};

const BIN: &str = env!("CARGO_BIN_EXE_sagascope");

/// One test's private world: config and data dirs, and a store URL.
struct World {
    dir: tempfile::TempDir,
    store: String,
}

impl World {
    fn sqlite() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}/store.db", dir.path().display());
        World { dir, store }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A second SQLite store in the same world.
    fn other_store(&self, name: &str) -> String {
        format!("sqlite://{}", self.path(name).display())
    }

    fn cmd_on(&self, store: &str, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--store").arg(store).args(args);
        common::isolate(&mut c, self.dir.path(), "test-oncall").env("SAGASCOPE_LOG", "off");
        c
    }

    fn run_on(&self, store: &str, args: &[&str]) -> Output {
        self.cmd_on(store, args).output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_on(&self.store, args)
    }

    fn ok_on(&self, store: &str, args: &[&str]) -> Output {
        let o = self.run_on(store, args);
        assert!(
            o.status.success(),
            "sagascope {args:?} failed ({:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
        o
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.ok_on(&self.store, args)
    }

    /// How many sagas a store lists; 0 for a SQLite file that was never
    /// created (a refused import does not even open the store).
    fn saga_count(&self, store: &str) -> u64 {
        if let Some(p) = store.strip_prefix("sqlite://") {
            if !Path::new(p).exists() {
                return 0;
            }
        }
        let o = self.ok_on(
            store,
            &["sagas", "list", "--all", "--count", "--format", "json"],
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["total"].as_u64().unwrap()
    }

    fn export(&self, store: &str, name: &str) -> PathBuf {
        let p = self.path(name);
        self.ok_on(store, &["export", "--all", "-o", p.to_str().unwrap()]);
        p
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a one-line error with this exit code that contains `needle`.
fn refused(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line, got:\n{err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}

/// Rewrites a bundle through the library (a valid end line), changing
/// records with `edit` and appending `extra`.
fn rewrite(from: &Path, to: &Path, edit: impl Fn(&mut Record), extra: Vec<Record>) {
    let r = std::io::BufReader::new(std::fs::File::open(from).unwrap());
    let mut w = BundleWriter::new(std::fs::File::create(to).unwrap()).unwrap();
    let all = bundle::records(r)
        .map(Result::unwrap)
        .chain(extra)
        .map(|mut rec| {
            edit(&mut rec);
            rec
        });
    for rec in all {
        match rec {
            Record::Snapshot(s) => w.write_snapshot(&s).unwrap(),
            Record::Replay(r) => w.write_replay(&r).unwrap(),
        }
    }
    w.finish().unwrap();
}

fn a_replay(original: &str) -> ReplayLog {
    ReplayLog {
        replay_id: uuid::Uuid::new_v4().to_string(),
        original_saga_id: original.to_string(),
        new_saga_id: uuid::Uuid::new_v4().to_string(),
        checkpoint_step: "charge_payment".into(),
        replay_status: ReplayStatus::Success,
        initiated_by: "alice".into(),
        context_override: Some(json!({"payment_token": "tok_valid"})),
        error_message: None,
        created_at: Timestamp::parse("2026-02-02T00:00:00.123456Z").unwrap(),
        completed_at: Some(Timestamp::parse("2026-02-02T00:00:01Z").unwrap()),
        extra: serde_json::Map::new(),
    }
}

#[test]
fn a_bundle_cut_short_by_a_killed_export_is_refused_and_nothing_is_written() {
    let w = World::sqlite();
    w.ok(&["dev", "seed", "--sagas", "20", "--snapshots", "5"]);
    let full = std::fs::read(w.export(&w.store, "full.jsonl")).unwrap();
    let text = String::from_utf8(full.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 100 + 1, "header, 100 snapshots, end line");
    // Cut where an export killed between two writes leaves it: at a line
    // boundary (every line complete), and in the middle of a line.
    let at_line = lines[..60].join("\n") + "\n";
    let mid_line = &full[..full.len() / 2];
    for (n, (what, bytes)) in [("at a line", at_line.as_bytes()), ("mid-line", mid_line)]
        .into_iter()
        .enumerate()
    {
        let cut = w.path("cut.jsonl");
        std::fs::write(&cut, bytes).unwrap();
        let dest = w.other_store(&format!("dest-{n}.db"));
        let o = w.run_on(&dest, &["import", cut.to_str().unwrap()]);
        refused(&o, 2, "nothing was imported");
        assert_eq!(w.saga_count(&dest), 0, "{what}: nothing written");
        // The same through stdin.
        let mut child = w
            .cmd_on(&dest, &["import", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let o = child.wait_with_output().unwrap();
        refused(&o, 2, "nothing was imported");
        assert_eq!(w.saga_count(&dest), 0, "{what} (stdin): nothing written");
    }
    // The whole bundle through stdin imports.
    let dest = w.other_store("dest-whole.db");
    let mut child = w
        .cmd_on(&dest, &["import"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&full).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(w.saga_count(&dest), 20);
}

#[test]
fn a_file_that_is_not_a_bundle_is_named_as_such() {
    let w = World::sqlite();
    let passwd = w.path("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:\n").unwrap();
    let o = w.run(&["import", passwd.to_str().unwrap()]);
    refused(&o, 2, "not a sagascope bundle");
    let empty = w.path("empty");
    std::fs::write(&empty, "").unwrap();
    refused(
        &w.run(&["import", empty.to_str().unwrap()]),
        2,
        "not a sagascope bundle",
    );
    assert_eq!(w.saga_count(&w.store), 0);
}

#[test]
fn a_version_1_bundle_needs_allow_unverified() {
    let w = World::sqlite();
    let snap = common::snap(&common::saga_id(), 0, 0);
    let v1 = w.path("v1.jsonl");
    std::fs::write(
        &v1,
        format!(
            "{}\n{}\n",
            json!({"sagascope_bundle": 1}),
            json!({"snapshot": snap.to_json()})
        ),
    )
    .unwrap();
    refused(
        &w.run(&["import", v1.to_str().unwrap()]),
        2,
        "--allow-unverified",
    );
    assert_eq!(w.saga_count(&w.store), 0);
    let o = w.ok(&["import", "--allow-unverified", v1.to_str().unwrap()]);
    assert!(stderr(&o).contains("cannot be checked"), "{}", stderr(&o));
    assert_eq!(w.saga_count(&w.store), 1);
}

#[test]
fn reimport_is_idempotent_and_different_content_under_an_existing_id_is_a_conflict() {
    let w = World::sqlite();
    w.ok(&["dev", "seed", "--sagas", "5", "--snapshots", "4"]);
    let seeded = w.export(&w.store, "seeded.jsonl");
    // One replay-log entry, so the bundle has both kinds of record.
    let first_saga = match bundle::records(std::io::BufReader::new(
        std::fs::File::open(&seeded).unwrap(),
    ))
    .next()
    {
        Some(Ok(Record::Snapshot(s))) => s.saga_id.clone(),
        other => panic!("{other:?}"),
    };
    let replay = a_replay(&first_saga);
    let one = w.path("one.jsonl");
    rewrite(
        &seeded,
        &one,
        |_| {},
        vec![Record::Replay(Box::new(replay.clone()))],
    );
    let dest = w.other_store("dest.db");
    w.ok_on(&dest, &["import", one.to_str().unwrap()]);
    let again = w.ok_on(&dest, &["import", one.to_str().unwrap()]);
    assert!(
        stderr(&again).contains("imported 0 snapshot(s) and 0 replay log entries (20 snapshot(s) and 1 replay log entry were already there)"),
        "{}",
        stderr(&again)
    );
    let before = std::fs::read(w.export(&dest, "before.jsonl")).unwrap();

    // Same ids, other content: one snapshot's context, the replay's
    // initiator and status. Plus a saga the store does not have.
    let changed_snap = std::cell::RefCell::new(None);
    let new_saga = common::saga_id();
    let two = w.path("two.jsonl");
    rewrite(
        &one,
        &two,
        |rec| match rec {
            Record::Snapshot(s) if changed_snap.borrow().is_none() => {
                s.context.insert("amount".into(), json!(999_999));
                *changed_snap.borrow_mut() = Some(s.snapshot_id.clone());
            }
            Record::Replay(r) => {
                r.initiated_by = "mallory".into();
                r.replay_status = ReplayStatus::Failed;
            }
            _ => {}
        },
        vec![Record::Snapshot(Box::new(common::snap(&new_saga, 0, 0)))],
    );
    let changed_snap = changed_snap.into_inner().unwrap();
    let o = w.run_on(&dest, &["import", two.to_str().unwrap()]);
    refused(
        &o,
        6,
        "2 record(s) exist in the store with different content",
    );
    assert!(stderr(&o).contains(&changed_snap), "{}", stderr(&o));
    assert!(stderr(&o).contains(&replay.replay_id), "{}", stderr(&o));
    let after = std::fs::read(w.export(&dest, "after.jsonl")).unwrap();
    assert!(before == after, "a refused import changes nothing");

    // Skip keeps the store's records and adds the new saga.
    let o = w.ok_on(
        &dest,
        &["import", "--on-conflict", "skip", two.to_str().unwrap()],
    );
    assert!(
        stderr(&o).contains("kept the store's version of 2"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.saga_count(&dest), 6);
    let history = w.ok_on(
        &dest,
        &["replay", "history", &first_saga, "--format", "json"],
    );
    let h: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(h["replays"][0]["initiated_by"], "alice");
    assert_eq!(h["replays"][0]["replay_status"], "success");

    // Replace is explicit.
    w.ok_on(
        &dest,
        &["import", "--on-conflict", "replace", two.to_str().unwrap()],
    );
    let history = w.ok_on(
        &dest,
        &["replay", "history", &first_saga, "--format", "json"],
    );
    let h: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(h["replays"][0]["initiated_by"], "mallory");
    let now = std::fs::read_to_string(w.export(&dest, "now.jsonl")).unwrap();
    let replaced = now
        .lines()
        .find(|l| l.contains(&changed_snap))
        .expect("the changed snapshot");
    assert!(replaced.contains("\"amount\":999999"), "{replaced}");
}

/// A definition whose first step appends a line to a file (a side effect
/// that can be counted).
fn counting_definition(w: &World) -> (PathBuf, PathBuf) {
    let effects = w.path("effects.log");
    let def = w.path("counting.toml");
    std::fs::write(
        &def,
        format!(
            r#"name = "CountingSaga"
snapshots = ["before_each_step", "after_each_step"]

[[steps]]
name = "charge_payment"
run = "cat >/dev/null; echo charged >> '{effects}'; echo '{{\"charged\": true}}'"

[[steps]]
name = "ship_order"
run = "cat >/dev/null; echo '{{\"shipped\": true}}'"
"#,
            effects = effects.display()
        ),
    )
    .unwrap();
    (def, effects)
}

#[test]
fn run_with_the_id_of_an_existing_saga_is_refused_before_any_step_runs() {
    let w = World::sqlite();
    let (def, effects) = counting_definition(&w);
    let id = common::saga_id();
    let args = [
        "run",
        "CountingSaga",
        "--saga-id",
        &id,
        "--definitions",
        def.to_str().unwrap(),
    ];
    w.ok(&args);
    let snaps = |w: &World| {
        let o = w.ok(&["snapshots", &id, "--format", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["snapshots"].as_array().unwrap().len()
    };
    assert_eq!(snaps(&w), 5);
    let o = w.run(&args);
    refused(&o, 6, &format!("saga {id} already exists (5 snapshots)"));
    assert_eq!(snaps(&w), 5, "the timeline is untouched");
    let effects = std::fs::read_to_string(effects).unwrap();
    assert_eq!(effects.lines().count(), 1, "no step ran the second time");
}

async fn open(url: &str) -> Arc<dyn SnapshotStore> {
    store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .unwrap()
}

/// Two SQLite stores holding the same 6 sagas of 3 snapshots, one with a
/// replay-log entry.
async fn same_data(dir: &Path) -> (Arc<dyn SnapshotStore>, Arc<dyn SnapshotStore>, Vec<String>) {
    let from = open(&format!("sqlite://{}/from.db", dir.display())).await;
    let to = open(&format!("sqlite://{}/to.db", dir.display())).await;
    let ids: Vec<String> = (0..6).map(|_| common::saga_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        let snaps: Vec<Snapshot> = (0..3)
            .map(|i| common::snap(id, i, n as i64 * 10_000 + i * 100))
            .collect();
        from.save_snapshots(&snaps).await.unwrap();
        to.save_snapshots(&snaps).await.unwrap();
    }
    let r = a_replay(&ids[0]);
    from.save_replay(&r).await.unwrap();
    to.save_replay(&r).await.unwrap();
    (from, to, ids)
}

#[tokio::test]
async fn verify_catches_a_destination_that_lacks_a_snapshot_a_saga_or_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to, ids) = same_data(dir.path()).await;
    let r = verify_copy(from.as_ref(), to.as_ref()).await.unwrap();
    assert!(r.verified(), "{r:?}");
    assert_eq!((r.source_sagas_counted, r.snapshots, r.replays), (6, 18, 1));

    // A snapshot missing.
    let victim = to
        .list_snapshots(&ids[2], &SnapshotQuery::all())
        .await
        .unwrap()
        .items[1]
        .snapshot_id
        .clone();
    assert!(to.delete_snapshot(&victim).await.unwrap());
    let r = verify_copy(from.as_ref(), to.as_ref()).await.unwrap();
    assert!(!r.verified());
    assert!(
        r.differences
            .iter()
            .any(|d| d.contains(&ids[2])
                && d.contains("destination has 2 snapshot(s), the source 3")),
        "{r:?}"
    );

    // A saga missing.
    to.delete_saga(&ids[4]).await.unwrap();
    let r = verify_copy(from.as_ref(), to.as_ref()).await.unwrap();
    assert!(
        r.differences
            .iter()
            .any(|d| d.contains("the destination has 5 saga(s), the source 6")),
        "{r:?}"
    );
    assert!(r.differences.iter().any(|d| d.contains(&ids[4])), "{r:?}");

    // Same counts, other content.
    let dir = tempfile::tempdir().unwrap();
    let (from, to, ids) = same_data(dir.path()).await;
    let mut s = to
        .list_snapshots(&ids[1], &SnapshotQuery::all())
        .await
        .unwrap()
        .items[0]
        .clone();
    s.context.insert("amount".into(), json!(1));
    to.save_snapshot(&s).await.unwrap();
    let r = verify_copy(from.as_ref(), to.as_ref()).await.unwrap();
    assert_eq!(
        r.differences,
        vec![format!("saga {}: the snapshots' digests differ", ids[1])]
    );
}

/// A store whose saga listing stops early, as a paging bug would make it,
/// while its count is right.
#[derive(Debug)]
struct ShortListing {
    inner: Arc<dyn SnapshotStore>,
    show: usize,
}

#[async_trait]
impl SnapshotStore for ShortListing {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn save_snapshot(&self, s: &Snapshot) -> StoreResult<()> {
        self.inner.save_snapshot(s).await
    }
    async fn get_snapshot(&self, id: &str) -> StoreResult<Option<Snapshot>> {
        self.inner.get_snapshot(id).await
    }
    async fn latest_snapshot(
        &self,
        saga: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        self.inner.latest_snapshot(saga, step).await
    }
    async fn snapshot_at(&self, saga: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
        self.inner.snapshot_at(saga, at).await
    }
    async fn list_snapshots(
        &self,
        saga: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        self.inner.list_snapshots(saga, q).await
    }
    async fn count_snapshots(&self, saga: &str) -> StoreResult<u64> {
        self.inner.count_snapshots(saga).await
    }
    async fn delete_snapshot(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_snapshot(id).await
    }
    async fn delete_saga(&self, saga: &str) -> StoreResult<u64> {
        self.inner.delete_saga(saga).await
    }
    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.inner.delete_expired(now).await
    }
    async fn save_replay(&self, l: &ReplayLog) -> StoreResult<()> {
        self.inner.save_replay(l).await
    }
    async fn get_replay(&self, id: &str) -> StoreResult<Option<ReplayLog>> {
        self.inner.get_replay(id).await
    }
    async fn list_replays(
        &self,
        saga: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        self.inner.list_replays(saga, limit).await
    }
    async fn list_sagas(&self, f: &SagaFilter, page: &SagaPageRequest) -> StoreResult<SagaPage> {
        // Everything in one page, cut to `show`, and no next page.
        let mut p = self
            .inner
            .list_sagas(
                f,
                &SagaPageRequest {
                    limit: 10_000,
                    after: page.after.clone(),
                },
            )
            .await?;
        p.sagas.truncate(self.show);
        p.next = None;
        Ok(p)
    }
    async fn saga_summary(&self, saga: &str) -> StoreResult<Option<SagaSummary>> {
        self.inner.saga_summary(saga).await
    }
    async fn count_sagas(&self, f: &SagaFilter) -> StoreResult<u64> {
        self.inner.count_sagas(f).await
    }
    async fn health(&self) -> StoreResult<Health> {
        self.inner.health().await
    }
    async fn try_lock(&self, name: &str, owner: &str, ttl: Duration) -> StoreResult<LockOutcome> {
        self.inner.try_lock(name, owner, ttl).await
    }
    async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()> {
        self.inner.unlock(name, owner).await
    }
}

#[tokio::test]
async fn verify_catches_a_source_whose_listing_disagrees_with_its_count() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to, _) = same_data(dir.path()).await;
    let short = ShortListing {
        inner: from,
        show: 4,
    };
    let r = verify_copy(&short, to.as_ref()).await.unwrap();
    assert!(!r.verified());
    assert_eq!((r.source_sagas_counted, r.source_sagas_listed), (6, 4));
    assert!(
        r.differences[0].contains("the source lists 4 saga(s) but counts 6"),
        "{r:?}"
    );
}

const REDIS: &str = "redis://127.0.0.1:6379";

#[test]
fn migrate_from_redis_with_1500_sagas_copies_all_and_verifies() {
    if !common::backend_available("redis", REDIS, common::tcp_open("127.0.0.1:6379")) {
        return;
    }
    let w = World::sqlite();
    let src = format!("{REDIS}/?prefix=t:{}:", common::unique_tag());
    w.ok_on(
        &src,
        &["dev", "seed", "--sagas", "1500", "--snapshots", "2"],
    );
    let dest = w.other_store("dest.db");
    let o = w.run(&["migrate", "--from", &src, "--to", &dest, "--verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("verified: 1500 sagas, 3000 snapshots, 0 replays, digests equal"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.saga_count(&dest), 1500);
}

/// The stores a re-import must recognise as holding the same data although
/// they keep it differently (JSONB reorders keys and drops `external_refs`;
/// Redis keeps zstd frames).
fn server_stores() -> Vec<(&'static str, String, &'static str)> {
    let tag = common::unique_tag();
    vec![
        (
            "postgres",
            format!("postgres://postgres@127.0.0.1:5432/test?schema=t_{tag}"),
            "127.0.0.1:5432",
        ),
        (
            "redis",
            format!("{REDIS}/?prefix=t:{tag}:"),
            "127.0.0.1:6379",
        ),
    ]
}

#[test]
fn reimport_and_verify_on_postgres_and_redis_see_equal_data_as_equal() {
    let w = World::sqlite();
    w.ok(&["dev", "seed", "--sagas", "6", "--snapshots", "3"]);
    let seeded = w.export(&w.store, "seeded.jsonl");
    let first_saga = match bundle::records(std::io::BufReader::new(
        std::fs::File::open(&seeded).unwrap(),
    ))
    .next()
    {
        Some(Ok(Record::Snapshot(s))) => s.saga_id.clone(),
        other => panic!("{other:?}"),
    };
    let one = w.path("one.jsonl");
    rewrite(
        &seeded,
        &one,
        |_| {},
        vec![Record::Replay(Box::new(a_replay(&first_saga)))],
    );
    // The source gets the replay too, so source and copies hold the same.
    w.ok(&["import", one.to_str().unwrap()]);
    for (backend, url, addr) in server_stores() {
        if !common::backend_available(backend, addr, common::tcp_open(addr)) {
            continue;
        }
        w.ok_on(&url, &["import", one.to_str().unwrap()]);
        let again = w.ok_on(&url, &["import", one.to_str().unwrap()]);
        assert!(
            stderr(&again).contains("imported 0 snapshot(s) and 0 replay log entries (18 snapshot(s) and 1 replay log entry were already there)"),
            "{backend}: {}",
            stderr(&again)
        );
        let o = w.ok(&["migrate", "--from", &w.store, "--to", &url, "--verify"]);
        assert!(
            stderr(&o).contains("verified: 6 sagas, 18 snapshots, 1 replays, digests equal"),
            "{backend}: {}",
            stderr(&o)
        );
        let o = w.ok(&[
            "migrate",
            "--from",
            &url,
            "--to",
            &w.other_store(&format!("{backend}.db")),
            "--verify",
        ]);
        assert!(
            stderr(&o).contains("verified: 6 sagas, 18 snapshots, 1 replays, digests equal"),
            "{backend}: {}",
            stderr(&o)
        );
    }
}
