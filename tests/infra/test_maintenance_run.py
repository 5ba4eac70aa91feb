"""The synthesised maintenance state machine, executed as Step Functions would run it.

The definition comes from the template itself. ``tests/infra/asl.py`` interprets it
(JSONata by jsonata-python) and ``tests/infra/athena_duck.py`` answers its Athena tasks
by running the SQL the machine built, parameters bound from its ExecutionParameters, on
DuckDB over a local lake. A simulated week of daily runs, with changes that arrive late,
must leave the same snapshots table, and the same as-of answers, as ``ddbtrail snapshot``
run each day on a twin lake; after the first day the build may read only the change files
at or after the date of the snapshot it builds on (DuckDB's profiler counts them).

Assumptions about the snapshot SQL: the machine's Athena statements are SELECTs (the
candidate bases, then a staleness check of each) and INSERT INTO snapshots whose SELECT
lists the snapshot table's columns in order (``core.row.SNAPSHOT_COLUMNS``); a
statement's table is the one whose name is among its execution parameters.
"""

from __future__ import annotations

import datetime as dt_mod
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.core.flatten import flatten_record, row_json
from ddbtrail.core.row import SNAPSHOT_COLUMN_NAMES
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups, snapshots
from ddbtrail.query.duck import connect, sql_string
from infra import constants as C
from infra.config import load_config
from infra.constructs.evidence import PUT_METRIC_DATA
from infra.constructs.maintenance import ATHENA_RESULTS, ATHENA_SYNC
from tests.infra.asl import Interpreter, StatesError
from tests.infra.athena_duck import LocalAthena, Statement
from tests.infra.test_infra_app import JSONL
from tests.infra.test_maintenance import machine

T0 = 1_714_521_600  # 2024-05-01T00:00:00Z
DAY = 86_400
RUN_AT = 5_400      # the schedule's default time of day, 01:30 UTC
DAYS = 7
KEYS = tuple(f"k{i}" for i in range(6))


@pytest.fixture(scope="module")
def synth(synth_once: Any) -> Any:
    return synth_once("jsonl", JSONL)


def changes(table: str, seed: int) -> list[tuple[int, dict[str, Any]]]:
    """(arrival second, row) of a week of stream records of ``table``, in event order.

    Most rows arrive 5 s after their change; the last change of each day arrives after
    midnight but before the next run could need it; one change of day 2 arrives on
    day 4, after the snapshots of days 2 and 3 were built (it makes them stale).
    """
    rng = random.Random(seed)
    images: dict[str, dict[str, Any] | None] = dict.fromkeys(KEYS)
    times = sorted(T0 + day * DAY + rng.randrange(DAY - 60) for day in range(DAYS)
                   for _ in range(6))
    times += [T0 + day * DAY + DAY - 10 for day in range(DAYS)]
    times.append(T0 + 2 * DAY + 12 * 3600)
    out = []
    for seq, at_s in enumerate(sorted(times), start=1):
        key = rng.choice(KEYS)
        old = images[key]
        keys = {"pk": {"S": key}}
        new = {**keys, "v": {"N": str(seq)}, "tags": {"SS": [f"t{seq % 3}", "x"]}}
        record: dict[str, Any] = {
            "eventID": f"{table}-{seq}", "awsRegion": "us-east-1",
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
                              "/stream/2024-05-01T00:00:00.000",
            "dynamodb": {"ApproximateCreationDateTime": at_s, "Keys": keys,
                         "SequenceNumber": str(10**20 + seq),
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}}
        if old is not None and rng.random() < 0.25:
            record["eventName"] = "REMOVE"
            record["dynamodb"]["OldImage"] = old
            images[key] = None
        else:
            record["eventName"] = "INSERT" if old is None else "MODIFY"
            record["dynamodb"]["NewImage"] = new
            if old is not None:
                record["dynamodb"]["OldImage"] = old
            images[key] = new
        arrives = at_s + 5
        if at_s % DAY == DAY - 10:
            arrives = at_s + 10 + 300           # 00:05 the next day
        if at_s == T0 + 2 * DAY + 12 * 3600:
            arrives = T0 + 4 * DAY + 10 * 3600  # day 4, 10:00
        out.append((arrives, flatten_record(record, ingested_at_ms=arrives * 1000)))
    return out


