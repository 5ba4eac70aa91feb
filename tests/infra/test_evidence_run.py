"""The synthesised maintenance machine's reconciliation, executed as Step Functions would.

The definition comes from the template (two captured tables). ``tests/infra/asl.py`` runs
it; ``tests/infra/athena_duck.py`` answers Athena on DuckDB over a local lake (the receipts
as the Glue table reads them), and ``cloudwatch:putMetricData`` goes to moto's CloudWatch
through botocore, which checks the call against the service model. The lake is built the
way capture builds it: rows through the local delivery stream, and after each accepted
batch its receipt (``ddbtrail.evidence.receipts``). On a healthy lake both metrics are 0
for each table; after a lost batch and a forged row they are exactly those counts, and
equal to the same saved query run on DuckDB as ``ddbtrail verify`` runs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ddbtrail.core.timefmt import iso_ms
from ddbtrail.evidence.receipts import LakeReceipts, ReceiptChange, write_receipts
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved
from infra import constants as C
from infra.constructs.evidence import PUT_METRIC_DATA, RECONCILE_QUERY
from infra.constructs.maintenance import ATHENA_RESULTS, ATHENA_SYNC
from tests.infra.asl import Interpreter
from tests.infra.athena_duck import LocalAthena
from tests.infra.sdk_tasks import sdk_task
from tests.infra.test_infra_app import PARQUET, prepare_inputs
from tests.infra.test_maintenance import machine
from tests.infra.test_maintenance_run import DAY, RUN_AT, T0, changes, deliver

pytestmark = pytest.mark.infra

TABLES = ("orders", "customers")
RUN_MS = (T0 + 2 * DAY + RUN_AT) * 1000   # day 3, 01:30: the window is day 2
LOST = 3                                  # orders: received, never delivered


@pytest.fixture(scope="module")
def synth(synth_once: Any) -> Any:
    result = synth_once("parquet", PARQUET, setup=prepare_inputs)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def receipt(row: dict[str, Any]) -> ReceiptChange:
    return ReceiptChange(row["table_name"], row["dt"], row["event_id"], row["item_key"],
                         row["action"], row["sequence_number"])


def build_lake(root: Path, *, lose: bool) -> Lake:
    """Two tables' changes up to the run, each delivered then receipted (as capture does).
    With ``lose``: a batch of day 2 of orders is receipted but never delivered (a lost
    Firehose batch), and one row of day 2 of customers is delivered with no receipt."""
    root.mkdir()
    lake = Lake.open(str(root))
    store = LakeReceipts(lake)
    for seed, table in enumerate(TABLES):
        arrived = [(a, r) for a, r in changes(table, 40 + seed) if a * 1000 < RUN_MS]
        day2 = [i for i, (a, _) in enumerate(arrived) if T0 + DAY <= a < T0 + 2 * DAY]
        assert len(day2) > LOST
        lost = set(day2[:LOST]) if lose and table == "orders" else set()
        forged = {day2[-1]} if lose and table == "customers" else set()
        for i, (at_s, row) in enumerate(arrived):
            if i not in lost:
                deliver(lake, [(at_s, row)])
            if i not in forged:
                write_receipts(store, [receipt(row)], source="capture",
                               received_ms=at_s * 1000 + 1)
    return lake


def run_reconciliation(synth: Any, lake: Lake, cloudwatch: Any) -> dict[tuple[str, str], float]:
    """One daily run of the machine; the metrics it published, by (table, metric)."""
    _, _, definition = machine(synth)
    assert tuple(definition["States"]["Instants"]["Assign"]["tables"]) == TABLES
    athena = LocalAthena(lake, database=C.DEFAULT_DATABASE, workgroup=C.DEFAULT_WORKGROUP)
    sfn = Interpreter(definition, {
        ATHENA_SYNC: athena.start_query_execution_sync,
        ATHENA_RESULTS: athena.get_query_results,
        PUT_METRIC_DATA: sdk_task(cloudwatch, "putMetricData", "CloudWatch")})
    sfn.execute({}, start_time=iso_ms(RUN_MS))
    published = {}
    for table in TABLES:
        for metric in C.RECONCILE_METRICS:
            points = cloudwatch.get_metric_statistics(
                Namespace=C.METRICS_NAMESPACE, MetricName=metric,
                Dimensions=[{"Name": C.RECONCILE_DIMENSION, "Value": table}],
                StartTime=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
                EndTime=dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
                Period=86_400, Statistics=["Sum", "SampleCount"])["Datapoints"]
            assert [p["SampleCount"] for p in points] == [1.0], (table, metric, points)
            published[table, metric] = points[0]["Sum"]
    return published


def verify_figures(lake: Lake) -> dict[tuple[str, str], float]:
    """The same saved query over the same window on DuckDB (what ``ddbtrail verify`` runs)."""
    query = saved.load(RECONCILE_QUERY)
    window = {"from": iso_ms(RUN_MS - RUN_AT * 1000 - DAY * 1000),
              "to": iso_ms(RUN_MS - RUN_AT * 1000)}
    out = {}
    for table in TABLES:
        rows = saved.run_local(query, {"table_name": table, **window}, lake).to_pylist()
        for metric, column in (("ReceivedNotInLake", "received_not_in_lake"),
                               ("InLakeWithoutReceipt", "in_lake_without_receipt")):
            out[table, metric] = float(sum(r[column] for r in rows))
    return out


def test_a_healthy_lake_publishes_zero_for_each_table(
        synth: Any, tmp_path: Path, cloudwatch: Any) -> None:
    lake = build_lake(tmp_path / "healthy", lose=False)
    published = run_reconciliation(synth, lake, cloudwatch)
    assert published == {(t, m): 0.0 for t in TABLES for m in C.RECONCILE_METRICS}
    assert published == verify_figures(lake)


def test_a_lost_batch_and_a_forged_row_are_published_as_counted(
        synth: Any, tmp_path: Path, cloudwatch: Any) -> None:
    lake = build_lake(tmp_path / "faulty", lose=True)
    published = run_reconciliation(synth, lake, cloudwatch)
    assert published == {
        ("orders", "ReceivedNotInLake"): float(LOST),
        ("orders", "InLakeWithoutReceipt"): 0.0,
        ("customers", "ReceivedNotInLake"): 0.0,
        ("customers", "InLakeWithoutReceipt"): 1.0,
    }
    assert published == verify_figures(lake)
