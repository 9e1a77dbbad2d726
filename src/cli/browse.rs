//! Read-only commands: sagas, snapshots, diffs, time travel, replay history.

use clap::Args;
use serde_json::{json, Value};

use super::filter::FilterArgs;
use super::output::{self, emit, emit_json, emit_jsonl, note, warn_bad, Format, Table};
use super::{parse_time, CliError, Context, Exit};
use crate::model::{short_id, Timestamp};
use crate::replay::{self, diff, SnapshotRef};
use crate::store::{Order, SagaCursor, SagaPageRequest, SnapshotQuery};

#[derive(Debug, Args)]
pub struct SagasListArgs {
    /// At most this many sagas (one page).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Continue after this cursor (printed at the end of the previous page).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Every matching saga, page after page.
    #[arg(long, conflicts_with_all = ["limit", "after"])]
    pub all: bool,
    /// Also print how many sagas match.
    #[arg(long)]
    pub count: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

fn encode_cursor(c: &SagaCursor) -> String {
    format!("{}~{}", c.last_at.as_micros(), c.saga_id)
}

fn decode_cursor(s: &str) -> Result<SagaCursor, CliError> {
    let bad = || {
        CliError::usage(format!(
            "--after: {s:?} is not a cursor printed by `sagas list`"
        ))
    };
    let (us, id) = s.split_once('~').ok_or_else(bad)?;
    let last_at = us
        .parse()
        .ok()
        .and_then(Timestamp::from_micros)
        .ok_or_else(bad)?;
    Ok(SagaCursor {
        last_at,
        saga_id: id.to_string(),
    })
}

pub async fn sagas_list(ctx: &mut Context, a: SagasListArgs) -> Result<Exit, CliError> {
    let filter = a.filter.to_filter()?;
    let store = ctx.store().await?;
    let mut page_req = SagaPageRequest {
        limit: if a.all { 1000 } else { a.limit.max(1) },
        after: a.after.as_deref().map(decode_cursor).transpose()?,
    };
    let now = Timestamp::now();
    let mut all = Vec::new();
    let mut bad = Vec::new();
    let mut warning = None;
    let next = loop {
        let page = store.list_sagas(&filter, &page_req).await?;
        all.extend(page.sagas);
        bad.extend(page.bad);
        warning = warning.or(page.index_warning);
        match (a.all, page.next) {
            (true, Some(n)) => page_req.after = Some(n),
            (_, n) => break n,
        }
    };
    let total = if a.count {
        Some(store.count_sagas(&filter).await?)
    } else {
        None
    };
    if let Some(w) = &warning {
        note(&format!("warning: {w}"));
    }
    match a.format {
        Format::Json => emit_json(&json!({
            "sagas": all,
            "next_cursor": next.as_ref().map(encode_cursor),
            "total": total,
            "bad_entries": bad,
        })),
        Format::Jsonl => {
            for s in &all {
                emit_jsonl(s);
            }
        }
        Format::Table | Format::Text => {
            let mut t = Table::new(vec![
                "STATUS",
                "SAGA ID",
                "NAME",
                "LAST STEP",
                "SNAPS",
                "LAST ACTIVITY",
                "AGE",
            ]);
            for s in &all {
                t.row(vec![
                    output::status_cell(&s.latest_status),
                    s.saga_id.clone(),
                    s.saga_name.clone(),
                    format!("{} (#{})", s.latest_step, s.latest_step_index),
                    s.snapshot_count.to_string(),
                    output::time_cell(&s.last_at),
                    output::age(&s.last_at, &now),
                ]);
            }
            if t.is_empty() {
                note("no sagas match");
            } else {
                emit(&t.render());
            }
            if let Some(n) = total {
                note(&format!("{n} saga(s) match"));
            }
            if let Some(c) = &next {
                note(&format!("more: --after {}", encode_cursor(c)));
            }
        }
    }
    warn_bad(&bad);
    Ok(Exit::Ok)
}

#[derive(Debug, Args)]
pub struct SagaShowArgs {
    /// Saga id or unique id prefix.
    pub saga: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

pub async fn saga_show(ctx: &mut Context, a: SagaShowArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    let s = replay::find_saga(store.as_ref(), &a.saga).await?;
    match a.format {
        Format::Json | Format::Jsonl => emit_json(&s),
        _ => emit(&format!(
            "Saga ID:       {}\nName:          {}\nStatus:        {}\nLatest step:   {} (#{})\nSnapshots:     {}\nFirst:         {}\nLast:          {}\n",
            s.saga_id,
            s.saga_name,
            s.latest_status,
            s.latest_step,
            s.latest_step_index,
            s.snapshot_count,
            s.first_at,
            s.last_at
        )),
    }
    Ok(Exit::Ok)
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Saga id or unique id prefix.
    pub saga: String,
    /// Newest first.
    #[arg(long)]
    pub desc: bool,
    /// At most this many.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Created at or after this time.
    #[arg(long, allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Created at or before this time.
    #[arg(long, allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Table, JSON (sagaz field names) or JSON lines.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

/// Memory a page of `snapshots` may take, roughly: pages shrink for sagas
/// with big contexts (sagaz contexts of 10 MB exist) and grow for small ones.
const SNAPSHOT_PAGE_BUDGET: usize = 32 * 1024 * 1024;
const SNAPSHOT_PAGE_MAX: usize = 500;

/// `snapshots`: pages through the saga and prints as it goes, holding one
/// page of snapshots (and the previous context, for the change column) at
/// a time, never the whole saga.
pub async fn snapshots(ctx: &mut Context, a: SnapshotsArgs) -> Result<Exit, CliError> {
    let mut q = SnapshotQuery {
        order: if a.desc { Order::Desc } else { Order::Asc },
        limit: None,
        since: a
            .since
            .as_deref()
            .map(|v| parse_time("--since", v))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|v| parse_time("--until", v))
            .transpose()?,
        after: None,
    };
    let store = ctx.store().await?;
    let saga = replay::find_saga(store.as_ref(), &a.saga).await?;
    let mut remaining = a.limit.unwrap_or(usize::MAX);
    // Small first: the page after it is sized by what this one held.
    let mut page_size = 2usize;
    let mut bad: Vec<crate::store::BadEntry> = Vec::new();
    let mut seen_bad = std::collections::HashSet::new();
    let mut shown = 0usize;
    let mut emitted = 0usize;
    let mut table = Table::new(vec![
        "#",
        "CREATED",
        "STEP",
        "IDX",
        "STATUS",
        "SNAPSHOT ID",
        "CONTEXT",
    ]);
    let mut prev: Option<Value> = None;
    if a.format == Format::Json {
        output::emit_raw(&format!(
            "{{\n  \"saga_id\": {},\n  \"saga_name\": {},\n  \"snapshots\": [",
            Value::String(saga.saga_id.clone()),
            Value::String(saga.saga_name.clone())
        ));
    }
    // Numbers are positions in the saga's timeline, unreadable entries
    // included (shown in place, as the TUI shows them), so `#7` here is
    // `7` for `diff` and `--step` too.
    while remaining > 0 {
        q.limit = Some(page_size.min(remaining));
        let page = store.list_snapshots(&saga.saga_id, &q).await?;
        let bytes: usize = page
            .items
            .iter()
            .map(|s| crate::model::context_bytes(&s.context).max(256))
            .sum();
        if !page.items.is_empty() {
            let per = (bytes / page.items.len()).max(1);
            page_size = (SNAPSHOT_PAGE_BUDGET / per).clamp(1, SNAPSHOT_PAGE_MAX);
        }
        for e in page.in_order() {
            let s = match e {
                Ok(s) => s,
                Err(b) => {
                    // A backend may report an index problem with every page.
                    if seen_bad.insert((b.key.clone(), b.error.clone())) {
                        bad.push(b.clone());
                        if matches!(a.format, Format::Table | Format::Text) {
                            table.row(vec![
                                shown.to_string(),
                                "?".into(),
                                "(unreadable)".into(),
                                String::new(),
                                "unreadable".into(),
                                b.key.clone(),
                                b.error.clone(),
                            ]);
                        }
                        shown += 1;
                    }
                    continue;
                }
            };
            if remaining == 0 {
                break;
            }
            remaining -= 1;
            match a.format {
                Format::Json => {
                    let text = serde_json::to_string_pretty(s).unwrap_or_default();
                    let sep = if emitted == 0 { "" } else { "," };
                    output::emit_raw(&format!("{sep}\n    {}", text.replace('\n', "\n    ")));
                }
                Format::Jsonl => emit_jsonl(s),
                Format::Table | Format::Text => {
                    let keys = s.context.len();
                    let context = Value::Object(s.context.clone());
                    let changed = match &prev {
                        None => format!("{keys} keys"),
                        Some(p) => {
                            let n = diff::structural_diff(p, &context).len();
                            if n == 0 {
                                "unchanged".into()
                            } else {
                                format!("{n} change(s)")
                            }
                        }
                    };
                    table.row(vec![
                        shown.to_string(),
                        output::time_cell(&s.created_at),
                        s.step_name.clone(),
                        s.step_index.to_string(),
                        output::status_cell(&s.status),
                        s.snapshot_id.clone(),
                        changed,
                    ]);
                    prev = Some(context);
                }
            }
            shown += 1;
            emitted += 1;
        }
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    match a.format {
        Format::Json => {
            let bad_json = serde_json::to_string_pretty(&bad).unwrap_or_default();
            output::emit_raw(&format!(
                "{}],\n  \"bad_entries\": {}\n}}\n",
                if emitted == 0 { "" } else { "\n  " },
                bad_json.replace('\n', "\n  ")
            ));
        }
        Format::Jsonl => {}
        Format::Table | Format::Text => {
            // Rows are a few dozen bytes each; the contexts behind them are
            // gone by now. Columns line up only once every row is known.
            note(&format!(
                "{} {} ({}) — {shown} snapshot(s)",
                saga.saga_name, saga.saga_id, saga.latest_status,
            ));
            emit(&table.render());
        }
    }
    warn_bad(&bad);
    Ok(if bad.is_empty() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Saga id or unique id prefix.
    pub saga: String,
    /// The "before" snapshot: index (0 first, -1 last), snapshot id, step name or time.
    #[arg(allow_negative_numbers = true)]
    pub a: String,
    /// The "after" snapshot, same forms.
    #[arg(allow_negative_numbers = true)]
    pub b: String,
    /// Take `b` from this other saga (e.g. a replay against its original).
    #[arg(long, value_name = "SAGA")]
    pub other_saga: Option<String>,
    /// text: unified diff of the contexts, then the snapshot fields that changed (status,
    /// error, compensated_steps); paths: one line per changed JSON path or field; json: both.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Paths,
    Json,
}

pub async fn diff(ctx: &mut Context, a: DiffArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    let saga = replay::find_saga(store.as_ref(), &a.saga).await?;
    let other = match &a.other_saga {
        Some(o) => replay::find_saga(store.as_ref(), o).await?,
        None => saga.clone(),
    };
    let ra: SnapshotRef = a.a.parse().unwrap_or(SnapshotRef::Index(0));
    let rb: SnapshotRef = a.b.parse().unwrap_or(SnapshotRef::Index(-1));
    let mut bad = Vec::new();
    let sa = replay::resolve_snapshot_noting(store.as_ref(), &saga.saga_id, &ra, &mut bad).await?;
    let sb = replay::resolve_snapshot_noting(store.as_ref(), &other.saga_id, &rb, &mut bad).await?;
    let (va, vb) = (
        Value::Object(sa.context.clone()),
        Value::Object(sb.context.clone()),
    );
    let label = |s: &crate::model::Snapshot| {
        format!(
            "{}@{}#{} {}",
            short_id(&s.saga_id),
            s.step_name,
            s.step_index,
            s.created_at
        )
    };
    let changes = diff::structural_diff(&va, &vb);
    // Status, error and compensated steps live beside the context: a
    // rollback changes them and often nothing in the context.
    let fields = diff::snapshot_field_changes(&sa, &sb);
    let line = |c: &diff::PathChange| format!("{}\n", c.line());
    match a.format {
        DiffFormat::Text => {
            let u = diff::unified_diff(&va, &vb, (&label(&sa), &label(&sb)));
            if u.is_empty() {
                note("contexts are equal");
            } else {
                emit(&u);
            }
            // The lines above show masks; say which values changed.
            let masked: Vec<_> = changes.iter().filter(|c| c.is_masked()).collect();
            if !masked.is_empty() {
                emit("masked values:\n");
                for c in masked {
                    emit(&line(c));
                }
            }
            if !fields.is_empty() {
                emit("snapshot fields:\n");
                for c in &fields {
                    emit(&line(c));
                }
            }
        }
        DiffFormat::Paths => {
            for c in changes.iter().chain(&fields) {
                emit(&line(c));
            }
            if changes.is_empty() {
                note("contexts are equal");
            }
        }
        DiffFormat::Json => emit_json(&diff::diff_json(&sa, &sb)),
    }
    // Entries that could not be read shift what an index means: name them
    // and say the diff may not be between the snapshots meant.
    warn_bad(&bad);
    Ok(if bad.is_empty() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

#[derive(Debug, Args)]
pub struct TimeTravelArgs {
    /// Saga id or unique id prefix.
    pub saga_id: String,
    /// The time to ask about (ISO 8601, or -2h etc.).
    #[arg(
        long,
        allow_hyphen_values = true,
        short = 't',
        required_unless_present = "step",
        conflicts_with = "step"
    )]
    pub at: Option<String>,
    /// Or the state at a step: index (0 first, -1 last), step name or snapshot id.
    #[arg(long, allow_negative_numbers = true)]
    pub step: Option<String>,
    /// One context key (or dotted path) instead of the whole state.
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

pub async fn time_travel(ctx: &mut Context, a: TimeTravelArgs) -> Result<Exit, CliError> {
    // Validate input before touching the store.
    let at = a.at.as_deref().map(|v| parse_time("--at", v)).transpose()?;
    let store = ctx.store().await?;
    let saga = replay::find_saga(store.as_ref(), &a.saga_id).await?;
    let state = match (at, &a.step) {
        (Some(at), _) => replay::state_at(store.as_ref(), &saga.saga_id, at).await?,
        (None, Some(step)) => {
            let r: SnapshotRef = step.parse().unwrap_or(SnapshotRef::Step(step.clone()));
            replay::state_at_step(store.as_ref(), &saga.saga_id, &r).await?
        }
        (None, None) => return Err(CliError::usage("give --at TIME or --step STEP")),
    };
    if let Some(key) = &a.key {
        let value = replay::time_travel::lookup(&state.context, key).cloned();
        match a.format {
            Format::Json | Format::Jsonl => emit_json(&json!({ key: value })),
            _ => emit(&format!(
                "{key}: {}\n",
                value
                    .as_ref()
                    .map(display_value)
                    .unwrap_or_else(|| "(not set)".into())
            )),
        }
        return Ok(if value.is_some() {
            Exit::Ok
        } else {
            Exit::NotFound
        });
    }
    match a.format {
        Format::Json | Format::Jsonl => emit_json(&state),
        Format::Table => {
            let mut t = Table::new(vec!["FIELD", "VALUE"]);
            t.row(vec!["Saga ID".into(), state.saga_id.clone()]);
            t.row(vec!["Saga Name".into(), state.saga_name.clone()]);
            t.row(vec!["As of".into(), state.timestamp.to_string()]);
            t.row(vec![
                "Snapshot".into(),
                format!("{} ({})", state.snapshot_id, state.snapshot_created_at),
            ]);
            t.row(vec!["Status".into(), state.status.to_string()]);
            t.row(vec!["Current Step".into(), state.current_step.clone()]);
            t.row(vec!["Step Index".into(), state.step_index.to_string()]);
            t.row(vec![
                "Completed Steps".into(),
                join_or_none(&state.completed_steps),
            ]);
            for (k, v) in &state.context {
                t.row(vec![format!("context.{k}"), display_value(v)]);
            }
            emit(&t.render());
        }
        Format::Text => {
            let mut s = format!(
                "Saga ID: {}\nSaga Name: {}\nAs of: {}\nSnapshot: {} (taken {})\nStatus: {}\nCurrent Step: {}\nStep Index: {}\nCompleted Steps: {}\n\nContext:\n",
                state.saga_id,
                state.saga_name,
                state.timestamp,
                state.snapshot_id,
                state.snapshot_created_at,
                state.status,
                state.current_step,
                state.step_index,
                join_or_none(&state.completed_steps)
            );
            for (k, v) in &state.context {
                s.push_str(&format!("  {k}: {}\n", display_value(v)));
            }
            emit(&s);
        }
    }
    Ok(Exit::Ok)
}

fn join_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "None".into()
    } else {
        v.join(", ")
    }
}

/// A context value on one line (a string's newlines and controls escaped).
fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => output::printable_line(s).into_owned(),
        other => other.to_string(),
    }
}

#[derive(Debug, Args)]
pub struct ListChangesArgs {
    /// Saga id or unique id prefix.
    pub saga_id: String,
    /// Only changes at or after this time.
    #[arg(long, short = 'a', allow_hyphen_values = true)]
    pub after: Option<String>,
    /// Only changes at or before this time.
    #[arg(long, short = 'b', allow_hyphen_values = true)]
    pub before: Option<String>,
    /// At most this many, counted from the start of the range.
    #[arg(long, short = 'l', default_value_t = 100)]
    pub limit: usize,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

pub async fn list_changes(ctx: &mut Context, a: ListChangesArgs) -> Result<Exit, CliError> {
    let after = a
        .after
        .as_deref()
        .map(|v| parse_time("--after", v))
        .transpose()?;
    let before = a
        .before
        .as_deref()
        .map(|v| parse_time("--before", v))
        .transpose()?;
    let store = ctx.store().await?;
    let saga = replay::find_saga(store.as_ref(), &a.saga_id).await?;
    let listing =
        replay::changes(store.as_ref(), &saga.saga_id, after, before, Some(a.limit)).await?;
    match a.format {
        Format::Json => emit_json(
            &json!({"saga_id": saga.saga_id, "changes": listing.items, "bad_entries": listing.bad}),
        ),
        Format::Jsonl => {
            for c in &listing.items {
                emit_jsonl(c);
            }
        }
        _ => {
            let mut t = Table::new(vec!["CREATED", "STEP", "IDX", "STATUS", "CHANGED KEYS"]);
            for c in &listing.items {
                t.row(vec![
                    output::time_cell(&c.created_at),
                    c.step_name.clone(),
                    c.step_index.to_string(),
                    output::status_cell(&c.status),
                    c.changed_keys.join(", "),
                ]);
            }
            if t.is_empty() {
                note("no snapshots in that range");
            } else {
                emit(&t.render());
            }
        }
    }
    warn_bad(&listing.bad);
    Ok(Exit::Ok)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Saga id or unique id prefix (the original saga).
    pub saga_id: String,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

pub async fn history(ctx: &mut Context, a: HistoryArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    // A replay log may exist for a saga whose snapshots expired: accept the
    // id as typed when no saga matches.
    let saga_id = match replay::find_saga(store.as_ref(), &a.saga_id).await {
        Ok(s) => s.saga_id,
        Err(replay::FindSagaError::NotFound(_)) => a.saga_id.clone(),
        Err(e) => return Err(e.into()),
    };
    let listing = store.list_replays(&saga_id, Some(a.limit)).await?;
    match a.format {
        Format::Json => emit_json(
            &json!({"saga_id": saga_id, "replays": listing.items, "bad_entries": listing.bad}),
        ),
        Format::Jsonl => {
            for r in &listing.items {
                emit_jsonl(r);
            }
        }
        _ => {
            let mut t = Table::new(vec![
                "STARTED",
                "KIND",
                "STATUS",
                "FROM STEP",
                "NEW SAGA",
                "BY",
                "REASON",
                "OVERRIDE",
            ]);
            for r in &listing.items {
                t.row(vec![
                    output::time_cell(&r.created_at),
                    if r.is_dry_run() {
                        "dry run".into()
                    } else {
                        "replay".into()
                    },
                    match (&r.completed_at, r.replay_status.as_str()) {
                        (None, "running") => "unfinished".into(),
                        _ => r.replay_status.to_string(),
                    },
                    r.checkpoint_step.clone(),
                    short_id(&r.new_saga_id).to_string(),
                    r.initiated_by.clone(),
                    r.reason().unwrap_or("").to_string(),
                    r.context_override
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                ]);
            }
            if t.is_empty() {
                note(&format!("no replays recorded for {saga_id}"));
            } else {
                emit(&t.render());
            }
        }
    }
    warn_bad(&listing.bad);
    Ok(Exit::Ok)
}

#[derive(Debug, Args)]
pub struct WhereChangedArgs {
    /// Saga id or unique id prefix.
    pub saga: String,
    /// A path into the context: `customer.email`, `$.items[2].sku`,
    /// `$["odd key"]` (as the TUI's detail pane shows it).
    pub path: String,
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

/// `where-changed`: the snapshots where the value at a path changed,
/// oldest first, with what it was before and after.
pub async fn where_changed(ctx: &mut Context, a: WhereChangedArgs) -> Result<Exit, CliError> {
    let path = replay::parse_path(&a.path).map_err(|e| CliError::usage(e.to_string()))?;
    let label = replay::path_label(&path);
    let store = ctx.store().await?;
    let saga = replay::find_saga(store.as_ref(), &a.saga).await?;
    let found = replay::changes_at_path(store.as_ref(), &saga.saga_id, &path).await?;
    match a.format {
        Format::Json => emit_json(&json!({
            "saga_id": saga.saga_id,
            "path": label,
            "changes": found.changes,
            "bad_entries": found.bad_entries,
        })),
        Format::Jsonl => {
            for c in &found.changes {
                emit_jsonl(c);
            }
        }
        Format::Table | Format::Text => {
            let shown = |v: &Option<Value>| match v {
                None => "(absent)".to_string(),
                Some(v) => display_value(v),
            };
            let change = |c: &replay::ValueChange| {
                let masked = [&c.old, &c.new]
                    .into_iter()
                    .flatten()
                    .any(crate::compliance::mask::is_masked);
                if masked {
                    "changed (masked)".to_string()
                } else {
                    format!("{} → {}", shown(&c.old), shown(&c.new))
                }
            };
            let mut t = Table::new(vec!["#", "CREATED", "STEP", "STATUS", "CHANGE"]);
            for c in &found.changes {
                t.row(vec![
                    c.index.to_string(),
                    output::time_cell(&c.created_at),
                    c.step_name.clone(),
                    output::status_cell(&c.status),
                    change(c),
                ]);
            }
            if t.is_empty() {
                note(&format!(
                    "{label} is absent in every snapshot of {}",
                    saga.saga_id
                ));
            } else {
                note(&format!(
                    "{label} in {} {} — {} change(s)",
                    saga.saga_name,
                    saga.saga_id,
                    found.changes.len()
                ));
                emit(&t.render());
            }
        }
    }
    warn_bad(&found.bad_entries);
    Ok(Exit::Ok)
}
