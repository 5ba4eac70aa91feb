"""The Iceberg lake in AWS (``-c format=iceberg``): Firehose's Iceberg destination and the
Glue Data Catalog's table optimizers.

* The Glue table itself is ``ddbtrail.catalog.glue.iceberg_table`` (``Catalog`` makes it):
  format v2, identity partitions ``table_name`` and ``dt``, write order ``item_key``,
  ``sequence_number``, at ``<lake>/ddbtrail/changes/``.
* Firehose routes every record to that one table (``DestinationTableConfigurationList``):
  each record is one row whose top-level JSON fields are the table's columns, exactly what
  the capture Lambda sends. Rows Firehose cannot write go to the S3 error output.
* Glue's table optimizers keep it cheap to read: ``sort`` compaction (the table's write
  order, so one item's rows sit in few files), snapshot retention (the time-travel
  window) and orphan-file deletion. They run in AWS and scale with the lake.
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Aws
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ddbtrail.catalog.glue import ICEBERG_SUBDIR
from ddbtrail.lake.iceberg import SNAPSHOT_RETENTION_DAYS, SNAPSHOTS_TO_RETAIN
from infra import constants as C
from infra.config import DeployConfig
from infra.constructs.catalog import Catalog
from infra.constructs.nag import acknowledge, arn_finding

# Where the table's data and metadata files live in the lake bucket.
TABLE_PREFIX: Final = C.LAKE_PREFIX + ICEBERG_SUBDIR
# Rows Firehose could not write to the table (schema mismatch, ...), per table.
ICEBERG_ERROR_PREFIX: Final = "firehose-errors/iceberg/"
# Snapshots older than SNAPSHOT_RETENTION_DAYS are expired (and their unreferenced files
# deleted): the window of Athena's FOR TIMESTAMP AS OF. The one retention policy, which a
# local writer applies too (ddbtrail.lake.iceberg). Orphans (files of failed commits) go
# after 3 days.
ORPHAN_RETENTION_DAYS: Final = 3
# Compaction waits for this many small files in a partition (Glue's default is 100).
COMPACTION_MIN_INPUT_FILES: Final = 50
_OPTIMIZER_LOGS: Final = ("iceberg-compaction", "iceberg-retention",
                          "iceberg-orphan-file-deletion")


def glue_statement(catalog: Catalog, sid: str, actions: list[str]) -> iam.PolicyStatement:
    """Glue actions on exactly this catalog, database and table."""
    return iam.PolicyStatement(sid=sid, actions=actions, resources=[
        catalog.catalog_arn, catalog.database_arn, catalog.table_arn])


def delivery_statements(catalog: Catalog, bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    """What Firehose needs beyond writing objects: the table's metadata (it commits to
    it) and deleting its own uncommitted files under the table's folder."""
    return [
        glue_statement(catalog, "IcebergTable",
                       ["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"]),
        iam.PolicyStatement(sid="IcebergFiles", actions=["s3:DeleteObject"],
                            resources=[bucket.arn_for_objects(f"{TABLE_PREFIX}*")]),
    ]


def acknowledge_table_files(policy: iam.Policy, bucket: s3.IBucket) -> None:
    """cdk-nag: the wildcard on the table's folder is how Iceberg files are named."""
    acknowledge(policy, arn_finding(bucket, f"/{TABLE_PREFIX}*"),
                "Iceberg names its data and metadata files itself; the wildcard is "
                "limited to the table's folder of this one bucket.")


def destination(cfg: DeployConfig, *, role: iam.IRole, bucket: s3.IBucket, key: kms.IKey,
                catalog: Catalog, logging: dict[str, Any]) -> dict[str, Any]:
    """Firehose's ``IcebergDestinationConfiguration`` (CloudFormation spelling)."""
    return {
        "RoleARN": role.role_arn,
        "CatalogConfiguration": {"CatalogArn": catalog.catalog_arn},
        # The single-table route: every record is an insert into ddbtrail's table.
        "DestinationTableConfigurationList": [{
            "DestinationDatabaseName": catalog.database_name,
            "DestinationTableName": catalog.table_name,
            "S3ErrorOutputPrefix": ICEBERG_ERROR_PREFIX,
        }],
        "BufferingHints": {"IntervalInSeconds": cfg.buffer_interval_seconds,
                           "SizeInMBs": cfg.buffer_mb},
        "CloudWatchLoggingOptions": logging,
        "RetryOptions": {"DurationInSeconds": 300},
        "s3BackupMode": "FailedDataOnly",
        "S3Configuration": {
            "BucketARN": bucket.bucket_arn,
            "RoleARN": role.role_arn,
            "ErrorOutputPrefix": C.ERROR_PREFIX,
            "CompressionFormat": "GZIP",
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": key.key_arn}},
        },
    }


