"""Scheduled compaction of the Hive formats (Parquet, JSON Lines) on AWS: EventBridge
Scheduler -> Step Functions -> one Lambda per partition, running ddbtrail's own compaction.

Once a day (``COMPACTION_SCHEDULE``) the schedule starts the state machine:

1. ``Plan``: the Lambda lists the closed partitions of the last ``COMPACTION_LOOKBACK_DAYS``
   days that are not yet one compaction run's output (``ddbtrail.lake.scheduled``); start
   an execution with ``{"lookback_days": N}`` to take a longer backlog;
2. ``Compact``: a Distributed Map, each partition one child execution that invokes the
   same Lambda on that one partition (``compact_one``: write the new files whole, then
   delete exactly the old ones; readers dedup by event_id). With evidence on, the Lambda
   deletes nothing: it leaves a pending-replacement note, and the digest function (the
   only signer) writes the compaction digest and deletes the old files (``evidence.py``).
   Lambda errors and throttles
   are retried with backoff; a partition that still fails is recorded, not lost;
3. ``Check``: any failed or too-large partition fails the execution (the alarm); more
   partitions than one plan takes loop back to ``Plan``.

An Iceberg lake (``-c format=iceberg``) is compacted by the Glue optimizer instead
(``infra/constructs/iceberg.py``); this construct is not deployed there.
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Aws, CfnMapping, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as C
from infra.constructs.alarms import run_alarms
from infra.constructs.capture import python_function, staged_code
from infra.constructs.nag import acknowledge, arn_finding, depends_only_on, logical_id

HANDLER_FILE: Final = "compact_partition.py"
HANDLER: Final = "compact_partition.handler"
LAMBDA_INVOKE: Final = "arn:aws:states:::lambda:invoke"
# Lambda's own transient errors, then any error of the compaction: backoff with jitter.
_RETRY: Final = [
    {"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                     "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
     "IntervalSeconds": 5, "MaxAttempts": 6, "BackoffRate": 2.0, "JitterStrategy": "FULL"},
    # Too large stays too large: no retry.
    {"ErrorEquals": ["PartitionTooLarge"], "MaxAttempts": 0},
    {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "MaxAttempts": 3,
     "BackoffRate": 2.0, "JitterStrategy": "FULL"},
]


def definition(function_arn: str, *, max_concurrency: int = C.COMPACTION_MAX_CONCURRENCY,
               ) -> dict[str, Any]:
    """The state machine's Amazon States Language (JSONata)."""
    def invoke(payload: str, **extra: Any) -> dict[str, Any]:
        return {"Type": "Task", "Resource": LAMBDA_INVOKE,
                "Arguments": {"FunctionName": function_arn, "Payload": payload},
                "Retry": _RETRY, **extra}

    partition = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "CompactPartition",
        "States": {
            # Success outputs nothing: the Map's result (every child's output) must stay
            # under Step Functions' 256 KiB for a thousand partitions.
            "CompactPartition": invoke(
                "{% $merge([$states.input, {'step': 'partition'}]) %}", Output={},
                Catch=[{"ErrorEquals": ["States.ALL"], "Next": "PartitionFailed",
                        "Output": {"failed": "{% $states.input.table_name & '/dt=' & "
                                             "$states.input.dt & ': ' & "
                                             "$states.errorOutput.Error & ' ' & "
                                             "$substring($states.errorOutput.Cause, 0, 400)"
                                             " %}"}}],
                End=True),
            "PartitionFailed": {"Type": "Pass", "End": True},
        },
    }
    states: dict[str, Any] = {
        "Plan": invoke(
            "{% $merge([$states.input, {'step': 'plan'}]) %}",
            Assign={"partitions": "{% $states.result.Payload.partitions %}",
                    "oversize": "{% $states.result.Payload.oversize %}",
                    "remaining": "{% $states.result.Payload.remaining %}",
                    "lookback": "{% $states.input %}"},
            Next="Compact"),
        "Compact": {
            "Type": "Map",
            "Items": "{% $partitions %}",
            "ItemSelector": {"table_name": "{% $states.context.Map.Item.Value.table_name %}",
                             "dt": "{% $states.context.Map.Item.Value.dt %}"},
            "MaxConcurrency": max_concurrency,
            "ItemProcessor": partition,
            "Assign": {"failed": "{% [$states.result.failed] %}"},
            "Next": "Check",
        },
        "Check": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $count($failed) > 0 %}", "Next": "PartitionsFailed"},
                {"Condition": "{% $count($oversize) > 0 %}", "Next": "PartitionsTooLarge"},
                # More than one plan takes (a backlog): plan again with the same input.
                {"Condition": "{% $remaining > 0 %}", "Next": "Plan",
                 "Output": "{% $lookback %}"},
            ],
            "Default": "Done",
        },
        "PartitionsFailed": {
            "Type": "Fail", "Error": "CompactionFailed",
            "Cause": "{% $string($count($failed)) & ' partition(s) failed; their old files "
                     "are kept: ' & $join($failed, '; ') %}"},
        "PartitionsTooLarge": {
            "Type": "Fail", "Error": "PartitionTooLarge",
            "Cause": "{% 'too large for the compaction Lambda (compact them with ddbtrail "
                     "compact on a larger machine, docs/deploy.md): ' & $join($oversize, '; ')"
                     " %}"},
        "Done": {"Type": "Succeed"},
    }
    return {
        "Comment": "ddbtrail compaction: closed Hive partitions, one Lambda each",
        "QueryLanguage": "JSONata",
        "StartAt": "Plan",
        "States": states,
        "TimeoutSeconds": 12 * 3600,
    }


