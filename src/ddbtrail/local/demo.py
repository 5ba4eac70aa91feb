"""``ddbtrail demo``: the whole pipeline on one machine, with no AWS account.

Starts the embedded backend (moto), creates ``demo_orders`` (composite key
customer_id S + order_id N) with a NEW_AND_OLD_IMAGES stream, makes N realistic changes
(inserts, full-item updates, user deletes, TTL deletes, re-inserts; every attribute type
including B, SS, NS, BS, nested M/L and 38-digit numbers), captures them with the stream
runner into the lake, and reads back what the tour shows via ``ddbtrail.query.lookups``.
This module is the workload, the moto hooks and the orchestration; the Rich tour that
presents it lives in ``ddbtrail.cli._tour`` (no presentation below the CLI).

TTL deletes: moto has no TTL sweeper, so the demo plays it. It deletes expired carts
(``expires_at`` in the past) and then stamps those REMOVE records in moto's stream with the
identity DynamoDB's TTL process uses (``userIdentity`` type Service, principal
dynamodb.amazonaws.com), so they reach the runner exactly as TTL deletes reach Lambda.

Speed: writes go in BatchWriteItem calls of 25 (moto deep-copies every table for each
TransactWriteItems call, so transactions are slower there, not faster); the runner reads
with ``JsonStreamsClient`` (no botocore parsing of typed values); and while the demo runs,
two moto hot spots are replaced by equivalent code (``fast_moto``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.config import Config
from botocore.credentials import Credentials

from ddbtrail.capture.runner.esm import RunnerSettings, RunStats
from ddbtrail.capture.runner.jsonclient import JsonStreamsClient
from ddbtrail.capture.runner.pipeline import build_capture, checkpoint_name
from ddbtrail.core.codec import item_key
from ddbtrail.core.exceptions import ConfigError, InvalidArgument, LakeError
from ddbtrail.lake.files import Lake
from ddbtrail.local.embedded import FAKE_CREDENTIALS, EmbeddedAWS
from ddbtrail.local.trail import ADMIN, SERVICE, SUPPORT, TrailRecorder

TABLE: Final = "demo_orders"
DEFAULT_CHANGES: Final = 2000
MAX_CHANGES: Final = 1_000_000
BATCH: Final = 25  # BatchWriteItem's limit
TTL_IDENTITY: Final = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
# Share of the changes by kind; re-inserts are a share of the inserts.
MIX: Final = {"insert": 0.35, "update": 0.45, "delete": 0.12, "ttl": 0.08}
REINSERT_SHARE: Final = 0.1
CART_SHARE: Final = 0.3
STAR_KEY: Final = {"customer_id": {"S": "C0001"}, "order_id": {"N": "1"}}

Item = dict[str, dict[str, Any]]
_FAKE: Final = {"access_key": FAKE_CREDENTIALS["aws_access_key_id"],
                "secret_key": FAKE_CREDENTIALS["aws_secret_access_key"]}


# --------------------------------------------------------------------------- items


def _n(value: object) -> dict[str, str]:
    return {"N": str(value)}


class Orders:
    """Generates realistic order items and their changes, deterministic for a seed."""

    STATUSES: Final = ("PLACED", "PAID", "PACKED", "SHIPPED", "DELIVERED", "RETURNED")
    CITIES: Final = ("Lisbon", "Osaka", "Nairobi", "Québec", "Zürich", "São Paulo")
    TAGS: Final = ("gift", "express", "fragile", "bulk", "vip", "eco", "promo")

    def __init__(self, rng: random.Random, now: Callable[[], float]) -> None:
        self.rng = rng
        self.now = now
        self.next_order = 2

    def new_key(self) -> Item:
        order = self.next_order
        self.next_order += 1
        return {"customer_id": {"S": f"C{self.rng.randint(1, 400):04d}"},
                "order_id": _n(order)}

    def new_item(self, key: Item, *, cart: bool = False) -> Item:
        rng = self.rng
        lines = [{"M": {"sku": {"S": f"SKU-{rng.randint(1, 999):03d}"},
                        "qty": _n(rng.randint(1, 5)),
                        "price": _n(f"{rng.randint(1, 99999) / 100:.2f}")}}
                 for _ in range(rng.randint(1, 4))]
        item: Item = {
            **key,
            "status": {"S": "CART" if cart else "PLACED"},
            "total": _n(f"{rng.randint(100, 500000) / 100:.2f}"),
            "version": _n(1),
            "lines": {"L": lines},
            "tags": {"SS": rng.sample(self.TAGS, rng.randint(1, 3))},
            "ratings": {"NS": sorted({str(rng.randint(1, 5)), "4.5"})},
            "receipt": {"B": rng.randbytes(rng.randint(8, 48))},
            "attachments": {"BS": [rng.randbytes(6) + bytes([i]) for i in range(2)]},
            "gift": {"BOOL": rng.random() < 0.2},
            "coupon": {"NULL": True},
            # 38 significant digits, and the value boto3's TypeDeserializer cannot read.
            "loyalty_points": _n("".join(str(rng.randint(1, 9)) for _ in range(38))),
            "ledger_offset": _n("110111111111111110000000000000000000000"),
            "tiny": _n("-1.5E-129"),
            "shipping": {"M": {
                "method": {"S": rng.choice(("standard", "express", "pickup"))},
                "address": {"M": {"city": {"S": rng.choice(self.CITIES)},
                                  "zip": {"S": f"{rng.randint(1000, 99999)}"}}},
                "tracking": {"L": []},
            }},
        }
        if cart:
            # Already expired: DynamoDB's TTL deletes expired items within days, not at once.
            item["expires_at"] = _n(int(self.now()) - rng.randint(60, 86400))
        return item

    def updated(self, item: Item) -> Item:
        """The item after a realistic update; always different from before."""
        rng = self.rng
        # Copy what an update may change; the rest is shared and never mutated.
        new = dict(item)
        new["shipping"] = {"M": {**item["shipping"]["M"], "tracking": {
            "L": list(item["shipping"]["M"]["tracking"]["L"])}}}
        new["version"] = _n(int(item["version"]["N"]) + 1)
        status = item["status"]["S"]
        if status == "CART":
            new["status"] = {"S": "PLACED"}
            new.pop("expires_at", None)  # checkout keeps the order
        elif status in self.STATUSES[:-1]:
            new["status"] = {"S": self.STATUSES[self.STATUSES.index(status) + 1]}
        choice = rng.random()
        if choice < 0.25:
            tags = set(new["tags"]["SS"]) | {rng.choice(self.TAGS)}
            new["tags"] = {"SS": sorted(tags)}
        elif choice < 0.45:
            new["shipping"]["M"]["tracking"]["L"].append(
                {"S": f"{rng.choice(self.CITIES)}:{rng.randint(1, 9)}"})
        elif choice < 0.6:
            new["coupon"] = {"S": f"SAVE{rng.randint(5, 30)}"}
        elif choice < 0.7:
            new.pop("gift", None)
        else:
            new["total"] = _n(f"{rng.randint(100, 500000) / 100:.2f}")
        return new


# --------------------------------------------------------------------------- workload


@dataclass(slots=True)
class WorkloadStats:
    """What the workload did, by kind of change."""

    inserts: int = 0
    reinserts: int = 0
    updates: int = 0
    deletes: int = 0
    ttl_deletes: int = 0
    calls: int = 0
    star_times: list[int] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return self.inserts + self.updates + self.deletes + self.ttl_deletes


def _key_text(item: Item) -> str:
    """The canonical item_key of an item or key (only the key attributes count)."""
    return item_key({k: item[k] for k in ("customer_id", "order_id")})


class Workload:
    """Makes ``changes`` stream records on ``table`` with BatchWriteItem calls."""

    def __init__(self, ddb: Any, table: str, changes: int, *, seed: int = 7,
                 mark_ttl: Callable[[list[Item]], None],
                 now: Callable[[], float] = time.time,
                 trail: TrailRecorder | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.ddb = ddb
        self.progress = progress  # (changes made, changes asked for), after each write
        self.table = table
        self.target = changes
        self.rng = random.Random(seed)
        self.orders = Orders(self.rng, now)
        self.mark_ttl = mark_ttl
        self.live: dict[str, Item] = {}
        self.keys: dict[str, Item] = {}
        self.deleted: list[str] = []
        self.stats = WorkloadStats()
        # The star item's story: insert, 3 updates, delete, re-insert, update.
        self.star_plan = ["insert", "update", "update", "update", "delete", "insert", "update"]
        # ... and who wrote each step, in the CloudTrail files (``trail``).
        self.star_by = [SERVICE, SERVICE, SUPPORT, SERVICE, ADMIN, SERVICE, SUPPORT]
        self.trail = trail
        self.star_times: list[int] = []

    def run(self) -> WorkloadStats:
        made = 0
        star_every = max(1, self.target // (len(self.star_plan) + 1))
        next_star = 0
        while made < self.target:
            if self.star_plan and made >= next_star and self.target - made >= 1:
                self._star_step()
                made += 1
                next_star = made + star_every
                continue
            kind = self._next_kind()
            room = min(BATCH, self.target - made, max(1, next_star - made)
                       if self.star_plan else BATCH)
            made += self._group(kind, room) or self._group("insert", room)
            if self.progress is not None:
                self.progress(made, self.target)
        return self.stats

    def _next_kind(self) -> str:
        s = self.stats
        done = {"insert": s.inserts, "update": s.updates, "delete": s.deletes,
                "ttl": s.ttl_deletes}
        carts = self._expired_carts(1)
        possible = [k for k in MIX
                    if (k == "insert" or len(self.live) > 1)
                    and (k != "ttl" or carts)]
        return min(possible, key=lambda k: done[k] / (MIX[k] * self.target))

    def _expired_carts(self, limit: int) -> list[str]:
        now = int(self.orders.now())
        found = []
        for text, item in self.live.items():
            if item.get("status", {}).get("S") == "CART" and text != _key_text(STAR_KEY) \
                    and int(item.get("expires_at", {"N": now})["N"]) < now:
                found.append(text)
                if len(found) >= limit:
                    break
        return found

    def _live_sample(self, n: int, *, exclude_carts: bool = False) -> list[str]:
        star = _key_text(STAR_KEY)
        candidates = [k for k, v in self.live.items() if k != star
                      and not (exclude_carts and v["status"]["S"] == "CART")]
        return self.rng.sample(candidates, min(n, len(candidates)))

    def _group(self, kind: str, room: int) -> int:
        if kind == "insert":
            puts: list[Item] = []
            for _ in range(room):
                if self.deleted and self.rng.random() < REINSERT_SHARE:
                    text = self.deleted.pop(self.rng.randrange(len(self.deleted)))
                    key = self.keys[text]
                    self.stats.reinserts += 1
                else:
                    key = self.orders.new_key()
                    text = _key_text(key)
                    self.keys[text] = key
                if text in self.live or any(_key_text(p) == text for p in puts):
                    continue
                item = self.orders.new_item(key, cart=self.rng.random() < CART_SHARE)
                puts.append(item)
            self._put(puts)
            self.stats.inserts += len(puts)
            return len(puts)
        if kind == "update":
            texts = self._live_sample(room)
            self._put([self.orders.updated(self.live[t]) for t in texts])
            self.stats.updates += len(texts)
            return len(texts)
        if kind == "delete":
            texts = self._live_sample(room, exclude_carts=True) or self._live_sample(room)
            self._delete(texts)
            self.stats.deletes += len(texts)
            return len(texts)
        texts = self._expired_carts(room)
        self._delete(texts, logged=False)  # TTL's own deletes: no CloudTrail event
        self.mark_ttl([self.keys[t] for t in texts])
        self.stats.ttl_deletes += len(texts)
        return len(texts)

    def _star_step(self) -> None:
        step = self.star_plan.pop(0)
        by = self.star_by.pop(0)
        # People do not edit one order several times a second: keep the star's writes two
        # seconds apart, so that no other write of it lies within a second either side
        # and CloudTrail's second-precision times can name each one's principal.
        now = time.time()
        if self.star_times and int(now) <= self.star_times[-1] // 1000 + 1:
            time.sleep(self.star_times[-1] // 1000 + 2.02 - now)
        text = _key_text(STAR_KEY)
        self.keys[text] = STAR_KEY
        if step == "insert":
            self._put([self.orders.new_item(STAR_KEY)], by=by)
            self.stats.inserts += 1
        elif step == "update":
            self._put([self.orders.updated(self.live[text])], by=by)
            self.stats.updates += 1
        else:
            self._delete([text], by=by)
            self.stats.deletes += 1
        self.stats.star_times.append(int(self.orders.now() * 1000))
        self.star_times.append(int(time.time() * 1000))

    def _write(self, requests: list[dict[str, Any]], *, by: str | None = None,
               logged: bool = True) -> None:
        if not requests:
            return
        pending = {self.table: requests}
        while pending:
            self.stats.calls += 1
            when = time.time()
            resp = self.ddb.batch_write_item(RequestItems=pending)
            if self.trail is not None and logged:
                self.trail.record(self.table, pending[self.table], when,
                                  ("customer_id", "order_id"), by)
            pending = resp.get("UnprocessedItems") or {}

    def _put(self, items: list[Item], *, by: str | None = None) -> None:
        self._write([{"PutRequest": {"Item": item}} for item in items], by=by)
        for item in items:
            text = _key_text(item)
            self.live[text] = item
            if text in self.deleted:
                self.deleted.remove(text)

    def _delete(self, texts: list[str], *, by: str | None = None,
                logged: bool = True) -> None:
        self._write([{"DeleteRequest": {"Key": self.keys[t]}} for t in texts], by=by,
                    logged=logged)
        for t in texts:
            self.live.pop(t, None)
            self.deleted.append(t)


# --------------------------------------------------------------------------- moto hooks


def moto_ttl_marker(region: str, table: str) -> Callable[[list[Item]], None]:
    """Stamp the latest REMOVE records of these keys with TTL's identity, in moto's stream.

    Only works with the embedded backend (moto in this process). Raises ConfigError if
    moto's internals are not what this expects, rather than mislabel anything.
    """
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    def mark(keys: list[Item]) -> None:
        if not keys:
            return
        wanted = {item_key(k) for k in keys}
        shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(table).stream_shard
        if shard is None:
            raise ConfigError(f"demo: table {table} has no stream in moto")
        for rec in reversed(shard.items[-len(keys) * 2:]):
            data = rec.record
            k = item_key(data["dynamodb"]["Keys"])
            if data["eventName"] == "REMOVE" and k in wanted:
                data["userIdentity"] = dict(TTL_IDENTITY)
                wanted.discard(k)
        if wanted:
            raise ConfigError(f"demo: could not find the TTL deletes of {sorted(wanted)} in "
                              "moto's stream")

    return mark


@contextmanager
def fast_moto() -> Iterator[None]:
    """While active, two of moto's hot spots are replaced by equivalent, faster code.

    * GetRecords answers with plain JSON (``dynamo_json_dump``, as moto's own DynamoDB
      responses do) instead of the model-driven serializer: same content, ~20x faster.
    * An item's 400 KB size check sums its attributes once instead of once per attribute
      (quadratic in the attribute count): same limit, same error.
    """
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize, dynamo_json_dump
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    def get_records(self: Any) -> str:
        arn = self._get_param("ShardIterator")
        limit = self._get_param("Limit") or 1000
        return str(dynamo_json_dump(self.backend.get_records(arn, limit)))

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {k: dynamo_type.DynamoType(v) for k, v in attrs.items()}
        if sum(bytesize(k) + v.size() for k, v in values.items()) > 405000:
            raise ItemSizeTooLarge
        self.attrs = dynamo_type.LimitedSizeDict(values)  # dict.update: no per-key check

    saved = (DynamoDBStreamsHandler.get_records, dynamo_type.Item.__init__)
    DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign,assignment]
    dynamo_type.Item.__init__ = item_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBStreamsHandler.get_records = saved[0]  # type: ignore[method-assign]
        dynamo_type.Item.__init__ = saved[1]  # type: ignore[method-assign]


# --------------------------------------------------------------------------- demo


@dataclass(slots=True)
class DemoResult:
    """What the demo did, and what the tour reads back from the lake (not these numbers)."""

    lake: Lake
    table: str
    workload: WorkloadStats
    capture: RunStats
    files: list[str]
    write_seconds: float
    capture_seconds: float
    tour_seconds: float = 0.0
    started_ms: int = 0
    ended_ms: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    star_key: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)  # with actor fields
    cloudtrail: str = ""  # where the demo's CloudTrail log files are
    as_of_ms: int = 0
    state: dict[str, Any] | None = None
    report: str | None = None
    # An Iceberg lake's snapshots (the lake's own history), oldest first.
    snapshots: list[dict[str, Any]] = field(default_factory=list)


class DemoSteps:
    """What the demo tells as it goes; each method does nothing here (a quiet run).

    The CLI's tour overrides them to print; keeping the wording out of this layer keeps
    presentation in ``ddbtrail.cli``.
    """

    def replaced(self, lake_uri: str, table: str) -> None:
        """An earlier run's data of ``table`` was removed from the lake."""

    def started(self, endpoint_url: str, table: str) -> None:
        """Embedded AWS is up and ``table`` exists with its stream."""

    def writing(self, made: int, total: int) -> None:
        """The workload has made ``made`` of ``total`` changes (after each write)."""

    def wrote(self, workload: WorkloadStats, seconds: float) -> None:
        """The workload made its changes."""

    def capturing(self, stats: RunStats) -> None:
        """The runner's progress (after each batch)."""

    def captured(self, stats: RunStats, files: list[str], fmt: str, seconds: float,
                 lake_uri: str, checkpoints: str) -> None:
        """The runner captured the stream into the lake."""


