"""Daily lake maintenance on AWS's engines: EventBridge Scheduler -> Step Functions -> Athena.

Once a day the schedule starts a state machine that runs Athena through Step Functions'
native integration (``athena:startQueryExecution.sync``), so no data passes through a
machine of ours:

1. ``CREATE OR REPLACE VIEW`` for every saved view (``athena_queries/view_*.sql``), in
   dependency order: the saved queries select from ``changes_ordered`` and
   ``snapshot_status``, so they exist from the first run on;
2. per captured table (a Map state): ``snapshot_candidates.sql`` lists the finished
   snapshots it may build on, newest first, and ``snapshot_check.sql`` is asked of each in
   turn (a Choice loop) until one is not stale: it counts only the change partitions a
   late change can still reach (the build's last two or three days), so a daily run never
   reads the whole history. ``INSERT INTO snapshots <snapshot_state.sql>`` writes the
   state at the end of the previous UTC day and what the build read (per change
   partition, the distinct events at or before it: the staleness checks compare the lake
   with them), ``INSERT INTO snapshots <snapshot_complete.sql>`` marks it finished.

The SQL is the saved files' text, sent with their ``?`` parameters as execution
parameters; locally the same files run on DuckDB (``ddbtrail snapshot``). Compaction of
closed Hive partitions is not part of this machine (see docs/jobs.md); an Iceberg lake
uses its table optimizers. A failed, timed-out or aborted run raises an alarm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from aws_cdk import Aws, Duration, Stack, TimeZone
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ddbtrail.catalog import glue as catalog
from ddbtrail.core.row import SNAPSHOT_DIR
from ddbtrail.query import saved
from ddbtrail.query.snapshots import NO_BUILD, NO_SNAPSHOT, S3_SETTLE_SECONDS
from infra import constants as C
from infra.constructs.alarms import run_alarms
from infra.constructs.nag import acknowledge, arn_finding, depends_only_on

ATHENA_SYNC: Final = "arn:aws:states:::athena:startQueryExecution.sync"
ATHENA_RESULTS: Final = "arn:aws:states:::athena:getQueryResults"
# Saved views in the order they must be created (a view reads the ones before it).
VIEW_ORDER: Final = ("view_changes_ordered", "view_snapshot_status", "view_current_state",
                     "view_changes_dedup")
# JSONata values of the saved queries' parameters, as SQL literals (execution parameters).
_VALUES: Final = {
    "table_name": "$table",
    "at": "$at",
    "made_at": "$madeAt",
    "visible_before": "$visibleBefore",
    "base": "$base",
    "base_made_at": "$baseMadeAt",
    # The candidate snapshot_check is asked about (row $next of snapshot_candidates).
    "candidate": "$fromMillis($number($candidates[$next].Data[0].VarCharValue))",
    "candidate_made_at": "$candidates[$next].Data[1].VarCharValue",
}
_ATHENA_RETRY: Final = [{
    "ErrorEquals": ["Athena.TooManyRequestsException", "Athena.InternalServerException"],
    "IntervalSeconds": 30, "MaxAttempts": 4, "BackoffRate": 2.0, "JitterStrategy": "FULL"}]


def insert_sql(query: saved.Query) -> str:
    """``INSERT INTO snapshots <the saved SELECT>``: what Athena runs for ``query``."""
    return f"INSERT INTO {catalog.SNAPSHOT_TABLE_NAME}\n{query.sql}"


def execution_parameters(query: saved.Query) -> list[str]:
    """JSONata expressions, one per ``?`` in order, each a quoted SQL string literal."""
    out = []
    for p in query.params:
        if p.name not in _VALUES:
            raise ValueError(f"{query.name}: no state machine value for parameter {p.name}")
        out.append("{% \"'\" & " + _VALUES[p.name] + " & \"'\" %}")
    return out


def definition(*, tables: Sequence[str], database: str, workgroup: str,
               settle_seconds: int = S3_SETTLE_SECONDS,
               reconcile: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The state machine's Amazon States Language (JSONata), from the saved SQL;
    ``reconcile``: the evidence states (``evidence.reconcile_states``), run last."""
    queries = {q.name: q for q in saved.catalogue()}
    context = {"Database": database}

    def athena(sql: str, params: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        arguments: dict[str, Any] = {"QueryString": sql, "WorkGroup": workgroup,
                                     "QueryExecutionContext": context}
        if params:
            arguments["ExecutionParameters"] = params
        return {"Type": "Task", "Resource": ATHENA_SYNC, "Arguments": arguments,
                "Retry": _ATHENA_RETRY, **extra}

    def results(**extra: Any) -> dict[str, Any]:
        """getQueryResults of the query whose state assigned ``keep_id``."""
        return {"Type": "Task", "Resource": ATHENA_RESULTS,
                "Arguments": {"QueryExecutionId": "{% $queryId %}"}, "Retry": _ATHENA_RETRY,
                **extra}

    states: dict[str, Any] = {
        "Instants": {
            "Type": "Pass",
            "Comment": "The snapshot instant is the end of the previous UTC day.",
            "Assign": {
                "tables": list(tables),
                "start": "{% $toMillis($states.context.Execution.StartTime) %}",
            },
            "Next": "Times",
        },
        "Times": {
            "Type": "Pass",
            "Assign": {
                "at": "{% $fromMillis($floor($start / 86400000) * 86400000 - 1) %}",
                "madeAt": "{% $fromMillis($start) %}",
                "visibleBefore": "{% $fromMillis($start - " + str(settle_seconds * 1000) + ") %}",
            },
            "Next": _state_name(VIEW_ORDER[0]),
        },
    }
    for i, name in enumerate(VIEW_ORDER):
        view = queries[name]
        nxt = _state_name(VIEW_ORDER[i + 1]) if i + 1 < len(VIEW_ORDER) else "Tables"
        states[_state_name(name)] = athena(
            f"CREATE OR REPLACE VIEW {saved.view_name(view)} AS\n{view.sql}", Next=nxt)
    keep_id = {"queryId": "{% $states.result.QueryExecution.QueryExecutionId %}"}
    candidates_q, check_q, state_q, complete_q = (queries[n] for n in (
        "snapshot_candidates", "snapshot_check", "snapshot_state", "snapshot_complete"))
    states["Tables"] = {
        "Type": "Map",
        "Items": "{% $tables %}",
        "MaxConcurrency": 2,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Table",
            "States": {
                # Assign takes effect from the next state: $table must be set before the
                # first query that sends it.
                "Table": {"Type": "Pass", "Assign": {"table": "{% $states.input.table %}"},
                          "Next": "FindBase"},
                "FindBase": athena(candidates_q.sql, execution_parameters(candidates_q),
                                   Assign=keep_id, Next="ReadCandidates"),
                # Row 0 is the header: candidates are rows 1.. (at most 30, one page).
                "ReadCandidates": results(
                    Assign={"candidates": "{% $states.result.ResultSet.Rows %}", "next": 1},
                    Next="NextCandidate"),
                "NextCandidate": {
                    "Type": "Choice",
                    "Choices": [{"Condition": "{% $next < $count($candidates) %}",
                                 "Next": "CheckCandidate"}],
                    # None left (or none at all): build from the whole history.
                    "Default": "WriteSnapshot",
                    "Assign": {"base": NO_SNAPSHOT, "baseMadeAt": NO_BUILD},
                },
                "CheckCandidate": athena(check_q.sql, execution_parameters(check_q),
                                         Assign=keep_id, Next="ReadCheck"),
                # One row (row 1): late_changes, stale.
                "ReadCheck": results(
                    Output="{% $states.result.ResultSet.Rows[1].Data[1].VarCharValue %}",
                    Next="Fresh"),
                "Fresh": {
                    "Type": "Choice",
                    "Choices": [{
                        "Condition": "{% $states.input = 'false' %}",
                        "Assign": {
                            "base": "{% " + _VALUES["candidate"] + " %}",
                            "baseMadeAt": "{% " + _VALUES["candidate_made_at"] + " %}",
                        },
                        "Next": "WriteSnapshot"}],
                    "Default": "NextCandidate",
                    "Assign": {"next": "{% $next + 1 %}"},
                },
                "WriteSnapshot": athena(insert_sql(state_q), execution_parameters(state_q),
                                        Next="MarkComplete"),
                "MarkComplete": athena(insert_sql(complete_q),
                                       execution_parameters(complete_q), End=True),
            },
        },
        # The table being built is the Map item; the other variables come from above.
        "ItemSelector": {"table": "{% $states.context.Map.Item.Value %}"},
        "End": True,
    }
    # --- evidence (issue 27): the reconciliation, in states of its own after the snapshots
    if reconcile:
        del states["Tables"]["End"]
        states["Tables"]["Next"] = next(iter(reconcile))
        states.update(reconcile)
    # --- end of evidence
    return {
        "Comment": "ddbtrail daily maintenance: saved views, then each table's state snapshot",
        "QueryLanguage": "JSONata",
        "StartAt": "Instants",
        "States": states,
        "TimeoutSeconds": 6 * 3600,
    }


