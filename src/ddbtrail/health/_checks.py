"""The checks of a deployed trail, each a function returning ``Check`` records.

Every check asks AWS (or the lake) one question and never raises for what it finds: an
AWS error becomes a failed check naming the resource, so one broken piece never hides
the others.
"""

from __future__ import annotations

import datetime as dt_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.catalog import glue as catalog
from ddbtrail.core.row import COLUMN_NAMES
from ddbtrail.health._deployment import Deployment, client, discover

if TYPE_CHECKING:
    from ddbtrail.lake.files import Lake

OK: Final = "ok"
WARN: Final = "warn"
FAIL: Final = "fail"
STATUSES: Final = (OK, WARN, FAIL)

# Defaults: the stack's IteratorAge alarm (infra/config.py iterator_age_alarm_ms).
MAX_ITERATOR_AGE_MS: Final = 600_000
MAX_PARTITION_AGE_HOURS: Final = 24.0
# A closed partition waits for the next compaction run: one day late is normal.
COMPACTION_GRACE_DAYS: Final = 2
_FINISHED_BAD: Final = ("FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True, slots=True)
class Check:
    """One check's verdict: ``status`` is ok, warn (worth a look; healthy still) or
    fail; ``fix`` says what to do when it is not ok."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        """False only for a failed check (a warning is healthy)."""
        return self.status != FAIL


@dataclass(frozen=True, slots=True)
class StreamMapping:
    """An event source mapping that reads a DynamoDB stream, from GetEventSourceMapping."""

    uuid: str
    table: str
    config: dict[str, Any] = field(repr=False)

    @property
    def stream_arn(self) -> str:
        return str(self.config.get("EventSourceArn", ""))

    @property
    def function_name(self) -> str:
        # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:ALIAS]
        return str(self.config.get("FunctionArn", "")).split(":function:")[-1].split(":")[0]


def aws_error(exc: Exception) -> str:
    """An AWS error as ``Code: message``."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', exc)}"
    return str(exc)


def _now() -> dt_mod.datetime:
    return dt_mod.datetime.now(dt_mod.UTC)


def table_of_stream(stream_arn: str) -> str | None:
    """The table name of a DynamoDB stream ARN (``...:table/NAME/stream/LABEL``)."""
    if ":dynamodb:" not in stream_arn or "/stream/" not in stream_arn:
        return None
    return stream_arn.split(":table/", 1)[-1].split("/stream/", 1)[0]


def load_mappings(dep: Deployment, *, boto3_session: Any = None,
                  endpoint_url: str | None = None) -> tuple[list[StreamMapping], list[Check]]:
    """The stack's mappings that read DynamoDB streams, and a failed check for each
    mapping that cannot be read."""
    lam = client("lambda", boto3_session, endpoint_url)
    found, problems = [], []
    for uuid in dep.mappings:
        try:
            config = lam.get_event_source_mapping(UUID=uuid)
        except Exception as exc:  # noqa: BLE001  (any AWS failure becomes a failed check)
            problems.append(Check(f"mapping {uuid}", FAIL, aws_error(exc),
                                  f"redeploy stack {dep.stack}: its mapping {uuid} is gone"))
            continue
        table = table_of_stream(str(config.get("EventSourceArn", "")))
        if table is not None:
            found.append(StreamMapping(uuid, table, config))
    return found, problems


def check_streams(mappings: Sequence[StreamMapping], *, boto3_session: Any = None,
                  endpoint_url: str | None = None) -> list[Check]:
    """Per table: its stream is on, with NEW_AND_OLD_IMAGES, and is the stream the
    mapping reads."""
    ddb = client("dynamodb", boto3_session, endpoint_url)
    out = []
    for m in mappings:
        name = f"stream {m.table}"
        enable = (f"aws dynamodb update-table --table-name {m.table} --stream-specification "
                  "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES, then redeploy the "
                  "stack so the mapping reads the new stream")
        try:
            table = ddb.describe_table(TableName=m.table)["Table"]
        except Exception as exc:  # noqa: BLE001
            out.append(Check(name, FAIL, aws_error(exc),
                             f"create table {m.table} or remove it from the stack's tables"))
            continue
        spec = table.get("StreamSpecification") or {}
        view = spec.get("StreamViewType", "")
        latest = table.get("LatestStreamArn", "")
        if not spec.get("StreamEnabled"):
            out.append(Check(name, FAIL, "stream disabled: no change is captured", enable))
        elif view != "NEW_AND_OLD_IMAGES":
            out.append(Check(name, FAIL, f"view type {view}: rows lack the item images",
                             "a view type cannot change: aws dynamodb update-table "
                             f"--table-name {m.table} --stream-specification "
                             "StreamEnabled=false, then " + enable))
        elif latest and m.stream_arn and latest != m.stream_arn:
            out.append(Check(name, FAIL, f"the mapping reads {m.stream_arn}, but the table's "
                             f"stream is now {latest}",
                             "redeploy the stack so the mapping reads the current stream"))
        else:
            out.append(Check(name, OK, "enabled, NEW_AND_OLD_IMAGES"))
    return out


def _iterator_age_ms(cw: Any, function_name: str, now: dt_mod.datetime) -> float | None:
    stats = cw.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="IteratorAge",
        Dimensions=[{"Name": "FunctionName", "Value": function_name}],
        StartTime=now - dt_mod.timedelta(minutes=15), EndTime=now, Period=60,
        Statistics=["Maximum"])
    points = stats.get("Datapoints", [])
    return max(float(p["Maximum"]) for p in points) if points else None


