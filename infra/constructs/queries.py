"""Athena: a workgroup with enforced settings, its encrypted results bucket, and one
AWS::Athena::NamedQuery per ``athena_queries/*.sql`` (read by ``ddbtrail.query.saved``) and
per file of the optional ``views_dir`` (``ddbtrail views --out DIR``)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ddbtrail.core.exceptions import ConfigError, QueryError
from ddbtrail.query import saved
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


def view_queries(views_dir: Path, taken: set[str]) -> list[saved.Query]:
    """The generated views in ``views_dir`` (its ``*.sql`` files), sorted by name.

    Raises ConfigError naming the folder and file when a file cannot be read, has no
    saved-query header or a bad one, or is named like a saved query in ``taken`` (both
    would be named queries of that name).
    """
    views = []
    for path in sorted(views_dir.glob("*.sql")):
        where = f"views_dir {views_dir}: {path.name}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read it ({exc})") from exc
        if not text.lstrip().startswith("--"):
            raise ConfigError(f"{where} has no header ('-- name:', '-- question:' ...); "
                              "write it with 'ddbtrail views --out DIR'")
        try:
            view = saved.parse_query(text, path)
        except QueryError as exc:
            raise ConfigError(f"views_dir {views_dir}: {exc}") from exc
        if view.name in taken:
            raise ConfigError(f"{where} is named like the saved query {view.name!r}; "
                              "rename the file and its '-- name:'")
        views.append(view)
    return views


class Queries(Construct):
    """``workgroup``, ``results`` bucket and ``named`` queries (by name: saved queries and,
    with ``cfg.views_dir``, the generated views)."""

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
        queries = saved.catalogue(queries_dir)
        views = view_queries(cfg.views_dir, {q.name for q in queries}) if cfg.views_dir else []
        for prefix, batch in (("Query", queries), ("View", views)):
            for query in batch:
                name, description, sql = named_query_fields(query)
                named = athena.CfnNamedQuery(
                    self, f"{prefix}-{query.name}", database=database, work_group=cfg.workgroup,
                    name=name, description=description, query_string=sql)
                named.node.add_dependency(self.workgroup)
                self.named[query.name] = named
