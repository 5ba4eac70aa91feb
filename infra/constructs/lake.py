"""The lake bucket (KMS, TLS-only, versioned, lifecycle, optional Object Lock) and its key."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants as C
from infra.config import DeployConfig

_ARCHIVE = {
    # Instant Retrieval stays queryable by Athena; the other two need a restore first.
    "GLACIER_IR": s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
    "GLACIER": s3.StorageClass.GLACIER,
    "DEEP_ARCHIVE": s3.StorageClass.DEEP_ARCHIVE,
}


def secure_bucket(scope: Construct, cid: str, *, key: kms.IKey | None,
                  access_logs: s3.IBucket | None, log_prefix: str = "",
                  **kwargs: object) -> s3.Bucket:
    """A bucket with all public access blocked, TLS 1.2+ only, owner-enforced objects,
    and KMS encryption with ``key`` (S3-managed when None: log delivery cannot use KMS)."""
    return s3.Bucket(
        scope, cid,
        encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=key,
        bucket_key_enabled=bool(key),
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix or None,
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,  # type: ignore[arg-type]
    )


def _rule(cfg: DeployConfig, rid: str, prefix: str | None, *, archive: bool) -> s3.LifecycleRule:
    transitions = [s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                 transition_after=Duration.days(cfg.ia_days))]
    if archive:
        transitions.append(s3.Transition(storage_class=_ARCHIVE[cfg.archive_class],
                                         transition_after=Duration.days(cfg.archive_days)))
    return s3.LifecycleRule(
        id=rid,
        prefix=prefix,
        transitions=transitions,
        noncurrent_version_transitions=[s3.NoncurrentVersionTransition(
            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
            transition_after=Duration.days(cfg.ia_days))],
        expiration=Duration.days(cfg.expire_days) if cfg.expire_days and archive else None,
        noncurrent_version_expiration=Duration.days(max(cfg.object_lock_days, 90)),
        abort_incomplete_multipart_upload_after=Duration.days(7),
    )


def lifecycle_rules(cfg: DeployConfig) -> list[s3.LifecycleRule]:
    """The lake bucket's tiering and expiry.

    Hive formats: one bucket-wide rule (a partition file stands alone, so tiering or expiring
    it by age loses only that file's changes). Iceberg: the table under ``lake/`` is only
    tiered to Infrequent Access, never archived or expired by S3, since its metadata and
    manifests reference files of every age; the other prefixes keep the full rule.
    """
    if cfg.format != "iceberg":
        return [_rule(cfg, "tier-and-expire", None, archive=True)]
    others = (C.SPILL_PREFIX, C.QUARANTINE_PREFIX, C.ERROR_PREFIX.split("/", 1)[0] + "/")
    return [_rule(cfg, "iceberg-table-tier-only", C.LAKE_PREFIX, archive=False),
            *(_rule(cfg, f"tier-and-expire-{p.strip('/')}", p, archive=True) for p in others)]


class Lake(Construct):
    """``bucket`` holds the lake (``lake/``), spill and quarantine prefixes and Firehose's
    error output; ``key`` encrypts it and the Athena results; ``access_logs``
    receives the S3 server access logs of every bucket."""

    def __init__(self, scope: Construct, cid: str, *, cfg: DeployConfig) -> None:
        super().__init__(scope, cid)
        self.key = kms.Key(self, "Key", enable_key_rotation=True,
                           description="ddbtrail: lake bucket and Athena results",
                           removal_policy=RemovalPolicy.RETAIN)
        self.access_logs = secure_bucket(
            self, "AccessLogs", key=None, access_logs=None,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs",
                                              expiration=Duration.days(365),
                                              noncurrent_version_expiration=Duration.days(30))],
        )

        lock: s3.ObjectLockRetention | None = None
        if cfg.object_lock_days:
            days = Duration.days(cfg.object_lock_days)
            lock = (s3.ObjectLockRetention.compliance(days) if cfg.object_lock_mode == "COMPLIANCE"
                    else s3.ObjectLockRetention.governance(days))
        self.bucket = secure_bucket(
            self, "Bucket", key=self.key, access_logs=self.access_logs, log_prefix="lake-bucket/",
            versioned=True,
            object_lock_enabled=bool(lock) or None,
            object_lock_default_retention=lock,
            lifecycle_rules=lifecycle_rules(cfg),
        )
        self.lake_uri = f"s3://{self.bucket.bucket_name}/{C.LAKE_PREFIX}"