def check_mappings(mappings: Sequence[StreamMapping], *,
                   max_iterator_age_ms: float = MAX_ITERATOR_AGE_MS,
                   boto3_session: Any = None, endpoint_url: str | None = None) -> list[Check]:
    """Per mapping: enabled, its last processing result, and the IteratorAge metric's
    maximum over the last 15 minutes (fails above ``max_iterator_age_ms``)."""
    cw = client("cloudwatch", boto3_session, endpoint_url)
    out = []
    for m in mappings:
        name = f"mapping {m.table}"
        state = str(m.config.get("State", ""))
        result = m.config.get("LastProcessingResult")
        if state == "Disabled":
            out.append(Check(name, FAIL, f"mapping {m.uuid} disabled: the stream is not read",
                             f"aws lambda update-event-source-mapping --uuid {m.uuid} "
                             "--enabled"))
            continue
        if state != "Enabled":
            out.append(Check(name, WARN, f"mapping {m.uuid} is {state or 'in no state'}",
                             "wait a minute and run doctor again"))
            continue
        if isinstance(result, str) and result.startswith("PROBLEM"):
            out.append(Check(name, FAIL, f"last processing result: {result}",
                             f"read the logs of function {m.function_name}; fix the "
                             "permission or setting it names"))
            continue
        try:
            age = _iterator_age_ms(cw, m.function_name, _now())
        except Exception as exc:  # noqa: BLE001
            out.append(Check(name, FAIL, f"IteratorAge unreadable: {aws_error(exc)}",
                             "grant cloudwatch:GetMetricStatistics, or use another "
                             "`boto3_session`"))
            continue
        last = f"last result {result}" if result else "last result not reported"
        if age is not None and age > max_iterator_age_ms:
            out.append(Check(name, FAIL, f"enabled, {last}, iterator age {age / 1000:,.0f} s",
                             f"capture is falling behind: read function {m.function_name}'s "
                             "errors and throttles; raise its batch size or parallelization"))
            continue
        shown = "no data in 15 min" if age is None else f"{age / 1000:,.0f} s"
        out.append(Check(name, OK, f"enabled, {last}, iterator age {shown}"))
    return out


