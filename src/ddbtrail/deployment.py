"""What a deployed ddbtrail stack runs, read from its synthesised CloudFormation template.

``from_template(template)`` takes the template as a dict (``cdk.out/<stack>.template.json``)
and returns the facts the cost model prices: the lake format and Firehose buffer, the
capture Lambda's memory, architecture and batch size, the maintenance and compaction
schedules, the compaction Lambda's memory and timeout, and whether evidence and the
CloudTrail trail are on. Pure: no file, no AWS. Resources the stack names are found by
their ``aws:cdk:path`` metadata (``<stack>/Maintenance/Schedule/Resource``), which ``cdk
synth`` and ``python infra/app.py`` both write; a missing one is a ConfigError naming it.

``defaults(fmt)`` is the same facts for ``python infra/app.py -c format=<fmt>`` with no
other setting (tests/infra/test_cost_template.py holds the two equal).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ddbtrail.core.exceptions import ConfigError
from ddbtrail.core.formats import LAKE_FORMATS

PATH_KEY: Final = "aws:cdk:path"
MAINTENANCE_SCHEDULE: Final = "Maintenance/Schedule"
COMPACTION_SCHEDULE: Final = "Compaction/Schedule"
COMPACTION_FUNCTION: Final = "Compaction/PartitionFunction"
_CAPTURE_MAPPING: Final = re.compile(r"[^/]+Capture/Mapping")
# A partition closes at 00:00 UTC; offsets of named time zones are taken on this day.
_TZ_DAY: Final = dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """An EventBridge Scheduler expression as the model uses it.

    ``runs_per_day``: how often it starts. ``lag_hours``: on average, how long after
    00:00 UTC (when a day's partition closes) the next run starts.
    """

    expression: str
    runs_per_day: float
    lag_hours: float


@dataclass(frozen=True, slots=True)
class Compaction:
    """Who compacts closed partitions: ``lambda`` (a scheduled state machine running one
    Lambda per partition; ``schedule``, ``memory_mb``, ``timeout_s``, ``arm64``) or ``glue``
    (the Iceberg table's compaction optimizer, run by AWS when files accumulate)."""

    engine: str
    schedule: Schedule | None = None
    memory_mb: int = 0
    timeout_s: int = 0
    arm64: bool = True


@dataclass(frozen=True, slots=True)
class Deployment:
    """The deployed settings the cost model prices. ``source`` says where they came from:
    a template, or the stack's defaults."""

    format: str
    buffer_mb: int
    buffer_interval_s: int
    packs_rows: bool
    batch_size: int
    capture_memory_mb: int
    capture_arm64: bool
    tables: int
    maintenance: Schedule
    compaction: Compaction | None
    evidence: bool
    cloudtrail: bool
    source: str

    @property
    def label(self) -> str:
        """How the cost table tags a figure taken from here."""
        return "stack" if self.source != DEFAULTS_SOURCE else "stack default"


DEFAULTS_SOURCE: Final = "the stack's defaults (no template given)"


def parse_schedule(expression: str, timezone: str | None = None) -> Schedule:
    """``rate(N unit)`` or a ``cron(...)`` that runs every day at fixed minutes and hours.

    Raises ConfigError naming the expression for anything else (days of the week or
    month, ``at(...)``), which the model cannot turn into runs per day.
    """
    text = expression.strip()
    if m := re.fullmatch(r"rate\((\d+)\s+(minutes?|hours?|days?)\)", text):
        minutes = int(m[1]) * {"m": 1, "h": 60, "d": 1440}[m[2][0]]
        if minutes <= 0:
            raise ConfigError(f"schedule {expression!r}: a rate must be positive")
        # A rate starts when the schedule is created: on average half an interval.
        return Schedule(text, 1440 / minutes, minutes / 120)
    m = re.fullmatch(r"cron\((\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+(\S+))?\)", text)
    if not m or m[3] not in ("*", "?") or m[4] != "*" or m[5] not in ("*", "?") or (
            m[6] not in (None, "*")):
        raise ConfigError(f"schedule {expression!r}: only rate(...) or a daily cron(...) "
                          "(every day of every month) can be priced")
    at_minutes = _cron_field(m[1], 60, expression)
    hours = _cron_field(m[2], 24, expression)
    offset = _utc_offset_minutes(timezone, expression)
    starts = sorted({(h * 60 + mi - offset) % 1440 for h in hours for mi in at_minutes})
    # The wait from 00:00 UTC to the first start at or after it.
    return Schedule(text, float(len(starts)), starts[0] / 60)


def _cron_field(field: str, size: int, expression: str) -> list[int]:
    values: set[int] = set()
    for part in field.split(","):
        m = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
        if not m:
            raise ConfigError(f"schedule {expression!r}: cannot read {field!r}")
        lo = 0 if m[1] == "*" else int(m[1])
        hi = size - 1 if m[1] == "*" or (m[3] and not m[2]) else int(m[2] or m[1])
        step = int(m[3] or 1)
        if not 0 <= lo <= hi < size or step < 1:
            raise ConfigError(f"schedule {expression!r}: {field!r} is out of range")
        values.update(range(lo, hi + 1, step))
    return sorted(values)


def _utc_offset_minutes(timezone: str | None, expression: str) -> int:
    if timezone in (None, "", "UTC", "Etc/UTC"):
        return 0
    try:
        offset = _TZ_DAY.astimezone(ZoneInfo(str(timezone))).utcoffset()
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"schedule {expression!r}: unknown time zone {timezone!r}") from exc
    return int(offset.total_seconds() // 60) if offset is not None else 0


def from_template(template: dict[str, Any], *, source: str = "a template") -> Deployment:
    """The deployment facts of a synthesised ddbtrail template. Raises ConfigError naming
    the resource (by construct path or type) that is missing or unreadable."""
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise ConfigError(f"{source}: no Resources (not a CloudFormation template)")
    by_path = _paths(resources, source)
    stream = _props(_only(resources, "AWS::KinesisFirehose::DeliveryStream", source))
    fmt, dest = _destination(stream, source)
    hints = dest.get("BufferingHints", {})
    processors = dest.get("ProcessingConfiguration", {}).get("Processors", [])
    mappings = [r for p, r in by_path.items() if _CAPTURE_MAPPING.fullmatch(p)
                and r["Type"] == "AWS::Lambda::EventSourceMapping"]
    if not mappings:
        raise ConfigError(f"{source}: no capture (no <Table>Capture/Mapping "
                          "AWS::Lambda::EventSourceMapping)")
    capture = _function(resources, _props(mappings[0]).get("FunctionName"), source,
                        "the capture function")
    return Deployment(
        format=fmt,
        buffer_mb=int(hints.get("SizeInMBs", 5)),
        buffer_interval_s=int(hints.get("IntervalInSeconds", 300)),
        packs_rows=any(p.get("Type") == "RecordDeAggregation" for p in processors),
        batch_size=int(_props(mappings[0]).get("BatchSize", 100)),
        capture_memory_mb=int(capture.get("MemorySize", 128)),
        capture_arm64=capture.get("Architectures", ["x86_64"]) == ["arm64"],
        tables=len(mappings),
        maintenance=_schedule(_at(by_path, MAINTENANCE_SCHEDULE, "AWS::Scheduler::Schedule",
                                  source), MAINTENANCE_SCHEDULE, source),
        compaction=_compaction(resources, by_path, source),
        evidence=any(r["Type"] == "AWS::KMS::Key" and _props(r).get("KeyUsage") ==
                     "SIGN_VERIFY" for r in resources.values()),
        cloudtrail=any(r["Type"] == "AWS::CloudTrail::Trail" for r in resources.values()),
        source=source,
    )


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = resource.get("Properties", {})
    return props


def _paths(resources: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Resources by construct path without the stack name (``Maintenance/Schedule``; a
    trailing ``/Resource`` of an L2 construct dropped)."""
    out: dict[str, dict[str, Any]] = {}
    for resource in resources.values():
        path = resource.get("Metadata", {}).get(PATH_KEY)
        if isinstance(path, str) and "/" in path:
            out[path.split("/", 1)[1].removesuffix("/Resource")] = resource
    if not out:
        raise ConfigError(f"{source}: its resources carry no {PATH_KEY} metadata; synthesise "
                          "it with 'cdk synth' or 'python infra/app.py'")
    return out


def _only(resources: dict[str, Any], type_: str, source: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in resources.values() if r.get("Type") == type_]
    if len(found) != 1:
        raise ConfigError(f"{source}: expected one {type_}, found {len(found)}")
    return found[0]


def _at(by_path: dict[str, dict[str, Any]], path: str, type_: str,
        source: str) -> dict[str, Any]:
    resource = by_path.get(path)
    if resource is None or resource.get("Type") != type_:
        raise ConfigError(f"{source}: no {path} ({type_})")
    return resource


def _destination(stream: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    if "IcebergDestinationConfiguration" in stream:
        return "iceberg", stream["IcebergDestinationConfiguration"]
    dest = stream.get("ExtendedS3DestinationConfiguration")
    if dest is None:
        raise ConfigError(f"{source}: the delivery stream has no S3 or Iceberg destination")
    converts = dest.get("DataFormatConversionConfiguration", {}).get("Enabled", False)
    return ("parquet" if converts else "jsonl"), dest


def _function(resources: dict[str, Any], ref: Any, source: str, what: str) -> dict[str, Any]:
    logical = ref.get("Ref") if isinstance(ref, dict) else None
    resource = resources.get(logical) if isinstance(logical, str) else None
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::Lambda::Function":
        raise ConfigError(f"{source}: {what} (AWS::Lambda::Function) is not in the template")
    return _props(resource)


def _schedule(resource: dict[str, Any], path: str, source: str) -> Schedule:
    props = _props(resource)
    expression = props.get("ScheduleExpression")
    if not isinstance(expression, str):
        raise ConfigError(f"{source}: {path} has no ScheduleExpression")
    return parse_schedule(expression, props.get("ScheduleExpressionTimezone"))


def _compaction(resources: dict[str, Any], by_path: dict[str, dict[str, Any]],
                source: str) -> Compaction | None:
    if COMPACTION_SCHEDULE in by_path:
        schedule = _schedule(_at(by_path, COMPACTION_SCHEDULE, "AWS::Scheduler::Schedule",
                                 source), COMPACTION_SCHEDULE, source)
        fn = _props(_at(by_path, COMPACTION_FUNCTION, "AWS::Lambda::Function", source))
        return Compaction("lambda", schedule, memory_mb=int(fn.get("MemorySize", 128)),
                          timeout_s=int(fn.get("Timeout", 3)),
                          arm64=fn.get("Architectures", ["x86_64"]) == ["arm64"])
    if any(r["Type"] == "AWS::Glue::TableOptimizer" and _props(r).get("Type") == "compaction"
           for r in resources.values()):
        return Compaction("glue")
    return None


# python infra/app.py -c format=<fmt>, nothing else (infra/config.py, infra/constants.py).
_STACK_BUFFER_MB: Final = {"parquet": 128, "iceberg": 128, "jsonl": 64}
STACK_MAINTENANCE: Final = "cron(30 1 * * ? *)"
# What the Compaction construct deploys for Hive formats (infra/constants.py).
STACK_COMPACTION_SCHEDULE: Final = "cron(45 0 * * ? *)"
STACK_COMPACTION_MEMORY_MB: Final = 3008
STACK_COMPACTION_TIMEOUT_S: Final = 900


def defaults(fmt: str) -> Deployment:
    """What ``python infra/app.py -c format=<fmt>`` deploys, for a cost without a template."""
    if fmt not in LAKE_FORMATS:
        raise ConfigError(f"format={fmt!r}: expected one of {', '.join(LAKE_FORMATS)}")
    compaction = Compaction("glue") if fmt == "iceberg" else Compaction(
        "lambda", parse_schedule(STACK_COMPACTION_SCHEDULE),
        memory_mb=STACK_COMPACTION_MEMORY_MB, timeout_s=STACK_COMPACTION_TIMEOUT_S)
    return Deployment(
        format=fmt, buffer_mb=_STACK_BUFFER_MB[fmt], buffer_interval_s=300,
        packs_rows=fmt == "jsonl", batch_size=500, capture_memory_mb=512, capture_arm64=True,
        tables=1, maintenance=parse_schedule(STACK_MAINTENANCE, "Etc/UTC"),
        compaction=compaction, evidence=True, cloudtrail=False, source=DEFAULTS_SOURCE)
