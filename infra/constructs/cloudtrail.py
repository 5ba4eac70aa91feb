"""Who changed it: the Athena CloudTrail table and, optionally, a trail of the writes.

``-c cloudtrail_bucket=NAME`` (an existing trail's bucket, ``-c cloudtrail_prefix=P`` its
key prefix) gives the Glue table ``cloudtrail_logs`` that AWS documents for CloudTrail
logs in Athena: its columns (``ddbtrail.core.cloudtrail.ATHENA_COLUMNS``), the Hive JSON
SerDe with ``CloudTrailInputFormat``, and partition projection on ``timestamp`` (a
``yyyy/MM/dd`` date from ``cloudtrail_start_day`` to NOW) over
``s3://bucket/[prefix/]AWSLogs/<account>/CloudTrail/<region>/``. The saved query
``item_history_with_actor`` reads it.

``-c create_trail=true`` also creates a single-region trail whose advanced event
selectors log data events of exactly the captured tables' writes (``eventCategory`` Data,
``resources.type`` AWS::DynamoDB::Table, ``resources.ARN`` the tables, ``readOnly``
false) and no management events, into the named bucket or a new private one (with the
bucket policy CloudTrail needs: GetBucketAcl, and PutObject under AWSLogs/<account>/ for
this trail only). Data events are billed per 100,000 (``ddbtrail cost --cloudtrail``).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ddbtrail.core.cloudtrail import (
    ATHENA_COLUMNS,
    ATHENA_PARTITION,
    ATHENA_TABLE,
    athena_table_properties,
)
from infra.config import DeployConfig
from infra.constructs.lake import secure_bucket

SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
INPUT_FORMAT = "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
TRAIL_NAME = "ddbtrail-writes"


def event_selectors(
        table_arns: list[str]) -> list[cloudtrail.CfnTrail.AdvancedEventSelectorProperty]:
    """One advanced selector: the write data events of exactly these tables."""
    field = cloudtrail.CfnTrail.AdvancedFieldSelectorProperty
    return [cloudtrail.CfnTrail.AdvancedEventSelectorProperty(
        name="ddbtrail: item writes of the captured DynamoDB tables",
        field_selectors=[
            field(field="eventCategory", equal_to=["Data"]),
            field(field="resources.type", equal_to=["AWS::DynamoDB::Table"]),
            field(field="readOnly", equal_to=["false"]),
            field(field="resources.ARN", equal_to=table_arns),
        ])]


class TrailTable(Construct):
    """``table`` (Glue, cloudtrail_logs), and with ``create_trail`` the ``trail`` and, when
    no bucket was named, its ``bucket``."""

    def __init__(self, scope: Construct, cid: str, *, cfg: DeployConfig, database: str,
                 access_logs: s3.IBucket, depends_on: Construct) -> None:
        super().__init__(scope, cid)
        stack = Stack.of(self)
        prefix = f"{cfg.cloudtrail_prefix}/" if cfg.cloudtrail_prefix else ""
        self.bucket: s3.IBucket
        if cfg.cloudtrail_bucket:
            self.bucket = s3.Bucket.from_bucket_name(self, "Bucket", cfg.cloudtrail_bucket)
        else:
            # CloudTrail encrypts with SSE-S3 by default; the trail needs no key grants.
            self.bucket = secure_bucket(
                self, "Bucket", key=None, access_logs=access_logs, log_prefix="cloudtrail/",
                versioned=True,
                lifecycle_rules=[s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1))])
        self.trail: cloudtrail.CfnTrail | None = None
        if cfg.create_trail:
            self.trail = self._trail(cfg, prefix, stack)

        location = (f"s3://{self.bucket.bucket_name}/{prefix}AWSLogs/{Aws.ACCOUNT_ID}/"
                    f"CloudTrail/{Aws.REGION}/")
        self.table = glue.CfnTable(
            self, "Table", catalog_id=Aws.ACCOUNT_ID, database_name=database,
            table_input=glue.CfnTable.TableInputProperty(
                name=ATHENA_TABLE, table_type="EXTERNAL_TABLE",
                description="CloudTrail logs, as AWS documents the table for Athena "
                            "(partition projection on timestamp); read by "
                            "item_history_with_actor",
                parameters={"EXTERNAL": "TRUE", "classification": "cloudtrail",
                            **athena_table_properties(location, cfg.cloudtrail_start_day)},
                partition_keys=[glue.CfnTable.ColumnProperty(name=ATHENA_PARTITION,
                                                             type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location, input_format=INPUT_FORMAT, output_format=OUTPUT_FORMAT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=SERDE),
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t)
                             for n, t in ATHENA_COLUMNS])))
        self.table.node.add_dependency(depends_on)

    def _trail(self, cfg: DeployConfig, prefix: str, stack: Stack) -> cloudtrail.CfnTrail:
        trail_arn = stack.format_arn(service="cloudtrail", resource="trail",
                                     resource_name=TRAIL_NAME)
        source = {"StringEquals": {"aws:SourceArn": trail_arn}}
        policy = None
        if isinstance(self.bucket, s3.Bucket):
            self.bucket.add_to_resource_policy(iam.PolicyStatement(
                sid="CloudTrailAclCheck", principals=[
                    iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:GetBucketAcl"], resources=[self.bucket.bucket_arn],
                conditions=source))
            self.bucket.add_to_resource_policy(iam.PolicyStatement(
                sid="CloudTrailWrite", principals=[
                    iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{prefix}AWSLogs/{Aws.ACCOUNT_ID}/*")],
                conditions=source))
            policy = self.bucket.policy
        table_arns = [stack.format_arn(service="dynamodb", resource="table", resource_name=t)
                      for t in cfg.all_tables]
        trail = cloudtrail.CfnTrail(
            self, "Trail", trail_name=TRAIL_NAME, is_logging=True,
            s3_bucket_name=self.bucket.bucket_name,
            s3_key_prefix=cfg.cloudtrail_prefix or None,
            is_multi_region_trail=False, include_global_service_events=False,
            enable_log_file_validation=True,
            advanced_event_selectors=event_selectors(table_arns))
        if policy is not None:
            trail.node.add_dependency(policy)
        return trail
