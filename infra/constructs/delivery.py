"""The Firehose delivery stream: Direct PUT -> dynamic partitions -> Parquet or JSON Lines.

* Partitions come from the row itself (jq ``{table_name: .table_name, dt: .dt}``): ``dt``
  is the EVENT date, so a late change lands in its own day, never in the arrival day.
* The prefix is ``row.PARTITION_TEMPLATE`` under ``lake/``: the same layout the Glue
  storage template, the local delivery stream and the DuckDB readers use.
* Packed records (several newline-delimited rows; PACK_ROWS) are split by the
  RecordDeAggregation processor (JSON) first; for JSON Lines the newline that
  de-aggregation strips is put back with AppendDelimiterToRecord.
* Parquet: record format conversion (Hive JSON SerDe) against the Glue table; Firehose
  requires UNCOMPRESSED output there (Snappy is inside Parquet) and a >= 64 MB buffer.
* Iceberg: the IcebergDestinationConfiguration of ``infra/constructs/iceberg.py`` instead.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ddbtrail.delivery.processing import Processing
from infra import constants as C
from infra.config import DeployConfig
from infra.constructs import iceberg
from infra.constructs.catalog import Catalog
from infra.constructs.nag import acknowledge, arn_finding


def processing(cfg: DeployConfig) -> Processing:
    """The stream's processing: the definition the local delivery stream applies too."""
    return Processing.for_stream(fmt=cfg.format, packs_rows=cfg.packs_rows)


def processors(cfg: DeployConfig) -> list[dict[str, Any]]:
    """Firehose processors, in order (CloudFormation spelling)."""
    return processing(cfg).processors()


class Delivery(Construct):
    """``stream`` (CfnDeliveryStream), its ``role`` and ``log_group``."""

    def __init__(self, scope: Construct, cid: str, *, cfg: DeployConfig, bucket: s3.IBucket,
                 key: kms.IKey, catalog: Catalog) -> None:
        super().__init__(scope, cid)
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS,
                                       removal_policy=RemovalPolicy.DESTROY)
        log_stream = logs.LogStream(self, "DestinationDelivery", log_group=self.log_group,
                                    log_stream_name="DestinationDelivery",
                                    removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role",
                             assumed_by=iam.ServicePrincipal(
                                 "firehose.amazonaws.com",
                                 conditions={"StringEquals": {
                                     "aws:SourceAccount": Aws.ACCOUNT_ID}}),
                             description="ddbtrail Firehose: write the lake, read the Glue schema")
        error_root = C.ERROR_PREFIX.split("!{", 1)[0]
        object_arns = [bucket.arn_for_objects(f"{C.LAKE_PREFIX}*"),
                       bucket.arn_for_objects(f"{error_root}*")]
        policy = iam.Policy(self, "Policy", roles=[self.role], statements=[
            iam.PolicyStatement(sid="Bucket", actions=[
                "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn]),
            iam.PolicyStatement(sid="Objects", actions=[
                "s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                resources=object_arns),
            iam.PolicyStatement(
                sid="LakeKeyViaS3", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
                            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
                                bucket.bucket_arn, *object_arns]}}),
            iam.PolicyStatement(sid="Logs", actions=["logs:PutLogEvents"],
                                resources=[log_stream_arn(self.log_group, log_stream)]),
        ])
        if cfg.format == "iceberg":
            policy.add_statements(*iceberg.delivery_statements(catalog, bucket))
            iceberg.acknowledge_table_files(policy, bucket)
        if cfg.format == "parquet":
            policy.add_statements(iam.PolicyStatement(
                sid="GlueSchema",
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                resources=[catalog.catalog_arn, catalog.database_arn, catalog.table_arn]))
        for suffix in (f"/{C.LAKE_PREFIX}*", f"/{error_root}*"):
            acknowledge(policy, arn_finding(bucket, suffix),
                        "Firehose names objects itself; the wildcard is limited to the lake "
                        "and error prefixes of this one bucket.")

        dest: dict[str, Any] = {
            "BucketARN": bucket.bucket_arn,
            "RoleARN": self.role.role_arn,
            "Prefix": processing(cfg).prefix,
            "ErrorOutputPrefix": processing(cfg).error_prefix,
            "BufferingHints": {"IntervalInSeconds": cfg.buffer_interval_seconds,
                               "SizeInMBs": cfg.buffer_mb},
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": key.key_arn}},
            "CloudWatchLoggingOptions": {"Enabled": True,
                                         "LogGroupName": self.log_group.log_group_name,
                                         "LogStreamName": log_stream.log_stream_name},
            "DynamicPartitioningConfiguration": {"Enabled": True,
                                                 "RetryOptions": {"DurationInSeconds": 300}},
            "ProcessingConfiguration": {"Enabled": True, "Processors": processors(cfg)},
        }
        if cfg.format == "parquet":
            dest |= {
                "CompressionFormat": "UNCOMPRESSED",
                "FileExtension": ".parquet",
                "DataFormatConversionConfiguration": {
                    "Enabled": True,
                    # The Glue table's JSON Lines SerDe, Hive's. The rows have no timestamp
                    # columns; the format is named only because CDK drops an empty {}.
                    "InputFormatConfiguration": {"Deserializer": {"HiveJsonSerDe": {
                        "TimestampFormats": ["millis"]}}},
                    "OutputFormatConfiguration": {
                        "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
                    "SchemaConfiguration": {
                        "CatalogId": Aws.ACCOUNT_ID, "DatabaseName": catalog.database_name,
                        "TableName": catalog.table_name, "Region": Aws.REGION,
                        "RoleARN": self.role.role_arn, "VersionId": "LATEST"},
                },
            }
        else:
            dest |= {"CompressionFormat": "GZIP", "FileExtension": ".jsonl.gz"}

        if cfg.format == "iceberg":
            self.stream = iceberg.delivery_stream(self, "Stream", iceberg.destination(
                cfg, role=self.role, bucket=bucket, key=key, catalog=catalog,
                logging=dest["CloudWatchLoggingOptions"]))
        else:
            self.stream = firehose.CfnDeliveryStream(
                self, "Stream",
                delivery_stream_type="DirectPut",
                delivery_stream_encryption_configuration_input=(
                    firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                        key_type="AWS_OWNED_CMK")),
                extended_s3_destination_configuration=firehose.CfnDeliveryStream
                .ExtendedS3DestinationConfigurationProperty(bucket_arn=bucket.bucket_arn,
                                                            role_arn=self.role.role_arn),
            )
            # The exact CloudFormation shape, kept as data so tests can read it back 1:1.
            self.stream.add_property_override("ExtendedS3DestinationConfiguration", dest)
        self.stream.node.add_dependency(policy)
        if cfg.format in ("parquet", "iceberg"):
            self.stream.node.add_dependency(catalog.table)
        self.stream_name = self.stream.ref
        self.stream_arn = self.stream.attr_arn


def log_stream_arn(group: logs.ILogGroup, stream: logs.LogStream) -> str:
    """ARN of one log stream (PutLogEvents is authorised per stream)."""
    return (f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
            f"{group.log_group_name}:log-stream:{stream.log_stream_name}")