def check_on_failure_queues(mappings: Sequence[StreamMapping], *,
                            delivery_stream: str | None = None, boto3_session: Any = None,
                            endpoint_url: str | None = None) -> list[Check]:
    """Per mapping: its on-failure queue exists and holds no message (each one is a batch
    of changes not in the lake)."""
    sqs = client("sqs", boto3_session, endpoint_url)
    out = []
    for m in mappings:
        name = f"on-failure queue {m.table}"
        arn = str(((m.config.get("DestinationConfig") or {}).get("OnFailure") or {})
                  .get("Destination", ""))
        if not arn.startswith("arn:aws:sqs:"):
            out.append(Check(name, FAIL, f"mapping {m.uuid} has no on-failure queue",
                             "redeploy the stack: failed batches are otherwise lost"))
            continue
        *_, account, queue = arn.split(":")
        try:
            url = sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        except Exception as exc:  # noqa: BLE001
            out.append(Check(name, FAIL, f"queue {queue}: {aws_error(exc)}",
                             "redeploy the stack, or grant sqs:GetQueueAttributes"))
            continue
        count = sum(int(v) for v in attrs.get("Attributes", {}).values())
        if count:
            fix = (f"ddbtrail redrive --queue-url {url} --delivery-stream {delivery_stream}"
                   if delivery_stream else f"ddbtrail redrive --queue-url {url} --lake URI")
            out.append(Check(name, FAIL, f"{count} failed batch(es) waiting in {queue}", fix))
        else:
            out.append(Check(name, OK, f"{queue} empty"))
    return out


