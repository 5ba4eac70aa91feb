"""The whole pipeline in one stack: one construct per concern.

lake -> catalog -> delivery -> capture (per table) -> queries -> alarms -> maintenance ->
evidence (receipts, signed digests, reconciliation; ``-c evidence=false`` leaves it out), plus
the optional SQS copy (``infra/constructs/sqs_copy.py``) when a target table is set and the
optional scheduled redrive (``infra/constructs/redrive.py``) per table with ``redrive``.
"""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants as C
from infra.config import DeployConfig
from infra.constructs.alarms import Alarms
from infra.constructs.capture import (
    Shared,
    StreamCheck,
    TableCapture,
    acknowledge_receipts,
    capture_environment,
    demo_table,
    powertools_layer,
    receipts_statements,
    redaction_statements,
    shared_code,
    staged_code,
)
from infra.constructs.catalog import Catalog
from infra.constructs.cloudtrail import TrailTable
from infra.constructs.compaction import Compaction
from infra.constructs.delivery import Delivery
from infra.constructs.evidence import Evidence, reconcile_states
from infra.constructs.iceberg import IcebergOptimizers
from infra.constructs.lake import Lake
from infra.constructs.maintenance import Maintenance
from infra.constructs.nag import acknowledge, arn_finding, depends_only_on
from infra.constructs.queries import Queries
from infra.constructs.redrive import HANDLER_FILE as REDRIVE_HANDLER_FILE
from infra.constructs.redrive import ScheduledRedrive
from infra.constructs.retention import IcebergRetention
from infra.constructs.sqs_copy import SqsCopy


