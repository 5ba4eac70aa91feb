"""Firehose's processing, as synthesised, against the local delivery stream that stands in
for it: the stack's jq query run by a real jq 1.6 (Debian's, the version Firehose's
JQ-1.6 engine names) on real capture records, packed and unpacked, must put each row in
the partition the local stream writes it to; and a delivered row's top-level fields must
be the Glue Iceberg table's columns, by name and type, as the template declares them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.capture.batch import capture_batch
from ddbtrail.core.row import COLUMNS
from ddbtrail.delivery.firehose import FirehoseSink
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.delivery.processing import Processing
from ddbtrail.lake.files import Lake
from infra import constants as C
from infra.config import load_config
from tests.infra.test_infra_app import JSONL
from tests.infra.test_infra_iceberg import ICEBERG

EVENTS = ("every-kind.json", "powertools-dynamo-stream-event.json",
          "sam-cli-dynamodb-update.json", "history-storer-multiple.json")
NOW_MS = 1_714_600_000_000
_KEY_REF = re.compile(r"!\{partitionKeyFromQuery:(\w+)\}")


@pytest.fixture(scope="module")
def jsonl(synth_once: Any) -> Any:
    return synth_once("jsonl", JSONL)


@pytest.fixture(scope="module")
def iceberg(synth_once: Any) -> Any:
    return synth_once("iceberg", ICEBERG)


@pytest.fixture(scope="module")
def jq() -> str:
    """Debian's jq 1.6; missing or another version fails (scripts/ensure-jq installs it)."""
    path = shutil.which("jq")
    assert path, "jq is not installed: run scripts/ensure-jq (apt-get install jq)"
    version = subprocess.run([path, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert version == "jq-1.6", f"{path} is {version}; Firehose's engine is JQ-1.6"
    return path


def _one(synth: Any, type_: str) -> dict[str, Any]:
    (resource,) = synth.resources(type_).values()
    props: dict[str, Any] = resource["Properties"]
    return props


class Recorder:
    """boto3's ``put_record_batch`` contract: keeps each record's bytes, then hands the
    call to the local delivery stream."""

    def __init__(self, stream: LocalDeliveryStream) -> None:
        self.stream = stream
        self.records: list[bytes] = []

    def put_record_batch(self, *, DeliveryStreamName: str,
                         Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.records += [bytes(r["Data"]) for r in Records]
        return self.stream.put_record_batch(DeliveryStreamName=DeliveryStreamName,
                                            Records=Records)


def capture(lake_dir: Path, processing: Processing, *, pack: bool,
            load_event: Any) -> tuple[list[bytes], LocalDeliveryStream]:
    """Real events through the capture code into a local stream with ``processing``:
    the Firehose records capture sent, and the stream (flushed)."""
    lake_dir.mkdir()
    stream = LocalDeliveryStream(Lake.open(str(lake_dir)), fmt="jsonl", processing=processing)
    recorder = Recorder(stream)
    sink = FirehoseSink(recorder, stream.name, pack_rows=pack)
    for name in EVENTS:
        capture_batch(load_event(name), sink=sink, now_ms=NOW_MS)
    stream.close()
    return recorder.records, stream


def jq_partitions(jq: str, query: str, prefix: str, records: list[bytes]) -> Counter[str]:
    """The object prefix of every row, as Firehose evaluates ``prefix`` from the keys the
    jq query extracts. jq reads each record as a stream of JSON texts, one output per row:
    what de-aggregation then extraction do."""
    out: Counter[str] = Counter()
    for data in records:
        proc = subprocess.run([jq, "-c", query], input=data, capture_output=True,
                              check=True, timeout=60)
        for line in proc.stdout.decode().splitlines():
            keys = json.loads(line)
            assert all(isinstance(v, str) and v for v in keys.values()), keys
            out[_KEY_REF.sub(lambda m, k=keys: k[m.group(1)], prefix)] += 1
    return out


def written_partitions(stream: LocalDeliveryStream, lake_prefix: str) -> Counter[str]:
    """The object prefix (under ``lake_prefix``) of every row the local stream wrote; each
    object must hold one JSON row per line."""
    out: Counter[str] = Counter()
    root = stream.lake.root.rstrip("/") + "/"
    for path in stream.stats.files:
        lines = Path(path).read_bytes().split(b"\n")
        assert lines[-1] == b"", f"{path}: the last row has no delimiter"
        for line in lines[:-1]:
            assert isinstance(json.loads(line), dict), line
        out[lake_prefix + path.removeprefix(root).rsplit("/", 1)[0] + "/"] += len(lines) - 1
    return out


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "unpacked"])
def test_the_stacks_jq_query_partitions_rows_as_the_local_stream_does(
        jsonl: Any, jq: str, tmp_path: Path, load_event: Any, pack: bool) -> None:
    assert jsonl.returncode == 0, jsonl.stderr[-2000:]
    dest = _one(jsonl, "AWS::KinesisFirehose::DeliveryStream")[
        "ExtendedS3DestinationConfiguration"]
    cfg = load_config(JSONL, config_file=C.DEFAULT_CONFIG_FILE)
    processing = Processing.for_stream(fmt=cfg.format, packs_rows=cfg.packs_rows)
    # The local stream's processing is the object the stack synthesised.
    processors = dest["ProcessingConfiguration"]["Processors"]
    assert processors == processing.processors()
    assert (dest["Prefix"], dest["ErrorOutputPrefix"]) == (processing.prefix,
                                                           processing.error_prefix)
    assert [p["Type"] for p in processors] == [
        "RecordDeAggregation", "MetadataExtraction", "AppendDelimiterToRecord"]
    (extraction,) = [p for p in processors if p["Type"] == "MetadataExtraction"]
    params = {p["ParameterName"]: p["ParameterValue"] for p in extraction["Parameters"]}
    assert params["JsonParsingEngine"] == "JQ-1.6"

    records, stream = capture(tmp_path / "lake", processing, pack=pack,
                              load_event=load_event)
    if pack:  # the events hold rows that share a partition: some records hold several
        assert any(r.count(b"\n") > 1 for r in records)
    expected = jq_partitions(jq, params["MetadataExtractionQuery"], dest["Prefix"], records)
    got = written_partitions(stream, processing.lake_prefix)
    assert got == expected
    assert sum(got.values()) == stream.stats.rows_written > 0
    assert stream.stats.error_rows == 0


def test_without_de_aggregation_a_packed_record_is_not_split(tmp_path: Path,
                                                              load_event: Any) -> None:
    """The local stream follows its processing: a stream that does not de-aggregate treats
    a packed record as one (invalid) row, as Firehose's jq would fail on it."""
    records, stream = capture(tmp_path / "lake", Processing.for_stream(
        fmt="jsonl", packs_rows=False), pack=True, load_event=load_event)
    packed = sum(1 for r in records if r.count(b"\n") > 1)
    assert packed and stream.stats.error_rows == packed


def test_a_delivered_row_has_the_iceberg_tables_columns_by_name_and_type(
        iceberg: Any, tmp_path: Path, load_event: Any) -> None:
    assert iceberg.returncode == 0, iceberg.stderr[-2000:]
    (table,) = [t["Properties"] for t in iceberg.resources("AWS::Glue::Table").values()
                if "OpenTableFormatInput" in t["Properties"]]
    # The table Firehose writes: its destination names it.
    dest = _one(iceberg, "AWS::KinesisFirehose::DeliveryStream")[
        "IcebergDestinationConfiguration"]
    (route,) = dest["DestinationTableConfigurationList"]
    assert route["DestinationTableName"] == table["TableInput"]["Name"]
    fields = {f["Name"]: f for f in
              table["OpenTableFormatInput"]["IcebergInput"]["IcebergTableInput"]["Schema"][
                  "Fields"]}
    cfg = load_config(ICEBERG, config_file=C.DEFAULT_CONFIG_FILE)
    records, _ = capture(tmp_path / "lake", Processing.for_stream(
        fmt=cfg.format, packs_rows=cfg.packs_rows), pack=cfg.packs_rows, load_event=load_event)
    # Firehose maps a row's top-level JSON fields to the table's columns by name; a field
    # with no column is dropped, a value of the wrong type fails the record.
    seen: set[str] = set()
    for data in records:
        delivered = json.loads(data)  # one row per record: Iceberg gets no packed records
        for key, value in delivered.items():
            assert key in fields, f"field {key} has no Iceberg column"
            if value is None:
                assert not fields[key]["Required"], f"{key} is required, the row has null"
            else:
                assert conforms(value, fields[key]["Type"]), (key, fields[key]["Type"], value)
            seen.add(key)
        missing = [n for n, f in fields.items() if f["Required"] and n not in delivered]
        assert not missing, f"required column(s) {missing} absent from {delivered}"
    assert records and seen == {c.name for c in COLUMNS} == set(fields)


_PRIMITIVES: dict[str, Any] = {"string": str, "long": int, "int": int, "boolean": bool,
                               "double": (int, float), "float": (int, float)}


def conforms(value: Any, spec: Any) -> bool:
    """Whether a JSON value fits an Iceberg type as the template spells it (a primitive's
    name, or a list/map/struct as JSON text or object). An unknown type fails loudly."""
    if isinstance(spec, str) and spec.startswith("{"):
        spec = json.loads(spec)
    if isinstance(spec, str):
        assert spec in _PRIMITIVES, f"Iceberg type {spec} not checked here"
        return isinstance(value, _PRIMITIVES[spec]) and (
            spec == "boolean" or not isinstance(value, bool))
    kind = spec["type"]
    if kind == "list":
        return isinstance(value, list) and all(
            _fits(v, spec["element"], spec.get("element-required")) for v in value)
    if kind == "map":
        return isinstance(value, dict) and all(
            conforms(k, spec["key"]) and _fits(v, spec["value"], spec.get("value-required"))
            for k, v in value.items())
    if kind == "struct":
        names = {f["name"]: f for f in spec["fields"]}
        return isinstance(value, dict) and set(value) <= set(names) and all(
            _fits(v, names[k]["type"], names[k].get("required")) for k, v in value.items())
    raise AssertionError(f"Iceberg type {spec} not checked here")


def _fits(value: Any, spec: Any, required: Any) -> bool:
    return (not required) if value is None else conforms(value, spec)