def delivery_stream(scope: Construct, cid: str, dest: dict[str, Any]) -> firehose.CfnDeliveryStream:
    """A Direct PUT stream into the Iceberg table."""
    stream = firehose.CfnDeliveryStream(
        scope, cid,
        delivery_stream_type="DirectPut",
        delivery_stream_encryption_configuration_input=(
            firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK")),
    )
    # The exact CloudFormation shape, kept as data so tests read it back 1:1.
    stream.add_property_override("IcebergDestinationConfiguration", dest)
    return stream


class IcebergOptimizers(Construct):
    """``role`` and the Glue table ``optimizers`` (compaction, retention, orphan files)."""

    def __init__(self, scope: Construct, cid: str, *, bucket: s3.IBucket, key: kms.IKey,
                 catalog: Catalog, lake_uri: str) -> None:
        super().__init__(scope, cid)
        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}),
            description="ddbtrail: Glue table optimizers of the Iceberg change table")
        objects = bucket.arn_for_objects(f"{TABLE_PREFIX}*")
        log_groups = [f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
                      f"/aws-glue/{name}/logs:*" for name in _OPTIMIZER_LOGS]
        self.policy = iam.Policy(self, "Policy", roles=[self.role], statements=[
            iam.PolicyStatement(sid="Bucket", actions=["s3:GetBucketLocation", "s3:ListBucket"],
                                resources=[bucket.bucket_arn]),
            iam.PolicyStatement(sid="TableFiles",
                                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                                resources=[objects]),
            glue_statement(catalog, "Table", ["glue:GetDatabase", "glue:GetTable",
                                              "glue:UpdateTable"]),
            iam.PolicyStatement(
                sid="LakeKeyViaS3", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}),
            iam.PolicyStatement(sid="Logs", actions=[
                "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=log_groups),
        ])
        acknowledge_table_files(self.policy, bucket)
        for arn in log_groups:
            acknowledge(self.policy, f"AwsSolutions-IAM5[Resource::{_nag_text(arn)}]",
                        "Glue's optimizers write one log stream per run into their own "
                        "fixed log group; the wildcard is limited to that group.")
        location = lake_uri.rstrip("/") + "/" + ICEBERG_SUBDIR
        configs: dict[str, dict[str, Any]] = {
            "compaction": {"CompactionConfiguration": {"IcebergConfiguration": {
                # sort rewrites by the table's write order: item_key, sequence_number.
                "Strategy": "sort", "MinInputFiles": COMPACTION_MIN_INPUT_FILES}}},
            "retention": {"RetentionConfiguration": {"IcebergConfiguration": {
                "SnapshotRetentionPeriodInDays": SNAPSHOT_RETENTION_DAYS,
                "NumberOfSnapshotsToRetain": SNAPSHOTS_TO_RETAIN,
                "CleanExpiredFiles": True}}},
            "orphan_file_deletion": {"OrphanFileDeletionConfiguration": {
                "IcebergConfiguration": {
                    "OrphanFileRetentionPeriodInDays": ORPHAN_RETENTION_DAYS,
                    "Location": location}}},
        }
        self.optimizers: dict[str, glue.CfnTableOptimizer] = {}
        for kind, config in configs.items():
            optimizer = glue.CfnTableOptimizer(
                self, "".join(p.title() for p in kind.split("_")),
                catalog_id=Aws.ACCOUNT_ID, database_name=catalog.database_name,
                table_name=catalog.table_name, type=kind,
                table_optimizer_configuration=glue.CfnTableOptimizer
                .TableOptimizerConfigurationProperty(enabled=True,
                                                     role_arn=self.role.role_arn))
            optimizer.add_property_override("TableOptimizerConfiguration", {
                "Enabled": True, "RoleArn": self.role.role_arn, **config})
            # The table must exist and the role must be allowed before a run starts.
            optimizer.node.add_dependency(catalog.table, self.policy)
            self.optimizers[kind] = optimizer


def _nag_text(arn: str) -> str:
    """An ARN with CDK tokens as cdk-nag prints them in finding ids."""
    return (arn.replace(Aws.PARTITION, "<AWS::Partition>").replace(Aws.REGION, "<AWS::Region>")
            .replace(Aws.ACCOUNT_ID, "<AWS::AccountId>"))