def _destination(description: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(``s3`` or ``iceberg``, the description holding BucketARN and ErrorOutputPrefix)."""
    dest = (description.get("Destinations") or [{}])[0]
    if "IcebergDestinationDescription" in dest:
        return "iceberg", dest["IcebergDestinationDescription"].get(
            "S3DestinationDescription", {})
    return "s3", dest.get("ExtendedS3DestinationDescription") or dest.get(
        "S3DestinationDescription") or {}


def delivery_kind(stream_name: str | None, *, boto3_session: Any = None,
                  endpoint_url: str | None = None) -> str | None:
    """``iceberg`` or ``s3`` (Parquet or JSON Lines files), by the delivery stream's
    destination; None when it cannot be read."""
    if not stream_name:
        return None
    try:
        desc = client("firehose", boto3_session, endpoint_url).describe_delivery_stream(
            DeliveryStreamName=stream_name)["DeliveryStreamDescription"]
    except Exception:  # noqa: BLE001  (check_firehose reports it)
        return None
    return _destination(desc)[0]


def check_firehose(stream_name: str | None, *, boto3_session: Any = None,
                   endpoint_url: str | None = None) -> list[Check]:
    """The delivery stream: active, every delivery over the last hour succeeded
    (``DeliveryToS3.Success`` or ``DeliveryToIceberg.Success``), and nothing under its
    error prefix."""
    if not stream_name:
        return [Check("firehose", FAIL, "the stack has no DeliveryStreamName output",
                      "redeploy the stack with this version of ddbtrail")]
    fh = client("firehose", boto3_session, endpoint_url)
    try:
        desc = fh.describe_delivery_stream(DeliveryStreamName=stream_name)[
            "DeliveryStreamDescription"]
    except Exception as exc:  # noqa: BLE001
        return [Check("firehose", FAIL, f"{stream_name}: {aws_error(exc)}",
                      "redeploy the stack")]
    kind, s3 = _destination(desc)
    metric = "DeliveryToIceberg.Success" if kind == "iceberg" else "DeliveryToS3.Success"
    status = desc.get("DeliveryStreamStatus", "")
    out = []
    try:
        now = _now()
        points = client("cloudwatch", boto3_session, endpoint_url).get_metric_statistics(
            Namespace="AWS/Firehose", MetricName=metric,
            Dimensions=[{"Name": "DeliveryStreamName", "Value": stream_name}],
            StartTime=now - dt_mod.timedelta(hours=1), EndTime=now, Period=300,
            Statistics=["Minimum"]).get("Datapoints", [])
    except Exception as exc:  # noqa: BLE001
        points, status = [], f"{status}; {metric} unreadable: {aws_error(exc)}"
    worst = min((float(p["Minimum"]) for p in points), default=None)
    if status != "ACTIVE":
        out.append(Check("firehose delivery", FAIL, f"{stream_name} is {status}",
                         "see the delivery stream's status reason; redeploy the stack"))
    elif worst is not None and worst < 1:
        out.append(Check("firehose delivery", FAIL,
                         f"{metric} fell to {worst:.0%} in the last hour",
                         f"read log group of {stream_name} (DestinationDelivery): fix the "
                         "bucket, key or Glue permission it names"))
    elif worst is None:
        out.append(Check("firehose delivery", WARN, f"{stream_name}: no delivery in the last "
                         "hour", "if tables changed in that hour, run the canary "
                         "(`canary` TABLE)"))
    else:
        out.append(Check("firehose delivery", OK, f"{stream_name}: {metric} 100% over 1 h"))
    out.append(_error_prefix(s3, boto3_session=boto3_session, endpoint_url=endpoint_url))
    return out


def _error_prefix(s3: dict[str, Any], *, boto3_session: Any,
                  endpoint_url: str | None) -> Check:
    bucket = str(s3.get("BucketARN", "")).split(":::")[-1]
    # The fixed part before the first !{...} expression: every error object is under it.
    prefix = str(s3.get("ErrorOutputPrefix") or "").split("!{", 1)[0]
    if not bucket or not prefix:
        return Check("firehose errors", WARN, "the delivery stream has no error prefix",
                     "redeploy the stack with this version of ddbtrail")
    where = f"s3://{bucket}/{prefix}"
    try:
        listed = client("s3", boto3_session, endpoint_url).list_objects_v2(
            Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as exc:  # noqa: BLE001
        return Check("firehose errors", FAIL, f"{where}: {aws_error(exc)}",
                     "grant s3:ListBucket on the lake bucket, or use another `boto3_session`")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    if keys:
        return Check("firehose errors", FAIL, f"records Firehose could not deliver, e.g. "
                     f"s3://{bucket}/{keys[0]}",
                     f"read the errorMessage in the objects under {where}, fix the cause, "
                     "re-send their rows, then delete them")
    return Check("firehose errors", OK, f"{where} empty")


def newest_partition(lake: Lake, table: str) -> tuple[str, int] | None:
    """(dt, newest file's mtime in epoch ms; 0 when unknown) of ``table``'s newest
    partition holding a data file; None when it has none. Lists partition folders, then
    the files of the newest ones only."""
    import pyarrow.fs as pafs

    try:
        infos = lake.fs.get_file_info(pafs.FileSelector(
            lake.path(f"table_name={table}"), allow_not_found=True))
    except OSError as exc:
        from ddbtrail.core.exceptions import LakeError

        raise LakeError(f"lake {lake.uri}: cannot be read ({exc})") from exc
    dts = sorted((i.base_name[3:] for i in infos
                  if i.type == pafs.FileType.Directory and i.base_name.startswith("dt=")),
                 reverse=True)
    for dt in dts:
        files = lake.data_files(table, dt_from=dt, dt_to=dt)
        if files:
            return dt, max(f.mtime_ms for f in files)
    return None


def check_freshness(lake: Lake, tables: Sequence[str], *,
                    max_age_hours: float = MAX_PARTITION_AGE_HOURS) -> list[Check]:
    """Per table: the newest data file of its newest partition was written within
    ``max_age_hours``."""
    from ddbtrail.core.exceptions import LakeError

    now = _now()
    out = []
    for table in tables:
        name = f"freshness {table}"
        fix = ("check the mapping, the capture function's errors and Firehose; if "
               f"{table} had no writes, run the canary (`canary` {table})")
        try:
            newest = newest_partition(lake, table)
        except LakeError as exc:
            out.append(Check(name, FAIL, str(exc), "check the lake URI and `boto3_session`"))
            continue
        if newest is None:
            out.append(Check(name, FAIL, f"no partition of {table} in {lake.uri}", fix))
            continue
        dt, mtime_ms = newest
        # Without a modification time, the end of the partition's day.
        written = (dt_mod.datetime.fromtimestamp(mtime_ms / 1000, dt_mod.UTC) if mtime_ms
                   else dt_mod.datetime.fromisoformat(dt + "T23:59:59+00:00"))
        hours = max((now - written).total_seconds() / 3600, 0.0)
        detail = f"newest partition dt={dt}, written {hours:,.1f} h ago"
        if hours > max_age_hours:
            out.append(Check(name, FAIL, detail + f" (limit {max_age_hours:g} h)", fix))
        else:
            out.append(Check(name, OK, detail))
    return out


def _columns(cols: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(c.get("Name", "")), str(c.get("Type", ""))) for c in cols]


def _compare_table(actual: dict[str, Any], expected: dict[str, Any],
                   tables: Sequence[str]) -> list[str]:
    """What differs between a Glue table and the TableInput derived from the row schema."""
    problems = []
    got, want = (_columns(actual.get("StorageDescriptor", {}).get("Columns", [])),
                 _columns(expected["StorageDescriptor"]["Columns"]))
    if got != want:
        missing = [f"{n} {t}" for n, t in want if (n, t) not in got]
        extra = [f"{n} {t}" for n, t in got if (n, t) not in want]
        problems.append("columns differ" + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unexpected {', '.join(extra)}" if extra else "")
                        + ("; order differs" if not missing and not extra else ""))
    if _columns(actual.get("PartitionKeys", [])) != _columns(expected["PartitionKeys"]):
        problems.append("partition keys differ")
    params, wanted = actual.get("Parameters", {}), expected["Parameters"]
    for key, value in wanted.items():
        if not key.startswith("projection.") or key.endswith((".range", ".values")):
            continue
        if params.get(key) != value:
            problems.append(f"{key}={params.get(key)!r}, expected {value!r}")
    enum = next((k for k in wanted if k.endswith("table_name.values")), None)
    if enum is not None:
        listed = set(str(params.get(enum, "")).split(","))
        absent = [t for t in tables if t not in listed]
        if absent:
            problems.append(f"{enum} lacks {', '.join(absent)}: their partitions are "
                            "invisible to Athena")
    template = "storage.location.template"
    if params.get(template) != wanted[template]:
        problems.append(f"{template}={params.get(template)!r}, expected {wanted[template]!r}")
    return problems


def check_glue(database: str, tables: Sequence[str], *, boto3_session: Any = None,
               endpoint_url: str | None = None) -> list[Check]:
    """The change table and the snapshot table exist in ``database`` with the row
    schema's columns, partition keys and partition projection (Hive tables); an Iceberg
    change table has the row schema's columns."""
    glue = client("glue", boto3_session, endpoint_url)
    names = tables or ["placeholder"]
    out = []
    for table_name in (catalog.TABLE_NAME, catalog.SNAPSHOT_TABLE_NAME):
        name = f"glue table {database}.{table_name}"
        try:
            actual = glue.get_table(DatabaseName=database, Name=table_name)["Table"]
        except Exception as exc:  # noqa: BLE001
            out.append(Check(name, FAIL, aws_error(exc),
                             "redeploy the stack (cdk deploy): it creates the table"))
            continue
        location = str(actual.get("StorageDescriptor", {}).get("Location", ""))
        # Glue marks an Iceberg table with table_type; its location also says so.
        if (str(actual.get("Parameters", {}).get("table_type", "")).upper() == "ICEBERG"
                or location.rstrip("/").endswith(catalog.ICEBERG_SUBDIR.rstrip("/"))):
            got = {str(c.get("Name")) for c in actual.get("StorageDescriptor", {})
                   .get("Columns", [])}
            missing = [c for c in COLUMN_NAMES if c not in got]
            problems = [f"missing columns {', '.join(missing)}"] if missing else []
        else:
            if table_name == catalog.TABLE_NAME:
                serde = str(actual.get("StorageDescriptor", {}).get("SerdeInfo", {})
                            .get("SerializationLibrary", ""))
                fmt = "parquet" if "parquet" in serde.lower() else "jsonl"
                lake_location = location
                expected = catalog.table_input(fmt, lake_location or "s3://lake/", names)
            else:
                lake_location = location.rstrip("/").removesuffix("/snapshots") + "/"
                expected = catalog.snapshot_table_input(lake_location, names)
            problems = _compare_table(actual, expected, tables)
        if problems:
            out.append(Check(name, FAIL, "; ".join(problems),
                             "redeploy the stack with this version of ddbtrail (cdk deploy)"))
        else:
            out.append(Check(name, OK, "matches the row schema and its projection"))
    return out


def check_workgroup(workgroup: str | None, *, boto3_session: Any = None,
                    endpoint_url: str | None = None) -> Check:
    """The Athena workgroup the saved queries run in exists and is enabled."""
    if not workgroup:
        return Check("workgroup", FAIL, "the stack has no AthenaWorkGroup output",
                     "redeploy the stack with this version of ddbtrail")
    try:
        group = client("athena", boto3_session, endpoint_url).get_work_group(
            WorkGroup=workgroup)["WorkGroup"]
    except Exception as exc:  # noqa: BLE001
        return Check("workgroup", FAIL, f"{workgroup}: {aws_error(exc)}",
                     "redeploy the stack (cdk deploy): it creates the workgroup")
    state = str(group.get("State", "ENABLED"))
    if state != "ENABLED":
        return Check("workgroup", FAIL, f"{workgroup} is {state}",
                     f"aws athena update-work-group --work-group {workgroup} --state ENABLED")
    return Check("workgroup", OK, f"{workgroup} enabled")


def check_maintenance(state_machines: Sequence[str], *, boto3_session: Any = None,
                      endpoint_url: str | None = None) -> list[Check]:
    """Per state machine: its last finished execution succeeded."""
    if not state_machines:
        return [Check("maintenance", FAIL, "the stack has no maintenance state machine",
                      "redeploy the stack with this version of ddbtrail")]
    sfn = client("stepfunctions", boto3_session, endpoint_url)
    out = []
    for arn in state_machines:
        short = arn.rsplit(":", 1)[-1]
        name = f"maintenance {short}"
        try:
            runs = sfn.list_executions(stateMachineArn=arn, maxResults=20)["executions"]
        except Exception as exc:  # noqa: BLE001
            out.append(Check(name, FAIL, aws_error(exc), "redeploy the stack"))
            continue
        finished = sorted((r for r in runs if r.get("status") != "RUNNING"),
                          key=lambda r: r["startDate"], reverse=True)
        if not finished:
            out.append(Check(name, WARN, "no finished run yet (it runs once a day)",
                             f"aws stepfunctions start-execution --state-machine-arn {arn}"))
            continue
        last = finished[0]
        when = last["startDate"].astimezone(dt_mod.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if last.get("status") in _FINISHED_BAD:
            out.append(Check(name, FAIL, f"last run {last['status']} (started {when})",
                             "aws stepfunctions describe-execution --execution-arn "
                             f"{last['executionArn']}: fix the failing step (an Athena "
                             "query, or a compaction Lambda's partition), then start the "
                             "machine again"))
        else:
            out.append(Check(name, OK, f"last run {last.get('status')} (started {when})"))
    return out


def check_compaction(lake: Lake, *, grace_days: int = COMPACTION_GRACE_DAYS,
                     today: str | None = None) -> Check:
    """Compaction lag: the oldest closed Hive partition not yet compacted; a warning when
    it is more than ``grace_days`` old (the stack's daily compaction failed or did not
    run; docs/deploy.md, Compaction)."""
    from ddbtrail.core.exceptions import LakeError
    from ddbtrail.lake.compact import plan, today_utc

    today = today or today_utc()
    try:
        parts = plan(lake, today=today)
    except LakeError as exc:
        return Check("compaction lag", FAIL, str(exc), "check the lake URI and `boto3_session`")
    if not parts:
        return Check("compaction lag", OK, "every closed partition is compacted")
    oldest = min(parts, key=lambda p: (p.dt, p.table_name))
    days = (dt_mod.date.fromisoformat(today) - dt_mod.date.fromisoformat(oldest.dt)).days
    detail = (f"{len(parts)} closed partition(s) not compacted; oldest "
              f"{oldest.table_name}/dt={oldest.dt} ({days} day(s))")
    if days > grace_days:
        return Check("compaction lag", WARN, detail, f"ddbtrail compact --lake {lake.uri}")
    return Check("compaction lag", OK, detail)


def run_checks(stack: str, *, deployment: Deployment | None = None, lake: Lake | None = None,
               max_partition_age_hours: float = MAX_PARTITION_AGE_HOURS,
               max_iterator_age_ms: float = MAX_ITERATOR_AGE_MS,
               on_check: Callable[[Check], None] | None = None,
               boto3_session: Any = None, endpoint_url: str | None = None) -> list[Check]:
    """Every check of stack ``stack``, in pipeline order: streams, mappings, on-failure
    queues, Firehose, freshness, Glue, workgroup, maintenance, compaction lag.

    ``deployment`` (from ``discover``) saves reading the stack again; ``lake`` defaults
    to the stack's LakeUri output. ``on_check`` sees each result as it
    is made. Raises PermanentAwsError when the stack cannot be read; everything found
    after that is a Check.
    """
    aws = {"boto3_session": boto3_session, "endpoint_url": endpoint_url}
    dep = deployment or discover(stack, **aws)
    out: list[Check] = []

    def add(checks: Sequence[Check]) -> None:
        for c in checks:
            out.append(c)
            if on_check is not None:
                on_check(c)

    mappings, problems = load_mappings(dep, **aws)
    add(problems)
    if not mappings and not problems:
        add([Check("mappings", FAIL, f"stack {stack} has no mapping from a DynamoDB stream",
                   "deploy with -c tables=NAME (docs/deploy.md)")])
    tables = list(dict.fromkeys(m.table for m in mappings))
    add(check_streams(mappings, **aws))
    add(check_mappings(mappings, max_iterator_age_ms=max_iterator_age_ms, **aws))
    add(check_on_failure_queues(mappings, delivery_stream=dep.delivery_stream, **aws))
    add(check_firehose(dep.delivery_stream, **aws))
    the_lake = lake or _lake_of(dep, boto3_session, endpoint_url)
    iceberg = delivery_kind(dep.delivery_stream, **aws) == "iceberg"
    if the_lake is None:
        add([Check("lake", FAIL, "the stack has no LakeUri output",
                   "redeploy the stack with this version of ddbtrail")])
    elif iceberg:
        add([Check("freshness", WARN, "not checked on an Iceberg lake (no Hive partitions)",
                   "run the canary (`canary` TABLE) to see a change arrive")])
    else:
        add(check_freshness(the_lake, tables, max_age_hours=max_partition_age_hours))
    add(check_glue(dep.database, tables, **aws))
    add([check_workgroup(dep.workgroup, **aws)])
    add(check_maintenance(dep.state_machines, **aws))
    if the_lake is not None and not iceberg:
        add([check_compaction(the_lake)])
    return out


def _lake_of(dep: Deployment, boto3_session: Any, endpoint_url: str | None) -> Lake | None:
    from ddbtrail.lake.files import Lake

    if not dep.lake_uri:
        return None
    region = getattr(boto3_session, "region_name", None)
    return Lake.open(dep.lake_uri, endpoint_url=endpoint_url, region=region)