def construct_id(table: str) -> str:
    """A construct id for a table name (``order-items.v2`` -> ``OrderItemsV2``)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", table))


class DdbtrailStack(Stack):
    """``lake``, ``catalog``, ``delivery``, ``captures`` (by table), ``queries``, ``alarms``,
    ``compaction`` (None for Iceberg), ``retention`` (Iceberg with expire_days, else None),
    ``maintenance``, ``evidence`` (None unless ``cfg.evidence``), ``sqs_copy`` and
    ``redrives`` (by table; empty unless ``cfg.redrive``)."""

    def __init__(self, scope: Construct, cid: str, *, cfg: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, cid, **kwargs)
        self.cfg = cfg
        self.lake = Lake(self, "Lake", cfg=cfg)
        self.ops_key = kms.Key(self, "OpsKey", enable_key_rotation=True,
                               description="ddbtrail: on-failure queues and the alarm topic",
                               removal_policy=RemovalPolicy.RETAIN)
        self.ops_key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToTheTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ))
        self.catalog = Catalog(self, "Catalog", database=cfg.database, fmt=cfg.format,
                               location=self.lake.lake_uri, table_names=cfg.all_tables)
        self.delivery = Delivery(self, "Delivery", cfg=cfg, bucket=self.lake.bucket,
                                 key=self.lake.key, catalog=self.catalog)

        if cfg.format == "iceberg":
            self.iceberg = IcebergOptimizers(self, "Iceberg", bucket=self.lake.bucket,
                                             key=self.lake.key, catalog=self.catalog,
                                             lake_uri=self.lake.lake_uri)

        shared = Shared(cfg=cfg, code=shared_code(self),
                        powertools=powertools_layer(self, cfg.powertools_layer_version),
                        delivery_stream_name=self.delivery.stream_name,
                        delivery_stream_arn=self.delivery.stream_arn,
                        bucket=self.lake.bucket, lake_key=self.lake.key, ops_key=self.ops_key)
        check = StreamCheck(self, "StreamCheck", tables=cfg.tables) if cfg.tables else None
        self.captures: dict[str, TableCapture] = {}
        for table in cfg.tables:
            cid_ = construct_id(table)
            assert check is not None
            result = check.check(self, f"{cid_}StreamCheck", table, cfg)
            self.captures[table] = TableCapture(self, f"{cid_}Capture", table=table,
                                                shared=shared,
                                                stream_arn=result.get_att_string("StreamArn"))
            CfnOutput(self, f"{cid_}StreamViewType", value=result.get_att_string("StreamViewType"),
                      description=f"Stream view type of {table}")
        if cfg.demo_table:
            demo = demo_table(self, cfg.demo_table_name)
            assert demo.table_stream_arn is not None
            self.captures[cfg.demo_table_name] = TableCapture(
                self, f"{construct_id(cfg.demo_table_name)}Capture", table=cfg.demo_table_name,
                shared=shared, stream_arn=demo.table_stream_arn)

        self.queries = Queries(self, "Queries", cfg=cfg, key=self.lake.key,
                               access_logs=self.lake.access_logs, database=cfg.database)
        # Who changed it: the Athena CloudTrail table (and the trail, with create_trail).
        self.trail = (TrailTable(self, "CloudTrail", cfg=cfg, database=cfg.database,
                                 access_logs=self.lake.access_logs,
                                 depends_on=self.catalog.database)
                      if cfg.cloudtrail else None)
        self.alarms = Alarms(self, "Alarms", cfg=cfg, key=self.ops_key,
                             captures=list(self.captures.values()),
                             delivery_stream_name=self.delivery.stream_name)
        # Daily lake maintenance: views and state snapshots on Athena (issue 18), then the
        # evidence reconciliation (issue 27).
        self.maintenance = Maintenance(
            self, "Maintenance", tables=cfg.all_tables, database=cfg.database,
            workgroup=cfg.workgroup, lake_bucket=self.lake.bucket, lake_key=self.lake.key,
            results_bucket=self.queries.results, alarm_topic=self.alarms.topic,
            reconcile=(reconcile_states(database=cfg.database, workgroup=cfg.workgroup)
                       if cfg.evidence else None))
        self.maintenance.node.add_dependency(self.queries.workgroup, self.catalog.snapshot_table)
        # Closed Hive partitions compacted in AWS (an Iceberg table has the Glue optimizer).
        self.compaction = (Compaction(self, "Compaction", lake_bucket=self.lake.bucket,
                                      lake_key=self.lake.key, lake_uri=self.lake.lake_uri,
                                      powertools=shared.powertools,
                                      alarm_topic=self.alarms.topic, evidence=cfg.evidence)
                           if cfg.format != "iceberg" else None)
        # Iceberg retention by the table's own means: DELETE, then the optimizer's expiry.
        self.retention = (IcebergRetention(
            self, "Retention", expire_days=cfg.expire_days, catalog=self.catalog,
            workgroup=cfg.workgroup, lake_bucket=self.lake.bucket, lake_key=self.lake.key,
            results_bucket=self.queries.results, alarm_topic=self.alarms.topic)
            if cfg.format == "iceberg" and cfg.expire_days else None)
        if self.retention is not None:
            self.retention.node.add_dependency(self.queries.workgroup, self.catalog.table)
        # Evidence: the receipts table, hourly signed digests, the reconciliation's grants
        # and alarms (the capture's receipts are in capture_environment/TableCapture).
        self.evidence = Evidence(
            self, "Evidence", tables={t: construct_id(t) for t in cfg.all_tables},
            database=self.catalog.database, lake_bucket=self.lake.bucket,
            lake_key=self.lake.key, lake_uri=self.lake.lake_uri,
            maintenance_role=self.maintenance.role, alarm_topic=self.alarms.topic,
            powertools=shared.powertools, key_alias=f"{cfg.stack_name}-digests",
            completes_compactions=self.compaction is not None) if cfg.evidence else None
        if self.evidence is not None:
            depends_only_on(self.maintenance.state_machine, self.maintenance.policy,
                            self.evidence.reconcile_policy)
            CfnOutput(self, "SigningKeyArn", value=self.evidence.signing_key.key_arn,
                      description="KMS key of the digests: auditors fetch its public key")
        self.sqs_copy = self._sqs_copy(cfg, shared.powertools)
        self.redrives = self._redrives(cfg, shared) if cfg.redrive else {}

        CfnOutput(self, "LakeUri", value=self.lake.lake_uri,
                  description="ddbtrail --lake value for the CLI")
        CfnOutput(self, "DeliveryStreamName", value=self.delivery.stream_name)
        CfnOutput(self, "AthenaWorkGroup", value=cfg.workgroup)
        CfnOutput(self, "GlueDatabase", value=cfg.database)
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)

    def _sqs_copy(self, cfg: DeployConfig, powertools: lambda_.ILayerVersion) -> SqsCopy | None:
        """The optional consumer of ``ddbtrail copy``, when a target table is configured."""
        if not cfg.sqs_copy_target_table:
            return None
        copy = SqsCopy(self, "SqsCopy", target_table_name=cfg.sqs_copy_target_table,
                       sender_account_ids=cfg.sqs_copy_sender_accounts, powertools=powertools)
        copy.dlq_alarm.add_alarm_action(cw_actions.SnsAction(self.alarms.topic))
        role = copy.function.role
        assert role is not None
        depends_only_on(copy.function, role.node.find_child("DefaultPolicy"))  # cfn-lint W3005
        return copy

    def _redrives(self, cfg: DeployConfig, shared: Shared) -> dict[str, ScheduledRedrive]:
        """A scheduled redrive of each capture's on-failure queue, with the capture's settings."""
        code = staged_code(self, REDRIVE_HANDLER_FILE, "redrive")
        redrives: dict[str, ScheduledRedrive] = {}
        for table, capture in self.captures.items():
            env = capture_environment(cfg, table=table, delivery_stream=shared.delivery_stream_name,
                                      spill_bucket=shared.bucket.bucket_name)
            redrive = ScheduledRedrive(
                self, f"{construct_id(table)}Redrive", queue=capture.dlq, queue_key=self.ops_key,
                stream_arn=capture.stream_arn, delivery_stream_name=shared.delivery_stream_name,
                delivery_stream_arn=shared.delivery_stream_arn, environment=env,
                schedule_minutes=cfg.redrive_schedule_minutes,
                alarm_age_seconds=cfg.redrive_alarm_age_seconds, alarm_topic=self.alarms.topic,
                code=code, powertools=shared.powertools)
            # Redriven rows go through capture_batch with the capture's environment: like the
            # capture role, it may put oversize rows and bad records under spill/ and
            # quarantine/, and read the redaction key (the handler loads it at cold start).
            spill = iam.Policy(redrive, "SpillPolicy", roles=[redrive.role], statements=[
                iam.PolicyStatement(sid="SpillAndQuarantine", actions=["s3:PutObject"], resources=[
                    shared.bucket.arn_for_objects(f"{prefix}*")
                    for prefix in (C.SPILL_PREFIX, C.QUARANTINE_PREFIX)]),
                iam.PolicyStatement(sid="LakeKeyViaS3", actions=["kms:GenerateDataKey"],
                                    resources=[shared.lake_key.key_arn],
                                    conditions={"StringEquals": {
                                        "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}),
                *redaction_statements(cfg),
                # A redriven batch gets its receipt too (source "redrive").
                *receipts_statements(cfg, shared.bucket),
            ])
            for prefix in (C.SPILL_PREFIX, C.QUARANTINE_PREFIX):
                acknowledge(spill, arn_finding(shared.bucket, f"/{prefix}*"),
                            "Spilled rows and quarantined records get one object per event; "
                            "the wildcard is limited to that prefix of the lake bucket.")
            acknowledge_receipts(cfg, spill, shared.bucket)
            # Runs must not start before the role's permissions exist (and cfn-lint W3005).
            depends_only_on(redrive.function, redrive.policy, spill)
            redrives[table] = redrive
        return redrives
