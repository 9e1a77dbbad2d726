"""Interop harness: sagaz 1.5.0 on one side, sagascope on the other.

  python sagaz_interop.py write CONFIG_JSON OUT_JSON
      Runs real sagas with sagaz's own Saga class and snapshot storage into
      the store CONFIG names (some fail and are compensated; one is replayed
      by sagaz, one dry-run), then dumps what sagaz's storage class lists for
      every saga: {"sagas": {saga_id: [snapshot dicts, oldest first]},
      "replays": {original_saga_id: [replay dicts]}}.

  python sagaz_interop.py read CONFIG_JSON IDS_JSON OUT_JSON
      Reads the given saga ids back with sagaz's storage class (snapshots and
      replay logs) and dumps them the same way: the reverse direction, for
      data sagascope wrote.

CONFIG_JSON: {"backend": "redis"|"postgres"|"s3"|"fs", "compress": bool,
 plus per backend: redis: "url", "prefix"; postgres: "dsn", "schema";
 s3: "bucket", "prefix", "endpoint"; fs: "path"}.
"""

import asyncio
import json
import logging
import sys
import uuid

logging.disable(logging.CRITICAL)

from sagaz.core.replay import ReplayConfig, SnapshotStrategy
from sagaz.core.replay.saga_replay import SagaReplay
from sagaz.core.saga import Saga