def _state_name(view: str) -> str:
    return "CreateView_" + view.removeprefix("view_")


class Maintenance(Construct):
    """``state_machine``, its ``role``, the daily ``schedule`` and the ``alarms``."""

    def __init__(self, scope: Construct, cid: str, *, tables: Sequence[str], database: str,
                 workgroup: str, lake_bucket: s3.IBucket, lake_key: kms.IKey,
                 results_bucket: s3.IBucket, alarm_topic: sns.ITopic,
                 hour_utc: int = 1, minute: int = 30,
                 reconcile: Mapping[str, Any] | None = None) -> None:
        super().__init__(scope, cid)
        if not tables:
            raise ValueError("maintenance needs at least one table")
        stack = Stack.of(self)
        glue_arn = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        views = [saved.view_name(q) for q in saved.catalogue() if q.kind == "view"]
        lake_prefix = C.LAKE_PREFIX.strip("/")
        self.role = iam.Role(self, "Role",
                             assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                             description="ddbtrail daily maintenance: Athena over the lake")
        statements = [
            iam.PolicyStatement(sid="RunAthena", actions=[
                "athena:StartQueryExecution", "athena:GetQueryExecution",
                "athena:GetQueryResults", "athena:StopQueryExecution"],
                resources=[f"arn:{Aws.PARTITION}:athena:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                           f"workgroup/{workgroup}"]),
            iam.PolicyStatement(sid="ReadCatalog", actions=[
                "glue:GetDatabase", "glue:GetTable", "glue:GetPartition", "glue:GetPartitions"],
                resources=[f"{glue_arn}:catalog", f"{glue_arn}:database/{database}",
                           *(f"{glue_arn}:table/{database}/{t}"
                             for t in (catalog.TABLE_NAME, catalog.SNAPSHOT_TABLE_NAME,
                                       *views))]),
            iam.PolicyStatement(sid="SavedViews", actions=[
                "glue:CreateTable", "glue:UpdateTable"],
                resources=[f"{glue_arn}:catalog", f"{glue_arn}:database/{database}",
                           *(f"{glue_arn}:table/{database}/{v}" for v in views)]),
            iam.PolicyStatement(sid="SnapshotPartitions", actions=[
                "glue:BatchCreatePartition", "glue:CreatePartition"],
                resources=[f"{glue_arn}:catalog", f"{glue_arn}:database/{database}",
                           f"{glue_arn}:table/{database}/{catalog.SNAPSHOT_TABLE_NAME}"]),
            iam.PolicyStatement(sid="ListBuckets", actions=[
                "s3:ListBucket", "s3:GetBucketLocation"],
                resources=[lake_bucket.bucket_arn, results_bucket.bucket_arn]),
            iam.PolicyStatement(sid="ReadLake", actions=["s3:GetObject"],
                                resources=[lake_bucket.arn_for_objects(f"{lake_prefix}/*")]),
            iam.PolicyStatement(sid="WriteSnapshots", actions=[
                "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[lake_bucket.arn_for_objects(f"{lake_prefix}/{SNAPSHOT_DIR}/*")]),
            iam.PolicyStatement(sid="QueryResults", actions=[
                "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts"],
                resources=[results_bucket.arn_for_objects("results/*")]),
            iam.PolicyStatement(sid="LakeKeyViaS3", actions=[
                "kms:Decrypt", "kms:GenerateDataKey"], resources=[lake_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}),
        ]
        self.policy = iam.Policy(self, "Policy", roles=[self.role], statements=statements)
        body = definition(tables=tables, database=database, workgroup=workgroup,
                          reconcile=reconcile)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            definition_body=sfn.DefinitionBody.from_string(stack.to_json_string(body)),
            role=self.role, timeout=Duration.hours(6),
            comment="ddbtrail daily maintenance: views and state snapshots on Athena")
        # Runs must not start before the role's permissions exist (and cfn-lint W3005).
        depends_only_on(self.state_machine, self.policy)
        for rule, reason in (
                ("AwsSolutions-SF1", "Every state is an Athena query: Athena keeps each "
                 "query's text, state and failure reason, and a failed run raises the "
                 "alarm; execution logging would need logs:* on '*'."),
                ("AwsSolutions-SF2", "A daily run of three or four Athena queries per table "
                 "has no call graph worth tracing; X-Ray needs xray:Put* on '*'.")):
            acknowledge(self.state_machine, rule, reason)
        for suffix in (f"/{lake_prefix}/*", f"/{lake_prefix}/{SNAPSHOT_DIR}/*"):
            acknowledge(self.policy, arn_finding(lake_bucket, suffix),
                        "Athena reads every object of the lake prefix (partition "
                        "projection names no objects) and writes new snapshot objects "
                        "under snapshots/ only.")
        acknowledge(self.policy, arn_finding(results_bucket, "/results/*"),
                    "Athena writes one result object per query under the workgroup's "
                    "results/ prefix.")

        self.schedule = scheduler.Schedule(
            self, "Schedule",
            schedule=scheduler.ScheduleExpression.cron(
                minute=str(minute), hour=str(hour_utc), time_zone=TimeZone.ETC_UTC),
            target=scheduler_targets.StepFunctionsStartExecution(
                self.state_machine, retry_attempts=0),
            description="ddbtrail: daily lake maintenance (views, state snapshots)")

        self.alarms = run_alarms(
            self, self.state_machine, alarm_topic,
            "a daily maintenance run {kind}; as-of reads the whole history since the last "
            "snapshot until a run succeeds (see docs/jobs.md)")

