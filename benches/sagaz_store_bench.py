"""Measures sagaz 1.5.0's own snapshot storage classes with the operations
and output shape of `sagascope bench store --json`, so both can be compared
on the same server in one run (see compare_stores.sh).

  python sagaz_store_bench.py CONFIG_JSON [--sagas 10] [--snapshots 120] [--ops 300] [--context-bytes 1024]

CONFIG_JSON is the same as tests/interop/sagaz_interop.py takes.
Operations: save, get, list-100 (list_snapshots limit=100), latest-for-step
(get_latest_snapshot before_step), state-at-time (SagaTimeTravel.get_state_at
at a random snapshot's time; "wrong" counts answers that are not that
snapshot: sagaz only sees a saga's newest 100 snapshots).
"""

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from sagaz_interop import make_storage, maybe_init, prepare  # noqa: E402

from sagaz.core.replay import SagaSnapshot  # noqa: E402
from sagaz.core.replay.time_travel import SagaTimeTravel  # noqa: E402

logging.disable(logging.CRITICAL)
STEPS = ["reserve_inventory", "charge_payment", "ship_order", "notify_customer"]


def snapshot(saga_id, name, i, at, ctx_bytes):
    s = SagaSnapshot.create(
        saga_id=saga_id,
        saga_name=name,
        step_name=STEPS[i % len(STEPS)],
        step_index=i,
        status="executing",
        context={"order_id": f"ord-{i}", "i": i, "payload": "x" * max(0, ctx_bytes - 40)},
        completed_steps=STEPS[: i % len(STEPS)],
        retention_until=at + timedelta(days=30),
    )
    s.created_at = at
    return s


def summarize(name, samples, extra=None):
    samples_ms = sorted(x * 1000 for x in samples)
    total = sum(samples)
    out = {
        "name": name,
        "n": len(samples),
        "ops_per_sec": len(samples) / total if total else 0.0,
        "p50_ms": samples_ms[round((len(samples_ms) - 1) * 0.5)],
        "p99_ms": samples_ms[round((len(samples_ms) - 1) * 0.99)],
    }
    out.update(extra or {})
    return out


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--sagas", type=int, default=10)
    ap.add_argument("--snapshots", type=int, default=120)
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--context-bytes", type=int, default=1024)
    a = ap.parse_args()
    cfg = json.loads(a.config)
    await prepare(cfg)
    storage = make_storage(cfg)
    await maybe_init(storage)
    name = "sagazbench-" + uuid.uuid4().hex[:8]
    start = datetime.now(UTC) - timedelta(hours=1)
    saga_ids = [uuid.uuid4() for _ in range(a.sagas)]
    all_snaps = []
    for s_i, sid in enumerate(saga_ids):
        for i in range(a.snapshots):
            snap = snapshot(sid, name, i, start + timedelta(milliseconds=s_i * a.snapshots + i), a.context_bytes)
            await storage.save_snapshot(snap)
            all_snaps.append(snap)
    rnd = random.Random(7)
    ops = []

    samples = []
    for i in range(a.ops):
        snap = snapshot(saga_ids[i % len(saga_ids)], name, a.snapshots + i, datetime.now(UTC), a.context_bytes)
        t = time.perf_counter()
        await storage.save_snapshot(snap)
        samples.append(time.perf_counter() - t)
    ops.append(summarize("save", samples))

    samples = []
    for _ in range(a.ops):
        s = rnd.choice(all_snaps)
        t = time.perf_counter()
        got = await storage.get_snapshot(s.snapshot_id)
        samples.append(time.perf_counter() - t)
        assert got is not None
    ops.append(summarize("get", samples))

    samples = []
    for _ in range(a.ops):
        sid = rnd.choice(saga_ids)
        t = time.perf_counter()
        got = await storage.list_snapshots(sid, limit=100)
        samples.append(time.perf_counter() - t)
        assert len(got) == 100, len(got)
    ops.append(summarize("list-100", samples))

    samples = []
    for _ in range(a.ops):
        sid = rnd.choice(saga_ids)
        step = rnd.choice(STEPS)
        t = time.perf_counter()
        got = await storage.get_latest_snapshot(sid, before_step=step)
        samples.append(time.perf_counter() - t)
        assert got is not None
    ops.append(summarize("latest-for-step", samples))

    samples = []
    wrong = 0
    for _ in range(a.ops):
        s = rnd.choice(all_snaps)
        tt = SagaTimeTravel(saga_id=s.saga_id, snapshot_storage=storage)
        t = time.perf_counter()
        state = await tt.get_state_at(s.created_at)
        samples.append(time.perf_counter() - t)
        if state is None or state.step_index != s.step_index:
            wrong += 1
    ops.append(summarize("state-at-time", samples, {"wrong_answers": wrong}))

    for sid in saga_ids:
        delete = getattr(storage, "delete_saga_snapshots", None) or getattr(storage, "delete_snapshots", None)
        if delete is not None:
            try:
                await delete(sid)
            except Exception:
                pass
    if hasattr(storage, "close"):
        await storage.close()
    print(
        json.dumps(
            {
                "tool": "sagaz",
                "backend": cfg["backend"],
                "sagas": a.sagas,
                "snapshots_per_saga": a.snapshots,
                "context_bytes": a.context_bytes,
                "operations": ops,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