def create_table(ddb: Any, table: str) -> str:
    """Create the demo table with a NEW_AND_OLD_IMAGES stream; return the stream ARN.

    An earlier demo table in the same (in-process, shared) moto backend is dropped first.
    """
    with suppress(ddb.exceptions.ResourceNotFoundException):
        ddb.delete_table(TableName=table)
    desc = ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"},
                   {"AttributeName": "order_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"},
                              {"AttributeName": "order_id", "AttributeType": "N"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(desc["TableDescription"]["LatestStreamArn"])


def trail_root(lake: Lake) -> str:
    """Where the demo writes its CloudTrail log files (the tour's CloudTrail location)."""
    return lake.state_path("cloudtrail")


def trail_uri(lake: Lake) -> str:
    """``trail_root`` as a URI, for a reader's ``cloudtrail`` argument."""
    return lake.uri.rstrip("/") + "/_ddbtrail/cloudtrail"


def clear_previous(lake: Lake, table: str) -> bool:
    """Remove an earlier demo run's data and checkpoints of ``table``; True if there were."""
    import pyarrow.fs as pafs

    found = False
    for path in (lake.path(f"table_name={table}"),
                 lake.state_path("checkpoints", checkpoint_name(table)), trail_root(lake),
                 # The earlier run's receipts and digests name files no longer there.
                 lake.state_path("receipts", f"table={table}"),
                 lake.state_path("digests", f"table={table}")):
        try:
            if lake.fs.get_file_info(path).type != pafs.FileType.NotFound:
                lake.fs.delete_dir(path)
                found = True
        except OSError as exc:
            raise LakeError(f"lake {lake.uri}: cannot replace the previous demo data "
                            f"({exc})") from exc
    from ddbtrail.lake.iceberg import open_if_present

    ice = open_if_present(lake)
    if ice is not None and ice.delete_source_table(table):
        found = True
    return found


def run_demo(lake: Lake, *, changes: int = DEFAULT_CHANGES, fmt: str = "parquet",
             seed: int = 7, steps: DemoSteps | None = None,
             clock: Callable[[], float] = time.perf_counter) -> DemoResult:
    """Run the demo end to end and read back what the tour shows (``read_back``).

    ``steps`` hears about each stage (None: nothing is told).
    Raises InvalidArgument for a bad ``changes``, LakeError if the lake cannot be written.
    """
    if not 1 <= changes <= MAX_CHANGES:
        raise InvalidArgument("changes", changes, f"must be 1..{MAX_CHANGES:,}")
    steps = steps or DemoSteps()
    if clear_previous(lake, TABLE):
        steps.replaced(lake.uri, TABLE)
    with EmbeddedAWS() as aws, fast_moto():
        # The demo's own writes are well-formed: skip botocore's slow parameter validation.
        ddb = aws.client("dynamodb", config=Config(parameter_validation=False))
        create_table(ddb, TABLE)
        steps.started(aws.endpoint_url, TABLE)
        started_ms = int(time.time() * 1000)
        t0 = clock()
        recorder = TrailRecorder(aws.region, seed=seed)
        workload = Workload(ddb, TABLE, changes, seed=seed,
                            mark_ttl=moto_ttl_marker(aws.region, TABLE),
                            trail=recorder, progress=steps.writing).run()
        recorder.write(lake, trail_root(lake))
        t1 = clock()
        steps.wrote(workload, t1 - t0)
        streams = JsonStreamsClient(aws.endpoint_url, aws.region,
                                    credentials=Credentials(**_FAKE))
        run = build_capture(TABLE, lake, ddb=ddb, streams=streams,
                            fmt=fmt, settings=RunnerSettings(
                                batch_size=1000, max_retry_attempts=3, bisect_on_error=True,
                                checkpoint_interval=3600, poll_interval=0),
                            on_progress=steps.capturing)
        stats = run.run(once=True)
        t2 = clock()
    files = list(run.delivery.stats.files)
    steps.captured(stats, files, fmt, t2 - t1, lake.uri,
                   lake.state_path("checkpoints", checkpoint_name(TABLE)))
    result = DemoResult(lake, TABLE, workload, stats, files, t1 - t0, t2 - t1,
                        started_ms=started_ms, ended_ms=int(time.time() * 1000) + 1)
    read_back(result)
    result.tour_seconds = clock() - t2
    return result


# --------------------------------------------------------------------------- read back


def action_counts(lake: Lake, table: str) -> dict[str, int]:
    """Distinct changes by action in the lake, with REMOVE split into user and TTL."""
    from ddbtrail.query.duck import connect

    con = connect(lake, table_name=table)
    try:
        rows = con.execute(
            "SELECT CASE WHEN action = 'REMOVE' AND ttl_delete THEN 'REMOVE (TTL)' "
            "WHEN action = 'REMOVE' THEN 'REMOVE (user)' ELSE action END AS kind, "
            "count(DISTINCT event_id) FROM changes WHERE table_name = ? GROUP BY kind",
            [table]).fetchall()
    finally:
        con.close()
    order = ["INSERT", "MODIFY", "REMOVE (user)", "REMOVE (TTL)"]
    counts = {str(k): int(n) for k, n in rows}
    return {k: counts[k] for k in sorted(counts, key=lambda k: (
        order.index(k) if k in order else 99, k))}


def read_back(result: DemoResult) -> None:
    """Fill in counts by action, the star item's history and its state at a past instant."""
    from ddbtrail.lake.cloudtrail import TrailLogs
    from ddbtrail.query import lookups, who

    lake, table = result.lake, result.table
    result.counts = action_counts(lake, table)
    star = item_key(STAR_KEY)
    result.star_key = star
    result.cloudtrail = trail_uri(lake)
    trail = TrailLogs(Lake(uri=result.cloudtrail, fs=lake.fs, root=trail_root(lake)))
    result.history = who.item_history_with_actors(lake, table, star, trail).rows
    # Just after the star's third change: shipped, before it was deleted and re-created.
    history = result.history
    pick = history[min(2, len(history) - 1)] if history else None
    result.as_of_ms = int(pick["timestamp"]) if pick else 0
    result.state = lookups.item_as_of(lake, table, star, result.as_of_ms) if pick else None
    from ddbtrail.lake.iceberg import open_if_present

    ice = open_if_present(lake)
    result.snapshots = ice.snapshots() if ice is not None else []
