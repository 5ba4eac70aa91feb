"""End to end on the embedded backend: a random workload (every type, deletes, re-inserts),
``ddbtrail capture --once``, then the lake's as-of view equals a scan of the table exactly
-- also after capture was SIGKILLed mid-run and started again."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.core import codec
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups

pytestmark = pytest.mark.e2e

CLI = shutil.which("ddbtrail", path=str(Path(sys.executable).parent)) or "ddbtrail"
SETS = ("SS", "NS", "BS")


# --------------------------------------------------------------------------- workload


def rand_number(rng: random.Random) -> str:
    """A number as DynamoDB stores it (no leading '+', no trailing zeros after a point)."""
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randint(-10**6, 10**6))
    if kind == 1:
        return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(37))
    if kind == 2:
        return f"-{rng.randint(1, 999)}.{rng.randint(1, 9)}{rng.randint(0, 99):02d}1"
    if kind == 3:
        return "110111111111111110000000000000000000000"
    return f"{rng.randint(1, 9)}.{rng.randint(1, 9)}E-{rng.randint(1, 120)}"


def rand_value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["M", "L"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "S":
        return {"S": rng.choice(["", "plain", "ünïcødé ✓", "line\nbreak", '{"json": 1}',
                                 "x" * rng.randint(1, 40)])}
    if kind == "N":
        return {"N": rand_number(rng)}
    if kind == "B":
        return {"B": rng.randbytes(rng.randint(0, 24))}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "SS":
        return {"SS": rng.sample(["a", "b", "c", "d", "ü", "1"], rng.randint(1, 4))}
    if kind == "NS":
        return {"NS": list({rand_number(rng) for _ in range(rng.randint(1, 3))})}
    if kind == "BS":
        return {"BS": list({rng.randbytes(rng.randint(1, 8)) for _ in range(rng.randint(1, 3))})}
    if kind == "M":
        return {"M": {f"k{i}": rand_value(rng, depth + 1) for i in range(rng.randint(0, 3))}}
    return {"L": [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]}


class Workload:
    """Random puts, updates (SET/REMOVE/ADD), deletes and re-inserts on one table."""

    def __init__(self, ddb: Any, table: str, seed: int) -> None:
        self.ddb, self.table, self.rng = ddb, table, random.Random(seed)
        self.live: set[tuple[str, str]] = set()
        self.deleted: list[tuple[str, str]] = []
        self.next_id = 0

    def key(self, k: tuple[str, str]) -> dict[str, Any]:
        return {"pk": {"S": k[0]}, "sk": {"N": k[1]}}

    def item(self, k: tuple[str, str]) -> dict[str, Any]:
        attrs = {f"a{i}": rand_value(self.rng) for i in range(self.rng.randint(1, 6))}
        return {**self.key(k), **attrs}

    def step(self) -> None:
        rng = self.rng
        op = rng.random()
        if not self.live or op < 0.3:
            if self.deleted and rng.random() < 0.4:
                k = self.deleted.pop(rng.randrange(len(self.deleted)))  # re-insert
            else:
                self.next_id += 1
                k = (f"p{self.next_id % 7}", str(self.next_id))
            self.ddb.put_item(TableName=self.table, Item=self.item(k))
            self.live.add(k)
            return
        k = rng.choice(sorted(self.live))
        if op < 0.45:  # overwrite with a new item
            self.ddb.put_item(TableName=self.table, Item=self.item(k))
        elif op < 0.8:
            a, r = rng.sample(range(8), 2)  # paths of one update must not overlap
            self.ddb.update_item(
                TableName=self.table, Key=self.key(k),
                UpdateExpression="SET #a = :v, #c = :n REMOVE #r ADD #t :s",
                ExpressionAttributeNames={"#a": f"a{a}", "#c": "counter", "#r": f"a{r}",
                                          "#t": "tags"},
                ExpressionAttributeValues={":v": rand_value(rng), ":n": {"N": rand_number(rng)},
                                           ":s": {"SS": [rng.choice("xyz")]}})
        else:
            self.ddb.delete_item(TableName=self.table, Key=self.key(k))
            self.live.discard(k)
            self.deleted.append(k)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()


def make_table(ddb: Any) -> str:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return name


# --------------------------------------------------------------------------- comparison


def normalise(item: dict[str, Any]) -> dict[str, Any]:
    """Typed item with set members sorted: DynamoDB sets have no order."""

    def value(v: dict[str, Any]) -> dict[str, Any]:
        ((tag, inner),) = v.items()
        if tag in SETS:
            return {tag: sorted(inner)}
        if tag == "M":
            return {"M": {k: value(x) for k, x in inner.items()}}
        if tag == "L":
            return {"L": [value(x) for x in inner]}
        return {tag: inner}

    return {k: value(v) for k, v in item.items()}


def scan(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        for it in page["Items"]:
            items[codec.item_key({"pk": it["pk"], "sk": it["sk"]})] = it
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_lake_equals_table(capsys: pytest.CaptureFixture[str], lake_dir: Path, ddb: Any,
                             table: str) -> None:
    """as-of now (the saved query, via lookups and via the CLI) == a scan, exactly."""
    expected = scan(ddb, table)
    now_ms = int(time.time() * 1000) + 1000
    rows = {r["item_key"]: r for r in lookups.table_as_of(Lake.open(str(lake_dir)), table,
                                                          now_ms)}
    assert sorted(rows) == sorted(expected)
    for key, item in expected.items():
        row = rows[key]
        hints = codec.hints_under(json.loads(row["type_hints"] or "{}"), "/new_image")
        typed = codec.decode_item(row["item"], hints, binary_as_bytes=True)
        assert normalise(typed) == normalise(item), key

    # The CLI: one JSON object per line, the plain encoding of new_image.
    # A second ahead of now, so --allow-future (a future --at is refused by default).
    code, out, err = cli(capsys, "as-of", "--lake", str(lake_dir), "--table", table,
                         "--at", iso_ms(now_ms), "--allow-future", "--output", "json")
    assert code == 0, err
    cli_items = [codec.parse_plain(line) for line in out.splitlines() if line.strip()]
    plain_scan = [codec.parse_plain(codec.encode_item(it)[0]) for it in expected.values()]

    def canon(plain: Any) -> str:
        return json.dumps(plain, sort_keys=True)

    assert sorted(map(canon, cli_items)) == sorted(map(canon, plain_scan))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``ddbtrail ARGS`` in this process: (exit code, stdout, stderr)."""
    from ddbtrail.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def capture(capsys: pytest.CaptureFixture[str], endpoint: str, table: str, lake_dir: Path,
            *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "capture", "--table", table, "--lake", str(lake_dir), "--endpoint-url",
               endpoint, "--region", "us-east-1", "--once", *extra)