def sdk_for_pandas_layer(scope: Construct) -> lambda_.ILayerVersion:
    """AWS's managed SDK for pandas layer (pyarrow) of the stack's Region, for ``scope``'s
    function (compaction, digests): one Region table per stack, shared."""
    stack = Stack.of(scope)
    table = stack.node.try_find_child("SdkForPandasLayers")
    if not isinstance(table, CfnMapping):
        table = CfnMapping(stack, "SdkForPandasLayers", mapping={
            region: {"arn": f"arn:aws:lambda:{region}:{account}:layer:"
                             f"{C.SDK_FOR_PANDAS_LAYER_NAME}:{version}"}
            for region, (account, version) in C.SDK_FOR_PANDAS_LAYERS.items()})
    return lambda_.LayerVersion.from_layer_version_arn(
        scope, "SdkForPandasLayer", table.find_in_map(Aws.REGION, "arn"))


class Compaction(Construct):
    """``function`` (PartitionFunction), ``state_machine`` (Machine), ``schedule``,
    ``role`` of the machine, and ``alarms`` (Failed, TimedOut, Aborted)."""

    def __init__(self, scope: Construct, cid: str, *, lake_bucket: s3.IBucket,
                 lake_key: kms.IKey, lake_uri: str, powertools: lambda_.ILayerVersion,
                 alarm_topic: sns.ITopic, memory_mb: int = C.COMPACTION_MEMORY_MB,
                 evidence: bool = False) -> None:
        """``evidence``: the lake is sealed by the digest function, which alone deletes
        replaced files (module docstring); this function then may not delete."""
        super().__init__(scope, cid)
        stack = Stack.of(self)
        lake_prefix = C.LAKE_PREFIX.strip("/")
        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS,
                                  removal_policy=RemovalPolicy.DESTROY)
        function_role = iam.Role(self, "FunctionRole",
                                 assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                                 description="ddbtrail compaction of closed lake partitions")
        self.function_policy = iam.Policy(self, "FunctionPolicy", roles=[function_role],
                                          statements=[
            iam.PolicyStatement(sid="ListLake", actions=["s3:ListBucket"],
                                resources=[lake_bucket.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{lake_prefix}/*",
                                                                         lake_prefix]}}),
            iam.PolicyStatement(sid="CompactLake", actions=[
                "s3:GetObject", "s3:PutObject", *([] if evidence else ["s3:DeleteObject"])],
                resources=[lake_bucket.arn_for_objects(f"{lake_prefix}/*")]),
            iam.PolicyStatement(sid="LakeKeyViaS3", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                                resources=[lake_key.key_arn],
                                conditions={"StringEquals": {
                                    "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}),
            iam.PolicyStatement(sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[log_group.log_group_arn]),
        ])
        acknowledge(self.function_policy, arn_finding(lake_bucket, f"/{lake_prefix}/*"),
                    "Compaction reads, writes and (without evidence) deletes the data files of "
                    "any partition; the wildcard is limited to the lake prefix of this one "
                    "bucket.")
        self.function = python_function(
            self, "PartitionFunction", handler=HANDLER,
            code=staged_code(self, HANDLER_FILE, "compaction"),
            layers=[sdk_for_pandas_layer(self), powertools], memory_mb=memory_mb,
            timeout_seconds=C.COMPACTION_TIMEOUT_SECONDS, role=function_role,
            log_group=log_group,
            environment={"LAKE_URI": lake_uri,
                         "MAX_PARTITIONS": str(C.COMPACTION_MAX_PARTITIONS),
                         "LOOKBACK_DAYS": str(C.COMPACTION_LOOKBACK_DAYS),
                         **({"EVIDENCE": "true"} if evidence else {}),
                         "POWERTOOLS_SERVICE_NAME": "ddbtrail-compaction"},
            description="ddbtrail: compact one closed lake partition (or plan a run)")
        # Runs must not start before the role's permissions exist (and cfn-lint W3005).
        depends_only_on(self.function, self.function_policy)

        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                             description="ddbtrail compaction state machine")
        self.state_machine = sfn.StateMachine(
            self, "Machine",
            definition_body=sfn.DefinitionBody.from_string(
                stack.to_json_string(definition(self.function.function_arn))),
            role=self.role, timeout=Duration.hours(12),
            comment="ddbtrail compaction of closed Hive partitions")
        # The role is implied by RoleArn (cfn-lint W3005); the policy names the machine.
        machine = self.state_machine.node.default_child
        assert isinstance(machine, sfn.CfnStateMachine)
        machine.add_deletion_override("DependsOn")
        name = self.state_machine.state_machine_name
        executions = (f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                      f"execution:{name}/*")
        self.policy = iam.Policy(self, "Policy", roles=[self.role], statements=[
            iam.PolicyStatement(sid="InvokeCompaction", actions=["lambda:InvokeFunction"],
                                resources=[self.function.function_arn]),
            iam.PolicyStatement(sid="DistributedMapChildren", actions=["states:StartExecution"],
                                resources=[self.state_machine.state_machine_arn]),
            iam.PolicyStatement(sid="DistributedMapRuns", actions=[
                "states:DescribeExecution", "states:StopExecution"], resources=[executions]),
        ])
        acknowledge(self.policy, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:"
                    f"<AWS::Region>:<AWS::AccountId>:execution:<{logical_id(self.state_machine)}"
                    ".Name>/*]",
                    "A Distributed Map's child executions get names Step Functions makes; "
                    "the wildcard is limited to this state machine's executions.")
        for rule, reason in (
                ("AwsSolutions-SF1", "Each partition's result and error are in its child "
                 "execution and in the Lambda's log group; a failed run raises the alarm; "
                 "execution logging would need logs:* on '*'."),
                ("AwsSolutions-SF2", "One Lambda call per partition has no call graph worth "
                 "tracing; X-Ray needs xray:Put* on '*'.")):
            acknowledge(self.state_machine, rule, reason)

        self.schedule = scheduler.Schedule(
            self, "Schedule",
            schedule=scheduler.ScheduleExpression.expression(C.COMPACTION_SCHEDULE),
            target=scheduler_targets.StepFunctionsStartExecution(
                self.state_machine, retry_attempts=0,
                input=scheduler.ScheduleTargetInput.from_object({})),
            description="ddbtrail: daily compaction of closed lake partitions")
        self.schedule.node.add_dependency(self.policy)

        self.alarms = run_alarms(
            self, self.state_machine, alarm_topic,
            "a compaction run {kind}; lookups read uncompacted partitions whole until one "
            "succeeds (the cause names each partition; docs/deploy.md, Compaction)")
