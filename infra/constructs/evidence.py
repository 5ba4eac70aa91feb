"""Evidence in AWS (issue 27, docs/evidence.md): receipts, signed digests, reconciliation.

* Receipts: each capture (and redrive) Lambda writes one receipt per delivered batch under
  ``lake/_ddbtrail/receipts/`` (``capture.receipts_statements``: that prefix only); the Glue
  table ``receipts`` lets Athena read them.
* Digests: an hourly EventBridge Scheduler schedule runs ``handlers/seal_digests.py``
  (``ddbtrail.evidence.seal``), which writes a digest per table for each closed hour and signs
  it with a KMS asymmetric key (ECC_NIST_P256). The key policy lets only that function's role
  sign; the account administers the key and reads its public key, but cannot sign. It runs
  one at a time (reserved concurrency 1): the chain has a single writer.
* Compaction (``compaction.py``, Hive formats): the compaction Lambda leaves the old files
  and a pending-replacement note; the digest function writes the compaction digest, then
  deletes the old files and the note (``ddbtrail.lake.replacements``). It alone deletes.
* Reconciliation: states of the daily maintenance machine (``reconcile_states``, after the
  snapshots) run ``athena_queries/reconcile_receipts.sql`` per table and publish
  ``ReceivedNotInLake`` and ``InLakeWithoutReceipt`` (namespace ddbtrail, dimension Table);
  an alarm per table and metric fires on either above zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from ddbtrail.catalog import glue as catalog
from ddbtrail.evidence import signing
from ddbtrail.query import saved
from infra import constants as C
from infra.constructs.capture import python_function, staged_code
from infra.constructs.compaction import sdk_for_pandas_layer
from infra.constructs.maintenance import ATHENA_RESULTS, ATHENA_SYNC
from infra.constructs.nag import acknowledge, arn_finding, depends_only_on

PUT_METRIC_DATA: Final = "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
RECONCILE_QUERY: Final = "reconcile_receipts"
RECONCILE_STATE: Final = "Reconcile"
# The reconciliation's output column behind each metric (C.RECONCILE_METRICS, in order).
METRIC_COLUMNS: Final = {"ReceivedNotInLake": "received_not_in_lake",
                         "InLakeWithoutReceipt": "in_lake_without_receipt"}
# JSONata values of the reconciliation's parameters (assigned in ReconcileTable).
_VALUES: Final = {"table_name": "$table", "from": "$windowFrom", "to": "$windowTo"}
# The window is the UTC day before the run: closed, and ended over an hour before the daily
# run (the query wants its end 15 minutes past, for Firehose's buffer).
_DAY_MS: Final = 86_400_000
_TODAY_MS: Final = (f"$floor($toMillis($states.context.Execution.StartTime) / {_DAY_MS})"
                    f" * {_DAY_MS}")
_RETRY: Final = [{  # as the maintenance's own Athena tasks
    "ErrorEquals": ["Athena.TooManyRequestsException", "Athena.InternalServerException"],
    "IntervalSeconds": 30, "MaxAttempts": 4, "BackoffRate": 2.0, "JitterStrategy": "FULL"}]
# Everything but using the key: kms:Sign is the digest role's alone, and kms:CreateGrant is
# left out since a grant could hand Sign to anyone. GetPublicKey and Verify are for auditors.
KEY_ADMIN_ACTIONS: Final = (
    "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetPublicKey", "kms:Verify",
    "kms:EnableKey", "kms:DisableKey", "kms:UpdateKeyDescription", "kms:ListResourceTags",
    "kms:TagResource", "kms:UntagResource", "kms:CreateAlias", "kms:UpdateAlias",
    "kms:DeleteAlias", "kms:ListGrants", "kms:RevokeGrant", "kms:ListKeyPolicies",
    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion")


def reconcile_states(*, database: str, workgroup: str) -> dict[str, Any]:
    """The reconciliation's states (JSONata), entered at ``RECONCILE_STATE``: per table, the
    saved reconciliation over the previous UTC day on Athena, then both metrics, each the
    sum of its column over the rows (0 when there are none)."""
    query = {q.name: q for q in saved.catalogue()}[RECONCILE_QUERY]
    params = []
    for p in query.params:
        if p.name not in _VALUES:
            raise ValueError(f"{query.name}: no state machine value for parameter {p.name}")
        params.append("{% \"'\" & " + _VALUES[p.name] + " & \"'\" %}")
    columns = [c for c, _ in query.outputs]
    missing = [c for c in METRIC_COLUMNS.values() if c not in columns]
    if missing:
        raise ValueError(f"{query.name}: no output column {', '.join(missing)}")
    metric_data = [{
        "MetricName": metric,
        "Dimensions": [{"Name": C.RECONCILE_DIMENSION, "Value": "{% $table %}"}],
        # Row 0 is the header; the sum of no rows is 0 (a healthy, quiet table).
        "Value": "{% $sum([$rows[[1..$count($rows)]].$number(Data["
                 f"{columns.index(column)}].VarCharValue)]) %}}",
        "Unit": "Count",
    } for metric, column in METRIC_COLUMNS.items()]
    arguments: dict[str, Any] = {"QueryString": query.sql, "WorkGroup": workgroup,
                                 "QueryExecutionContext": {"Database": database}}
    if params:
        arguments["ExecutionParameters"] = params
    return {RECONCILE_STATE: {
        "Type": "Map",
        "Comment": "Evidence: what the captures received against what the lake holds",
        "Items": "{% $tables %}",
        "MaxConcurrency": 2,
        "ItemSelector": {"table": "{% $states.context.Map.Item.Value %}"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "ReconcileTable",
            "States": {
                # Assign takes effect from the next state, the first that sends them.
                "ReconcileTable": {"Type": "Pass", "Assign": {
                    "table": "{% $states.input.table %}",
                    "windowFrom": f"{{% $fromMillis({_TODAY_MS} - {_DAY_MS}) %}}",
                    "windowTo": f"{{% $fromMillis({_TODAY_MS}) %}}"},
                    "Next": "RunReconcile"},
                "RunReconcile": {
                    "Type": "Task", "Resource": ATHENA_SYNC, "Arguments": arguments,
                    "Retry": _RETRY,
                    "Assign": {"queryId": "{% $states.result.QueryExecution.QueryExecutionId %}"},
                    "Next": "ReadReconcile"},
                "ReadReconcile": {
                    "Type": "Task", "Resource": ATHENA_RESULTS,
                    "Arguments": {"QueryExecutionId": "{% $queryId %}"}, "Retry": _RETRY,
                    "Assign": {"rows": "{% $states.result.ResultSet.Rows %}"},
                    "Next": "PublishReconcile"},
                "PublishReconcile": {
                    "Type": "Task", "Resource": PUT_METRIC_DATA,
                    "Arguments": {"Namespace": C.METRICS_NAMESPACE, "MetricData": metric_data},
                    "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5,
                               "MaxAttempts": 3, "BackoffRate": 2.0}],
                    "End": True},
            },
        },
        "End": True,
    }}


class Evidence(Construct):
    """``signing_key``, the digest ``function`` (its ``role``, ``policy``, hourly
    ``schedule``), ``receipts_table``, ``reconcile_policy`` (on the maintenance role) and
    ``alarms`` (by construct id)."""

    def __init__(self, scope: Construct, cid: str, *, tables: Mapping[str, str],
                 database: glue.CfnDatabase, lake_bucket: s3.IBucket, lake_key: kms.IKey,
                 lake_uri: str, maintenance_role: iam.IRole, alarm_topic: sns.ITopic,
                 powertools: lambda_.ILayerVersion, key_alias: str,
                 completes_compactions: bool = False) -> None:
        """``tables``: each captured table's construct id (``OrdersCapture`` -> ``Orders``);
        ``key_alias``: the signing key's alias (``alias/`` is added), for auditors;
        ``completes_compactions``: the stack compacts in AWS, so the digest function deletes
        the files compactions replaced (module docstring)."""
        super().__init__(scope, cid)
        glue_arn = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        db_name = str(database.database_input.name)  # type: ignore[union-attr]
        lake_prefix = C.LAKE_PREFIX.strip("/")
        action = cw_actions.SnsAction(alarm_topic)
        self.alarms: dict[str, cw.Alarm] = {}

        # --- the receipts table (Athena reads it for the reconciliation)
        self.receipts_table = glue.CfnTable(
            self, "ReceiptsTable", catalog_id=Aws.ACCOUNT_ID, database_name=db_name,
            table_input=glue.CfnTable.TableInputProperty(name=catalog.RECEIPTS_TABLE_NAME))
        self.receipts_table.add_property_override(
            "TableInput", catalog.receipts_table_input(lake_uri, list(tables)))
        self.receipts_table.node.add_dependency(database)

        # --- the digest function and its signing key
        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS,
                                  removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description="ddbtrail digests: seal and sign the lake's closed hours")
        self.policy = iam.Policy(self, "Policy", roles=[self.role], statements=[
            iam.PolicyStatement(sid="ListLake", actions=["s3:ListBucket"],
                                resources=[lake_bucket.bucket_arn]),
            iam.PolicyStatement(sid="ReadLake", actions=["s3:GetObject"],
                                resources=[lake_bucket.arn_for_objects(f"{lake_prefix}/*")]),
            iam.PolicyStatement(sid="WriteDigests", actions=["s3:PutObject"],
                                resources=[lake_bucket.arn_for_objects(f"{C.DIGESTS_PREFIX}*")]),
            *([iam.PolicyStatement(sid="CompleteCompactions", actions=["s3:DeleteObject"],
                                   resources=[
                                       lake_bucket.arn_for_objects(f"{lake_prefix}/table_name=*"),
                                       lake_bucket.arn_for_objects(
                                           f"{C.REPLACEMENTS_PREFIX}*")])]
              if completes_compactions else []),
            iam.PolicyStatement(sid="LakeKeyViaS3", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                                resources=[lake_key.key_arn],
                                conditions={"StringEquals": {
                                    "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}),
            iam.PolicyStatement(sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[log_group.log_group_arn]),
        ])
        acknowledge(self.policy, arn_finding(lake_bucket, f"/{lake_prefix}/*"),
                    "A digest hashes every data file of its hour, whose names Firehose "
                    "generates: it reads the lake prefix and writes only under digests/.")
        acknowledge(self.policy, arn_finding(lake_bucket, f"/{C.DIGESTS_PREFIX}*"),
                    "A digest is one new object per table and hour under the digests prefix.")
        if completes_compactions:
            acknowledge(self.policy, arn_finding(lake_bucket, f"/{lake_prefix}/table_name=*"),
                        "After signing a compaction's digest, the function deletes the files "
                        "it replaced, in any partition (names Firehose generates): the data "
                        "partitions of the lake prefix only.")
            acknowledge(self.policy, arn_finding(lake_bucket, f"/{C.REPLACEMENTS_PREFIX}*"),
                        "The compactions' pending-replacement notes it has completed, one "
                        "object each under the replacements prefix.")

        # A key policy of our own replaces CDK's default (kms:* for the account, which would
        # let any IAM principal granted kms:Sign sign): only the digest role signs.
        self.signing_key = kms.Key(
            self, "SigningKey", key_spec=kms.KeySpec(signing.KMS_KEY_SPEC),  # KmsSigner's
            key_usage=kms.KeyUsage.SIGN_VERIFY, removal_policy=RemovalPolicy.RETAIN,
            alias=key_alias,
            description="ddbtrail: signs the lake's hourly digests (docs/evidence.md)",
            policy=iam.PolicyDocument(statements=[
                iam.PolicyStatement(
                    sid="AccountAdministersAndVerifiesButCannotSign",
                    principals=[iam.AccountRootPrincipal()], actions=list(KEY_ADMIN_ACTIONS),
                    resources=["*"]),  # in a key policy, "*" is this key
                iam.PolicyStatement(
                    sid="OnlyTheDigestFunctionSigns", principals=[self.role],
                    actions=["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"],
                    resources=["*"]),
            ]))
        self.function = _digest_function(self, role=self.role, log_group=log_group,
                                         powertools=powertools, lake_uri=lake_uri,
                                         key=self.signing_key)
        # Runs must not start before the role's permissions exist (and cfn-lint W3005).
        depends_only_on(self.function, self.policy)
        # The L1 schedule with a role of our own: the L2 target's grantInvoke would also
        # name every version and alias (<function arn>:*).
        schedule_role = iam.Role(
            self, "ScheduleRole", assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}),
            description="ddbtrail digests: the hourly schedule invokes the digest function")
        schedule_policy = iam.Policy(self, "SchedulePolicy", roles=[schedule_role], statements=[
            iam.PolicyStatement(sid="InvokeDigestFunction", actions=["lambda:InvokeFunction"],
                                resources=[self.function.function_arn])])
        self.schedule = scheduler.CfnSchedule(
            self, "Schedule",
            schedule_expression=f"cron({C.DIGEST_SCHEDULE_MINUTE} * * * ? *)",
            schedule_expression_timezone="Etc/UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            # No retries: the next hour's run seals every closed hour not yet sealed.
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn, role_arn=schedule_role.role_arn,
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=0)),
            description="ddbtrail: hourly signed digests of the lake's closed hours")
        self.schedule.node.add_dependency(schedule_policy)
        self._alarm("DigestErrors", "the hourly digest function failed; digests wait for "
                    "the next run (see docs/evidence.md)",
                    self.function.metric_errors(period=Duration.hours(1), statistic="Sum"),
                    action)

        # --- the reconciliation: what the maintenance role needs for its states
        self.reconcile_policy = iam.Policy(self, "ReconcilePolicy", roles=[maintenance_role],
                                           statements=[
            iam.PolicyStatement(sid="ReadReceiptsTable", actions=[
                "glue:GetTable", "glue:GetPartition", "glue:GetPartitions"],
                resources=[f"{glue_arn}:catalog", f"{glue_arn}:database/{db_name}",
                           f"{glue_arn}:table/{db_name}/{catalog.RECEIPTS_TABLE_NAME}"]),
            # PutMetricData has no resource ARN; the namespace condition is its scope.
            iam.PolicyStatement(sid="PublishReconciliation", actions=["cloudwatch:PutMetricData"],
                                resources=["*"], conditions={"StringEquals": {
                                    "cloudwatch:namespace": C.METRICS_NAMESPACE}}),
        ])
        acknowledge(self.reconcile_policy, "AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:PutMetricData supports no resource ARN; the statement is "
                    "limited to the ddbtrail namespace by the cloudwatch:namespace condition.")
        for table, tid in tables.items():
            for metric, what in (
                    ("ReceivedNotInLake", "changes the capture handed to delivery are "
                     "missing from the lake"),
                    ("InLakeWithoutReceipt", "lake rows that no capture receipt accounts for")):
                self._alarm(
                    f"{tid}{metric}", f"{table}: {what} (daily reconciliation; "
                    "'ddbtrail verify' names them)",
                    cw.Metric(namespace=C.METRICS_NAMESPACE, metric_name=metric,
                              dimensions_map={C.RECONCILE_DIMENSION: table},
                              statistic="Maximum", period=Duration.days(1)),
                    action)

    def _alarm(self, cid: str, description: str, metric: cw.IMetric,
               action: cw_actions.SnsAction) -> None:
        """An alarm on ``metric`` above zero, notifying the alarm topic."""
        alarm = cw.Alarm(self, f"{cid}Alarm", metric=metric, threshold=0, evaluation_periods=1,
                         comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                         treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                         alarm_description=f"ddbtrail: {description}")
        alarm.add_alarm_action(action)
        self.alarms[cid] = alarm


def _digest_function(scope: Construct, *, role: iam.IRole, log_group: logs.ILogGroup,
                     powertools: lambda_.ILayerVersion, lake_uri: str,
                     key: kms.IKey) -> lambda_.Function:
    """``handlers/seal_digests.py`` with the package; pyarrow (it reads data files) comes
    from AWS's SDK for pandas layer, as the compaction function's does."""
    return python_function(
        scope, "Function", handler=C.DIGEST_HANDLER,
        code=staged_code(scope, C.DIGEST_HANDLER_FILE, "digests"),
        layers=[sdk_for_pandas_layer(scope), powertools], memory_mb=C.DIGEST_LAMBDA_MEMORY_MB,
        timeout_seconds=C.DIGEST_LAMBDA_TIMEOUT_SECONDS, role=role, log_group=log_group,
        reserved_concurrency=1,  # one writer of each chain and of its deletes
        environment={"LAKE_URI": lake_uri, "SIGNING_KEY_ID": key.key_arn,
                     "POWERTOOLS_SERVICE_NAME": "ddbtrail-digests"},
        description="ddbtrail: hourly signed digests of the lake's closed hours")