def event_ids(lake_dir: Path, table: str) -> list[str]:
    import pyarrow.parquet as pq

    lake = Lake.open(str(lake_dir))
    ids: list[str] = []
    for f in lake.data_files(table):
        if f.format == "parquet":
            ids += pq.read_table(f.path, columns=["event_id"]).column("event_id").to_pylist()
        else:
            ids += [json.loads(x)["event_id"] for x in Path(f.path).read_text().splitlines()]
    return ids


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_capture_once_reproduces_the_table(moto_server: Any, tmp_path: Path, fmt: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    table = make_table(ddb)
    work = Workload(ddb, table, seed=11 if fmt == "parquet" else 12)
    work.run(120)
    assert work.deleted, "the workload must delete"
    lake_dir = tmp_path / "lake"
    code, out, err = capture(capsys, moto_server.endpoint_url, table, lake_dir, "--format", fmt,
                             "--batch-size", "17")
    assert code == 0, err
    assert "captured 120 records" in out
    assert_lake_equals_table(capsys, lake_dir, ddb, table)

    # More changes, including re-inserts; a second run captures only those.
    work.run(30)
    code, out, err = capture(capsys, moto_server.endpoint_url, table, lake_dir, "--format", fmt)
    assert code == 0, err
    assert "captured 30 records" in out
    assert sorted(event_ids(lake_dir, table)) == sorted(set(event_ids(lake_dir, table)))
    assert_lake_equals_table(capsys, lake_dir, ddb, table)


KILLER = textwrap.dedent("""
    import os, signal, sys
    from ddbtrail.lake.files import Lake
    from ddbtrail.capture.runner import RunnerSettings
    from ddbtrail.capture.runner.pipeline import build_capture
    import boto3

    endpoint, table, lake_dir, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    kw = dict(endpoint_url=endpoint, region_name="us-east-1")
    run = build_capture(table, Lake.open(lake_dir), ddb=boto3.client("dynamodb", **kw),
                        streams=boto3.client("dynamodbstreams", **kw),
                        settings=RunnerSettings(batch_size=10, checkpoint_interval=0,
                                                poll_interval=0))
    inner = run.runner.processor
    calls = []

    def processor(event):
        calls.append(1)
        if len(calls) > kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # no finally, no flush: a hard crash
        return inner(event)

    run.runner.processor = processor
    run.run(once=True)
""")


def test_sigkill_mid_run_then_restart_is_still_exact(moto_server: Any, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    table = make_table(ddb)
    work = Workload(ddb, table, seed=21)
    work.run(100)
    lake_dir = tmp_path / "lake"
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, moto_server.endpoint_url, table, str(lake_dir), "5"],
        check=False, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoints = list((lake_dir / "_ddbtrail" / "checkpoints").rglob("*.json"))
    assert checkpoints, "checkpoints were written before the crash"
    saved = json.loads(checkpoints[0].read_text())["sequence_number"]
    assert saved is not None

    work.run(30)  # the table keeps changing while capture is down
    code, _, err = capture(capsys, moto_server.endpoint_url, table, lake_dir,
                           "--batch-size", "25")
    assert code == 0, err
    assert_lake_equals_table(capsys, lake_dir, ddb, table)


def test_console_script_killed_while_running_then_once(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Whenever the kill lands, a restart with --once leaves the lake exact."""
    ddb = moto_server.client("dynamodb")
    table = make_table(ddb)
    work = Workload(ddb, table, seed=31)
    work.run(100)
    lake_dir = tmp_path / "lake"
    proc = subprocess.Popen(
        [CLI, "capture", "--table", table, "--lake", str(lake_dir), "--endpoint-url",
         moto_server.endpoint_url, "--region", "us-east-1", "--batch-size", "5",
         "--checkpoint-interval", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        checkpoint_dir = lake_dir / "_ddbtrail" / "checkpoints"
        while time.monotonic() < deadline and not list(checkpoint_dir.rglob("*.json")):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert list(checkpoint_dir.rglob("*.json"))
    work.run(20)
    code, _, err = capture(capsys, moto_server.endpoint_url, table, lake_dir)
    assert code == 0, err
    assert_lake_equals_table(capsys, lake_dir, ddb, table)


def test_capture_errors_are_one_line(moto_server: Any, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    no_stream = f"nostream-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=no_stream, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cases = [
        (["--table", "missing-table"], "table 'missing-table' does not exist"),
        (["--table", no_stream], f"table '{no_stream}' has no stream"),
        (["--table", no_stream, "--lake", str(blocker / "lake")], "cannot be written"),
        (["--table", no_stream, "--format", "csv"],
         "--format: csv is not one of parquet, jsonl, iceberg"),
        (["--table", no_stream, "--batch-size", "0"], "--batch-size 0"),
        (["--table", no_stream, "--max-retries", "-2"], "--max-retries -2"),
    ]
    for args, message in cases:
        code, _, err = cli(capsys, "capture", "--lake", str(tmp_path / "lake"),
                           "--endpoint-url", moto_server.endpoint_url, "--region", "us-east-1",
                           "--once", *args)
        assert code != 0, args
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ")
        assert message in lines[0]
