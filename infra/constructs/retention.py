"""Retention of an Iceberg lake by the table's own means (``-c format=iceberg
-c expire_days=N``): no S3 lifecycle rule ever expires or archives the table's files
(``infra/constructs/lake.py``); instead, once a day (``RETENTION_SCHEDULE``), Athena runs

    DELETE FROM "<database>"."changes" WHERE dt < '<the run's UTC date minus N days>'

through Step Functions (``athena:startQueryExecution.sync``). The delete is a new snapshot;
the files it no longer needs stay referenced by older snapshots until the Glue optimizer's
snapshot retention expires those (``SNAPSHOT_RETENTION_DAYS``, ``CleanExpiredFiles``) and its
orphan-file deletion removes the rest (``infra/constructs/iceberg.py``). A failed run raises
an alarm.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as C
from infra.constructs.alarms import run_alarms
from infra.constructs.catalog import Catalog
from infra.constructs.iceberg import TABLE_PREFIX, acknowledge_table_files, glue_statement
from infra.constructs.maintenance import ATHENA_SYNC
from infra.constructs.nag import acknowledge, arn_finding, depends_only_on

DAY_MS: Final = 86_400_000
_RETRY: Final = [{
    "ErrorEquals": ["Athena.TooManyRequestsException", "Athena.InternalServerException"],
    "IntervalSeconds": 30, "MaxAttempts": 4, "BackoffRate": 2.0, "JitterStrategy": "FULL"}]


def delete_sql(database: str, table: str) -> str:
    """The DELETE without its cut-off date (which ends it, quoted, at run time)."""
    return f'DELETE FROM "{database}"."{table}" WHERE dt < '


def definition(*, database: str, table: str, workgroup: str,
               expire_days: int) -> dict[str, Any]:
    """The state machine's Amazon States Language (JSONata)."""
    # dt is the event date (YYYY-MM-DD): rows of whole days older than expire_days go.
    cutoff = ("{% $fromMillis($toMillis($states.context.Execution.StartTime) - "
              f"{expire_days * DAY_MS}, '[Y0001]-[M01]-[D01]') %}}")
    query = "{% " + json.dumps(delete_sql(database, table) + "'") + " & $cutoff & \"'\" %}"
    return {
        "Comment": f"ddbtrail retention: delete changes older than {expire_days} days",
        "QueryLanguage": "JSONata",
        "StartAt": "Cutoff",
        "States": {
            "Cutoff": {"Type": "Pass", "Assign": {"cutoff": cutoff}, "Next": "DeleteOldRows"},
            "DeleteOldRows": {
                "Type": "Task", "Resource": ATHENA_SYNC, "Retry": _RETRY,
                "Arguments": {"QueryString": query, "WorkGroup": workgroup,
                              "QueryExecutionContext": {"Database": database}},
                "Output": {"cutoff": "{% $cutoff %}"},
                "End": True},
        },
        "TimeoutSeconds": 6 * 3600,
    }


class IcebergRetention(Construct):
    """``state_machine`` (Machine), its ``role``, the daily ``schedule`` and ``alarms``."""

    def __init__(self, scope: Construct, cid: str, *, expire_days: int, catalog: Catalog,
                 workgroup: str, lake_bucket: s3.IBucket, lake_key: kms.IKey,
                 results_bucket: s3.IBucket, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, cid)
        stack = Stack.of(self)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                             description="ddbtrail retention: Athena DELETE of old changes")
        self.policy = iam.Policy(self, "Policy", roles=[self.role], statements=[
            iam.PolicyStatement(sid="RunAthena", actions=[
                "athena:StartQueryExecution", "athena:GetQueryExecution",
                "athena:StopQueryExecution"],
                resources=[f"arn:{Aws.PARTITION}:athena:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                           f"workgroup/{workgroup}"]),
            glue_statement(catalog, "IcebergTable",
                           ["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"]),
            iam.PolicyStatement(sid="ListBuckets", actions=["s3:ListBucket",
                                                            "s3:GetBucketLocation"],
                                resources=[lake_bucket.bucket_arn, results_bucket.bucket_arn]),
            # Athena reads the table and writes the delete's new metadata and files.
            iam.PolicyStatement(sid="IcebergFiles", actions=["s3:GetObject", "s3:PutObject"],
                                resources=[lake_bucket.arn_for_objects(f"{TABLE_PREFIX}*")]),
            iam.PolicyStatement(sid="QueryResults", actions=[
                "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts"],
                resources=[results_bucket.arn_for_objects("results/*")]),
            iam.PolicyStatement(sid="LakeKeyViaS3", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                                resources=[lake_key.key_arn],
                                conditions={"StringEquals": {
                                    "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}),
        ])
        acknowledge_table_files(self.policy, lake_bucket)
        acknowledge(self.policy, arn_finding(results_bucket, "/results/*"),
                    "Athena writes one result object per query under the workgroup's "
                    "results/ prefix.")
        body = definition(database=catalog.database_name, table=catalog.table_name,
                          workgroup=workgroup, expire_days=expire_days)
        self.state_machine = sfn.StateMachine(
            self, "Machine",
            definition_body=sfn.DefinitionBody.from_string(stack.to_json_string(body)),
            role=self.role, timeout=Duration.hours(6),
            comment=f"ddbtrail retention: Athena DELETE of changes older than {expire_days} days")
        depends_only_on(self.state_machine, self.policy)
        for rule, reason in (
                ("AwsSolutions-SF1", "The one state is an Athena query: Athena keeps its text, "
                 "state and failure reason, and a failed run raises the alarm; execution "
                 "logging would need logs:* on '*'."),
                ("AwsSolutions-SF2", "A daily single Athena query has no call graph worth "
                 "tracing; X-Ray needs xray:Put* on '*'.")):
            acknowledge(self.state_machine, rule, reason)
        self.schedule = scheduler.Schedule(
            self, "Schedule",
            schedule=scheduler.ScheduleExpression.expression(C.RETENTION_SCHEDULE),
            target=scheduler_targets.StepFunctionsStartExecution(self.state_machine,
                                                                 retry_attempts=0),
            description=f"ddbtrail: daily delete of changes older than {expire_days} days")
        self.alarms = run_alarms(
            self, self.state_machine, alarm_topic,
            "a retention run {kind}; changes older than expire_days stay in the table "
            "until a run succeeds (docs/deploy.md, Retention)")