def deliver(lake: Lake, rows: list[tuple[int, dict[str, Any]]]) -> None:
    """Rows through the local delivery stream (Firehose's JSON Lines, gzipped)."""
    for arrives, row in rows:
        stream = LocalDeliveryStream(lake, fmt="jsonl", gzip_jsonl=True,
                                     now=lambda t=arrives: float(t))
        stream.put_record_batch(DeliveryStreamName=stream.name,
                                Records=[{"Data": row_json(row).encode()}])
        stream.close()


def snapshot_rows(lake: Lake, table: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in SNAPSHOT_COLUMN_NAMES)
    con = connect(lake, table_name=table)
    try:
        return con.execute(f"SELECT {cols} FROM snapshots ORDER BY ALL").fetchall()
    finally:
        con.close()


@dataclass
class Day:
    """One daily run: the statements it sent, and per table the snapshot ``ddbtrail
    snapshot`` built on and how many change files lie at or after that snapshot's date."""

    statements: list[Statement]
    bases: dict[str, snapshots.Build | None]
    since_base: dict[str, int]
    # Change files in the evidence reconciliation's own window (reconcile_window).
    reconciled: dict[str, int]


def reconcile_window(start_ms: int) -> tuple[str, str]:
    """The change partitions reconcile_receipts reads for the UTC day before a run: from two
    days before that day to the day after it (athena_queries/fragments/receipt_matches.sql),
    a bounded window however long the history."""
    day = dt_mod.date.fromisoformat(iso_ms(start_ms)[:10]) - dt_mod.timedelta(days=1)
    return ((day - dt_mod.timedelta(days=2)).isoformat(),
            (day + dt_mod.timedelta(days=1)).isoformat())


@dataclass
class Week:
    tables: tuple[str, ...]
    cli: Lake
    lake: Lake
    days: list[Day] = field(default_factory=list)