def make_storage(cfg):
    backend = cfg["backend"]
    compress = bool(cfg.get("compress"))
    if backend == "redis":
        from sagaz.core.storage.backends.redis.snapshot import RedisSnapshotStorage

        return RedisSnapshotStorage(redis_url=cfg["url"], key_prefix=cfg["prefix"], enable_compression=compress)
    if backend == "postgres":
        from sagaz.core.storage.backends.postgresql.snapshot import PostgreSQLSnapshotStorage

        return PostgreSQLSnapshotStorage(
            cfg["dsn"], pool_min_size=1, pool_max_size=4, server_settings={"search_path": cfg["schema"]}
        )
    if backend == "s3":
        from sagaz.core.storage.backends.s3.snapshot import S3SnapshotStorage

        return S3SnapshotStorage(
            bucket_name=cfg["bucket"],
            prefix=cfg["prefix"],
            enable_compression=compress,
            endpoint_url=cfg["endpoint"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
    if backend == "fs":
        from sagaz.core.storage.backends.filesystem_snapshot import FilesystemSnapshotStorage

        return FilesystemSnapshotStorage(base_path=cfg["path"], enable_compression=compress)
    raise SystemExit(f"unknown backend {backend}")


async def prepare(cfg):
    """What sagaz expects to exist already: the PostgreSQL schema, the bucket."""
    if cfg["backend"] == "postgres":
        import asyncpg

        conn = await asyncpg.connect(cfg["dsn"])
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{cfg["schema"]}"')
        finally:
            await conn.close()
    elif cfg["backend"] == "s3":
        import aioboto3

        session = aioboto3.Session()
        async with session.client(
            "s3",
            endpoint_url=cfg["endpoint"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ) as s3:
            try:
                await s3.create_bucket(Bucket=cfg["bucket"])
            except Exception as e:  # already there (owned by us) is fine
                if "BucketAlreadyOwnedByYou" not in str(e) and "BucketAlreadyExists" not in str(e):
                    raise


async def maybe_init(storage):
    for name in ("initialize", "connect", "_ensure_initialized", "_get_pool"):
        fn = getattr(storage, name, None)
        if fn is not None:
            try:
                await fn()
            except TypeError:
                pass
            return


class PaymentDeclined(Exception):
    pass


def order_saga(storage, strategy, name="OrderSaga", steps=("reserve_inventory", "charge_payment", "ship_order")):
    saga = Saga(
        name=name,
        replay_config=ReplayConfig(enable_snapshots=True, snapshot_strategy=strategy),
        snapshot_storage=storage,
        retry_backoff_base=0.001,
    )
    return saga, steps


async def build(saga, steps):
    async def reserve(ctx):
        return {"reservation": "res-" + str(ctx.get("order_id")), "warehouse": "Zürich-2"}

    async def release(result, ctx):
        return None

    async def charge(ctx):
        if ctx.get("payment_token") == "expired":
            raise PaymentDeclined("payment token expired")
        return {"charge_id": "ch_" + str(ctx.get("order_id")), "amount": ctx.get("amount")}

    async def refund(result, ctx):
        return None

    async def ship(ctx):
        return {"tracking": "TRK-" + str(ctx.get("order_id")), "note": "📦 on its way"}

    fns = {
        "reserve_inventory": (reserve, release),
        "charge_payment": (charge, refund),
        "ship_order": (ship, None),
        "transform_données": (reserve, None),
    }
    for s in steps:
        action, comp = fns[s]
        await saga.add_step(s, action, comp, max_retries=0, timeout=5)


async def run_saga(storage, strategy, ctx, **kw):
    saga, steps = order_saga(storage, strategy, **kw)
    await build(saga, steps)
    for k, v in ctx.items():
        saga.context.set(k, v)
    result = await saga.execute()
    return saga.saga_id, result.success


async def dump(storage, saga_ids):
    out = {"sagas": {}, "replays": {}}
    for sid in saga_ids:
        snaps = await storage.list_snapshots(uuid.UUID(sid), limit=10_000)
        snaps = sorted(snaps, key=lambda s: s.created_at)
        out["sagas"][sid] = [json.loads(json.dumps(s.to_dict(), default=str)) for s in snaps]
        replays = await storage.list_replays(uuid.UUID(sid), limit=10_000)
        out["replays"][sid] = [json.loads(json.dumps(r, default=str)) for r in replays]
    return out


async def write(cfg, out_path):
    await prepare(cfg)
    storage = make_storage(cfg)
    await maybe_init(storage)
    ids = []
    plan = [
        (SnapshotStrategy.BEFORE_EACH_STEP, {"order_id": "o-1", "payment_token": "tok_valid", "amount": 9007199254740993}),
        (SnapshotStrategy.BEFORE_EACH_STEP, {"order_id": "o-2", "payment_token": "expired", "amount": 120, "city": "Zürich"}),
        (SnapshotStrategy.AFTER_EACH_STEP, {"order_id": "o-3", "payment_token": "tok_valid", "amount": 1.5}),
        (SnapshotStrategy.AFTER_EACH_STEP, {"order_id": "o-4", "payment_token": "expired", "amount": 7, "nested": {"a": [1, {"b": None}]}}),
    ]
    failed = []
    for strategy, ctx in plan:
        sid, ok = await run_saga(storage, strategy, ctx)
        ids.append(sid)
        if not ok and strategy == SnapshotStrategy.BEFORE_EACH_STEP:
            failed.append(sid)
    # A non-ASCII step name (sagaz's S3 backend silently drops it: we compare
    # with what sagaz itself lists, so that is what both sides must show).
    sid, _ = await run_saga(
        storage,
        SnapshotStrategy.BEFORE_EACH_STEP,
        {"order_id": "o-5", "payment_token": "tok_valid", "amount": 3},
        name="TransformSaga",
        steps=("reserve_inventory", "transform_données"),
    )
    ids.append(sid)

    async def factory(name):
        saga, steps = order_saga(storage, SnapshotStrategy.BEFORE_EACH_STEP, name=name)
        await build(saga, steps)
        return saga

    new_ids = []
    for sid in failed[:1]:
        replay = SagaReplay(saga_id=uuid.UUID(sid), snapshot_storage=storage, initiated_by="interop", saga_factory=factory)
        dry = await replay.from_checkpoint("charge_payment", {"payment_token": "tok_valid"}, dry_run=True)
        real = await replay.from_checkpoint("charge_payment", {"payment_token": "tok_valid"})
        assert dry.replay_status == "success", dry
        assert real.replay_status == "success", real
        new_ids.append(str(real.new_saga_id))
    result = await dump(storage, ids + new_ids)
    result["replayed_from"] = failed[:1]
    result["replay_new_saga_ids"] = new_ids
    if hasattr(storage, "close"):
        await storage.close()
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


async def read(cfg, ids_path, out_path):
    await prepare(cfg)
    storage = make_storage(cfg)
    await maybe_init(storage)
    with open(ids_path) as f:
        ids = json.load(f)
    result = await dump(storage, ids)
    # get_snapshot by id too (sagaz's folder store walks every saga dir).
    result["by_id"] = {}
    for sid, snaps in result["sagas"].items():
        for s in snaps[:2]:
            got = await storage.get_snapshot(uuid.UUID(s["snapshot_id"]))
            result["by_id"][s["snapshot_id"]] = got is not None
    if hasattr(storage, "close"):
        await storage.close()
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


def main():
    cmd = sys.argv[1]
    cfg = json.loads(sys.argv[2])
    if cmd == "write":
        asyncio.run(write(cfg, sys.argv[3]))
    elif cmd == "read":
        asyncio.run(read(cfg, sys.argv[3], sys.argv[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
