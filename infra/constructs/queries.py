"""Athena: a workgroup with enforced settings, its encrypted results bucket, and one
AWS::Athena::NamedQuery per ``athena_queries/*.sql`` (read by ``ddbtrail.queries``)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ddbtrail import queries as saved
from ddbtrail.exceptions import ConfigError
from infra import constants as C
from infra.config import DeployConfig
from infra.constructs.lake import secure_bucket


def named_query_fields(query: saved.Query) -> tuple[str, str, str]:
    """(Name, Description, QueryString) of one saved query, within Athena's limits.

    The description states the question and the ``?`` parameters in order, as a user
    of the console needs them. Raises ConfigError if the SQL is too long for Athena.
    """
    if len(query.sql) > C.NAMED_QUERY_MAX_CHARS:
        raise ConfigError(f"{query.path.name}: {len(query.sql)} characters; a named query "
                          f"holds at most {C.NAMED_QUERY_MAX_CHARS}")
    params = ", ".join(p.name for p in query.params)
    description = f"[{query.kind}] {query.question}"
    if params:
        description += f" Parameters (in ? order): {params}."
    if len(description) > C.NAMED_QUERY_MAX_DESCRIPTION:
        description = description[: C.NAMED_QUERY_MAX_DESCRIPTION - 3] + "..."
    return query.name[: C.NAMED_QUERY_MAX_NAME], description, query.sql


class Queries(Construct):
    """``workgroup``, ``results`` bucket and ``named`` queries (by query name)."""

    def __init__(self, scope: Construct, cid: str, *, cfg: DeployConfig, key: kms.IKey,
                 access_logs: s3.IBucket, database: str,
                 queries_dir: Path = C.QUERIES_DIR) -> None:
        super().__init__(scope, cid)
        self.results = secure_bucket(
            self, "Results", key=key, access_logs=access_logs, log_prefix="athena-results/",
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-results", expiration=Duration.days(cfg.results_expire_days),
                abort_incomplete_multipart_upload_after=Duration.days(1))])
        self.workgroup = athena.CfnWorkGroup(
            self, "WorkGroup", name=cfg.workgroup,
            description="ddbtrail: audit queries over the change lake",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=cfg.bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="AUTO"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn),
                ),
            ),
        )
        self.named: dict[str, athena.CfnNamedQuery] = {}
        for query in saved.catalogue(queries_dir):
            name, description, sql = named_query_fields(query)
            named = athena.CfnNamedQuery(
                self, f"Query-{query.name}", database=database, work_group=cfg.workgroup,
                name=name, description=description, query_string=sql)
            named.node.add_dependency(self.workgroup)
            self.named[query.name] = named