@pytest.fixture(scope="module")
def week(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> Week:
    """A week of daily runs of the synthesised machine on one lake, and of ``ddbtrail
    snapshot`` (``snapshots.build``, what the command runs) on a twin lake that receives
    the same deliveries; each run's snapshots compared as it goes."""
    assert synth.returncode == 0, synth.stderr[-2000:]
    _, _, definition = machine(synth)
    cfg = load_config(JSONL, config_file=C.DEFAULT_CONFIG_FILE)
    root = tmp_path_factory.mktemp("week")
    (root / "cli").mkdir()
    (root / "machine").mkdir()
    out = Week(cfg.all_tables, Lake.open(str(root / "cli")), Lake.open(str(root / "machine")))
    workload = sorted((a, r) for i, t in enumerate(out.tables) for a, r in changes(t, 25 + i))
    athena = LocalAthena(out.lake, database=cfg.database, workgroup=cfg.workgroup)
    # The evidence reconciliation's metrics are tested in test_evidence_run.py.
    sfn = Interpreter(definition, {ATHENA_SYNC: athena.start_query_execution_sync,
                                   ATHENA_RESULTS: athena.get_query_results,
                                   PUT_METRIC_DATA: lambda arguments: {}})
    delivered = 0
    for day in range(1, DAYS + 1):
        start_ms = (T0 + day * DAY + RUN_AT) * 1000
        arrived = [(a, r) for a, r in workload if a * 1000 < start_ms][delivered:]
        delivered += len(arrived)
        deliver(out.cli, arrived)
        deliver(out.lake, arrived)
        bases = {t: snapshots.build(out.cli, t, snapshots.default_instant(start_ms),
                                    now_ms=start_ms,
                                    settle_seconds=snapshots.S3_SETTLE_SECONDS).base
                 for t in out.tables}
        since = {t: len(out.lake.data_files(t, b.snapshot_date if b else None, None))
                 for t, b in bases.items()}
        window = reconcile_window(start_ms)
        reconciled = {t: len(out.lake.data_files(t, *window)) for t in out.tables}
        first = len(athena.statements)
        sfn.execute({}, start_time=iso_ms(start_ms), name=f"day-{day}")
        for table in out.tables:
            assert snapshot_rows(out.lake, table) == snapshot_rows(out.cli, table), (day, table)
        out.days.append(Day(athena.statements[first:], bases, since, reconciled))
    return out


def test_a_week_of_daily_runs_writes_what_ddbtrail_snapshot_writes(week: Week) -> None:
    for table in week.tables:
        rows = snapshot_rows(week.lake, table)
        assert rows == snapshot_rows(week.cli, table)
        kinds = Counter(r[SNAPSHOT_COLUMN_NAMES.index("row_kind")] for r in rows)
        assert kinds["complete"] == DAYS and kinds["item"] > DAYS, kinds
    # After the first day every build starts from a snapshot, even when a late change
    # made the latest ones stale (day 5 goes back to day 1's).
    for number, day in enumerate(week.days[1:], start=2):
        assert all(b is not None for b in day.bases.values()), number
    stale_fallback = week.days[4].bases
    assert all(b is not None and b.snapshot_date == iso_ms(T0 * 1000 + DAY * 1000)[:10]
               for b in stale_fallback.values()), stale_fallback


def test_the_machines_snapshots_give_the_same_as_of_answers(week: Week) -> None:
    for table in week.tables:
        # Snapshot instants (day 5's builds on day 1's), and instants between them.
        for at_s in [T0 + d * DAY - 1 for d in (2, 5, 7)] + [
                T0 + 2 * DAY + 40_000, T0 + 5 * DAY + 7_200]:
            at_ms = at_s * 1000
            want = lookups.table_as_of(week.cli, table, at_ms)
            assert lookups.table_as_of(week.lake, table, at_ms) == want, iso_ms(at_ms)
            assert want == lookups.table_as_of(week.cli, table, at_ms, use_snapshots=False)
            # as-of starts from the machine's snapshot where the command's would be used
            used = snapshots.plan(week.lake, table, at_ms).snapshot
            expected = snapshots.plan(week.cli, table, at_ms).snapshot
            assert (used and used.made_at) == (expected and expected.made_at)
            for key in KEYS[:1]:
                item_key = json.dumps({"pk": key}, separators=(",", ":"))
                assert lookups.item_as_of(week.lake, table, item_key, at_ms) == \
                    lookups.item_as_of(week.cli, table, item_key, at_ms)


def rereads(week: Week, states: set[str] | None) -> list[str]:
    """Statements of the days after the first that read more change files than lie at or
    after the date of the snapshot they build on, or, for the evidence reconciliation, in
    its own window (``states``: only those SQL headers)."""
    found = []
    for number, day in enumerate(week.days[1:], start=2):
        for st in day.statements:
            name = st.sql.split("\n", 1)[0]
            if states is not None and not any(s in st.sql for s in states):
                continue
            owners = [t for t in week.tables if sql_string(t) in st.parameters]
            allowed = sum((day.reconciled if "name: reconcile_receipts" in st.sql
                           else day.since_base)[t] for t in owners)
            if st.change_files_read > allowed:
                found.append(f"day {number}: {st.kind} {name!r} read {st.change_files_read} "
                             f"change files ({st.change_rows_scanned} rows); {allowed} lie at "
                             "or after the snapshot it builds on")
    return found


def test_after_the_first_day_the_snapshot_build_reads_only_changes_since_its_base(
        week: Week) -> None:
    assert not rereads(week, {"name: snapshot_state", "name: snapshot_complete"})
    # The week reads something: the counts are the profiler's, not zeros.
    assert all(any(st.change_files_read for st in day.statements) for day in week.days)


def test_after_the_first_day_no_statement_rereads_the_whole_history(week: Week) -> None:
    assert not rereads(week, None)


def test_a_parameter_the_machine_gets_wrong_fails_the_run(tmp_path: Path, synth: Any) -> None:
    """The harness is strict: an empty execution parameter fails the Athena task."""
    _, _, definition = machine(synth)
    cfg = load_config(JSONL, config_file=C.DEFAULT_CONFIG_FILE)
    inner = definition["States"]["Tables"]["ItemProcessor"]["States"]
    inner["FindBase"]["Arguments"]["ExecutionParameters"][0] = "{% \"''\" %}"
    (tmp_path / "lake").mkdir()
    lake = Lake.open(str(tmp_path / "lake"))
    deliver(lake, changes(cfg.all_tables[0], 1)[:3])
    athena = LocalAthena(lake, database=cfg.database, workgroup=cfg.workgroup)
    sfn = Interpreter(definition, {ATHENA_SYNC: athena.start_query_execution_sync,
                                   ATHENA_RESULTS: athena.get_query_results})
    with pytest.raises(StatesError, match=r"ExecutionParameters\[0\]"):
        sfn.execute({}, start_time=iso_ms((T0 + DAY + RUN_AT) * 1000))
