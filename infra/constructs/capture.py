"""Per table: the stream check, the capture Lambda, its event source mapping and on-failure queue.

The Lambda asset is ``handlers/stream_to_firehose.py`` plus the ``ddbtrail`` package and
orjson's wheel for the function's architecture, staged in a folder (no Docker); Powertools
comes from AWS's public layer. The capture path imports only the standard library,
boto3, Powertools and (when present) orjson.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, CustomResource, Duration, RemovalPolicy, Stage
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ddbtrail.delivery.firehose import MAX_ROWS_PER_RECORD
from infra import constants as C
from infra.config import DeployConfig, read_redaction_policy
from infra.constructs.nag import acknowledge, arn_finding, depends_only_on

RUNTIME_REASON = (f"{C.LAMBDA_PYTHON} is the runtime the public Powertools V3 layer "
                  f"({C.POWERTOOLS_LAYER_NAME}) is built for and the one ddbtrail is tested on.")


def build_lambda_asset(handler_file: str, dest: Path, *,
                       architecture: str = C.LAMBDA_ARCHITECTURE,
                       python: str = C.LAMBDA_PYTHON) -> Path:
    """Copy one handler from ``handlers/`` and the core package into ``dest`` (replaced),
    with orjson for ``architecture`` and ``python`` (e.g. ``python3.12``) beside them.

    Layout: ``dest/<handler_file>``, ``dest/ddbtrail/...`` (without caches or the CLI and
    local-emulation code) and ``dest/orjson/``. Built without Docker. Returns ``dest``.
    Without the wheel (offline, nothing cached) the asset still works on the standard
    library's JSON, with the same bytes, and a warning says so.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(C.HANDLERS_DIR / handler_file, dest / handler_file)
    shutil.copytree(C.CORE_PACKAGE_DIR, dest / "ddbtrail",
                    ignore=shutil.ignore_patterns(*C.CAPTURE_ASSET_IGNORE))
    try:
        wheel = lambda_wheel("orjson", architecture, python)
    except WheelUnavailable as exc:
        warnings.warn(f"{exc}; the Lambda asset falls back to the standard library's JSON "
                      "(same bytes, slower capture)", stacklevel=2)
    else:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(dest)
    return dest


class WheelUnavailable(RuntimeError):
    """No wheel for the Lambda's platform is cached, and pip could not download one."""


@dataclass(frozen=True)
class Pin:
    """One package of the Lambda lock: its version and the SHA-256s of its files."""

    name: str
    version: str
    hashes: frozenset[str]


_PIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def lambda_pin(name: str, lock: Path = C.LAMBDA_LOCK) -> Pin:
    """``name``'s pin in the Lambda lock (a ``uv pip compile --generate-hashes`` file)."""
    current: str | None = None
    version = ""
    hashes: set[str] = set()
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN_LINE.match(line)
        if match:
            if current == name:
                break
            current, version, hashes = match[1].lower(), match[2], set()
        elif current == name:
            hashes.update(_HASH.findall(line))
    if current != name or not hashes:
        raise WheelUnavailable(f"{name} has no pinned version with hashes in {lock}")
    return Pin(name, version, frozenset(hashes))


def wheel_cache() -> Path:
    """Where Lambda wheels are kept between synths: LAMBDA_WHEEL_CACHE, else
    ``~/.cache/ddbtrail/lambda-wheels``."""
    env = os.environ.get("LAMBDA_WHEEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ddbtrail" / "lambda-wheels"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lambda_wheel(name: str, architecture: str, python: str, *,
                 lock: Path = C.LAMBDA_LOCK) -> Path:
    """The manylinux wheel of ``name`` at its locked version for a Lambda of ``architecture``
    and ``python``: from the cache, else ``pip download --require-hashes`` into it (once per
    machine; synths after that need no network). A wheel whose SHA-256 is not in the lock is
    never used, cached or downloaded."""
    pin = lambda_pin(name, lock)
    major_minor = python.removeprefix("python")
    abi = "cp" + major_minor.replace(".", "")
    arch = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    cache = wheel_cache()
    pattern = f"{name}-{pin.version}-{abi}-{abi}-*{arch}*.whl"

    def locked() -> list[Path]:
        return sorted(w for w in cache.glob(pattern) if _sha256(w) in pin.hashes)

    found = locked()
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in C.WHEEL_PLATFORMS[architecture] for arg in ("--platform", p)]
    requirement = cache / f".{name}-{pin.version}.requirements.txt"
    requirement.write_text(f"{name}=={pin.version} " + " ".join(
        f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n", encoding="utf-8")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--require-hashes", "-r", str(requirement),
             "--no-deps", "--only-binary=:all:", *platforms, "--python-version", major_minor,
             "--implementation", "cp", "--abi", abi, "--dest", str(cache), "--quiet",
             "--disable-pip-version-check"],
            capture_output=True, text=True, timeout=300, check=False)
        reason = (proc.stderr.strip().splitlines() or ["no matching wheel"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = f"pip could not run: {exc}"
    found = locked()
    if not found:
        raise WheelUnavailable(f"no {name} {pin.version} wheel for {python} on {architecture} "
                               f"with a locked hash in {cache}: {reason}")
    return found[-1]


def build_capture_asset(dest: Path) -> Path:
    """The capture Lambda's asset: ``stream_to_firehose.py`` and the core package."""
    return build_lambda_asset(C.CAPTURE_HANDLER_FILE, dest)


def capture_environment(cfg: DeployConfig, *, table: str, delivery_stream: str,
                        spill_bucket: str) -> dict[str, str]:
    """The capture Lambda's environment (``CaptureSettings.from_env`` reads every key).

    With ``cfg.redaction_policy``: REDACTION_POLICY (compact JSON) and the key's source,
    which the role needs ``redaction_statements(cfg)`` to read. With ``cfg.evidence``:
    RECEIPTS_BUCKET (the lake bucket, = ``spill_bucket``) and RECEIPTS_PREFIX, which the role
    needs ``receipts_statements(cfg, bucket)`` to write.
    """
    redaction: dict[str, str] = {}
    if cfg.redaction_policy is not None:
        redaction["REDACTION_POLICY"] = read_redaction_policy(cfg.redaction_policy)
        if cfg.redaction_key_secret_arn:
            redaction["REDACTION_KEY_SECRET_ARN"] = cfg.redaction_key_secret_arn
        if cfg.redaction_key_parameter:
            redaction["REDACTION_KEY_PARAMETER"] = cfg.redaction_key_parameter
    return {
        "DELIVERY_STREAM_NAME": delivery_stream,
        "TABLE_NAME": table,
        "SPILL_BUCKET": spill_bucket,
        "SPILL_PREFIX": C.SPILL_PREFIX,
        "QUARANTINE_PREFIX": C.QUARANTINE_PREFIX,
        "PACK_ROWS": "true" if cfg.packs_rows else "false",
        "MAX_ROWS_PER_RECORD": str(MAX_ROWS_PER_RECORD),
        "MAX_ATTEMPTS": "8",
        **redaction,
        **({"RECEIPTS_BUCKET": spill_bucket, "RECEIPTS_PREFIX": C.RECEIPTS_PREFIX}
           if cfg.evidence else {}),
    }


def receipts_statements(cfg: DeployConfig, bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    """What writing receipts needs (docs/evidence.md): one PUT per delivered batch, under the
    receipts prefix only (the lake key is granted via S3 with the spill prefixes). Empty
    without ``cfg.evidence``."""
    if not cfg.evidence:
        return []
    return [iam.PolicyStatement(sid="Receipts", actions=["s3:PutObject"],
                                resources=[bucket.arn_for_objects(f"{C.RECEIPTS_PREFIX}*")])]


def acknowledge_receipts(cfg: DeployConfig, policy: iam.Policy, bucket: s3.IBucket) -> None:
    """cdk-nag's IAM5 finding for ``receipts_statements``' prefix wildcard, with its reason."""
    if cfg.evidence:
        acknowledge(policy, arn_finding(bucket, f"/{C.RECEIPTS_PREFIX}*"),
                    "A receipt is one new object per delivered batch, named by its uuid; "
                    "the wildcard is limited to the receipts prefix of the lake bucket.")


def parameter_arn(name: str) -> str:
    """The ARN of SSM parameter ``name`` in the stack's account and region."""
    return f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter/{name.lstrip('/')}"


def redaction_statements(cfg: DeployConfig) -> list[iam.PolicyStatement]:
    """What reading the redaction key at cold start needs (``capture.redaction_key.load_key``).

    The one secret or parameter, and its customer key only through that service. Empty
    without a redaction policy.
    """
    if cfg.redaction_policy is None:
        return []
    if cfg.redaction_key_secret_arn:
        service = "secretsmanager"
        statements = [iam.PolicyStatement(sid="RedactionKeySecret",
                                          actions=["secretsmanager:GetSecretValue"],
                                          resources=[cfg.redaction_key_secret_arn])]
    else:
        assert cfg.redaction_key_parameter  # config: a policy needs a key source
        service = "ssm"
        statements = [iam.PolicyStatement(sid="RedactionKeyParameter",
                                          actions=["ssm:GetParameter"],
                                          resources=[parameter_arn(cfg.redaction_key_parameter)])]
    if cfg.redaction_key_kms_arn:
        statements.append(iam.PolicyStatement(
            sid="RedactionKeyCmk", actions=["kms:Decrypt"], resources=[cfg.redaction_key_kms_arn],
            conditions={"StringEquals": {
                "kms:ViaService": f"{service}.{Aws.REGION}.amazonaws.com"}}))
    return statements


class StreamCheck(Construct):
    """One small Lambda backing a ``Custom::DdbtrailStreamCheck`` per existing table.

    Synth is offline, so the stream is checked at deploy time: the stack fails with a
    one-line reason (no stream, wrong view) before anything reads from the table.
    """

    def __init__(self, scope: Construct, cid: str, *, tables: tuple[str, ...]) -> None:
        super().__init__(scope, cid)
        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description="ddbtrail stream check: DescribeTable on captured tables")
        role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:DescribeTable"],
            resources=[table_arn(t) for t in tables]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn]))
        self.function = lambda_.Function(
            self, "Function",
            runtime=lambda_.Runtime(C.LAMBDA_PYTHON, lambda_.RuntimeFamily.PYTHON),
            architecture=lambda_.Architecture.ARM_64,
            handler="stream_check.handler",
            code=lambda_.Code.from_asset(str(C.FUNCTIONS_DIR),
                                         exclude=["__pycache__", "*.pyc", "__init__.py"]),
            timeout=Duration.seconds(60), memory_size=128, role=role, log_group=log_group,
            description="ddbtrail: checks a table's stream at deploy time")
        acknowledge(self.function, "AwsSolutions-L1", RUNTIME_REASON)
        depends_only_on(self.function, role.node.find_child("DefaultPolicy"))

    def check(self, scope: Construct, cid: str, table: str,
              cfg: DeployConfig) -> CustomResource:
        """A custom resource whose ``StreamArn``/``StreamViewType`` describe ``table``."""
        return CustomResource(
            scope, cid, service_token=self.function.function_arn,
            resource_type="Custom::DdbtrailStreamCheck",
            properties={
                "TableName": table,
                "RequireNewAndOldImages": str(cfg.require_new_and_old_images).lower(),
                # Bump to re-run the check (e.g. after a stream was re-enabled: new ARN).
                "Serial": cfg.stream_check_serial,
            })


@dataclass(frozen=True, slots=True)
class Shared:
    """What every table's capture uses."""

    cfg: DeployConfig
    code: lambda_.Code
    powertools: lambda_.ILayerVersion
    delivery_stream_name: str
    delivery_stream_arn: str
    bucket: s3.IBucket
    lake_key: kms.IKey
    ops_key: kms.IKey


def table_arn(table: str) -> str:
    return f"arn:{Aws.PARTITION}:dynamodb:{Aws.REGION}:{Aws.ACCOUNT_ID}:table/{table}"


def staged_code(scope: Construct, handler_file: str, name: str) -> lambda_.Code:
    """A handler's asset (``build_lambda_asset``), staged under the cloud assembly folder."""
    staging = Path(Stage.of(scope).outdir) / ".staging" / name  # type: ignore[union-attr]
    return lambda_.Code.from_asset(str(build_lambda_asset(handler_file, staging)))


def shared_code(scope: Construct) -> lambda_.Code:
    """The capture asset, staged under the cloud assembly folder."""
    return staged_code(scope, C.CAPTURE_HANDLER_FILE, "capture")


def python_function(scope: Construct, cid: str, *, handler: str, code: lambda_.Code,
                    layers: list[lambda_.ILayerVersion], memory_mb: int, timeout_seconds: int,
                    role: iam.IRole, log_group: logs.ILogGroup,
                    environment: Mapping[str, str], description: str,
                    reserved_concurrency: int | None = None) -> lambda_.Function:
    """A ddbtrail Lambda: the Python runtime the Powertools layer is built for, on arm64."""
    function = lambda_.Function(
        scope, cid,
        runtime=lambda_.Runtime(C.LAMBDA_PYTHON, lambda_.RuntimeFamily.PYTHON),
        architecture=lambda_.Architecture.ARM_64,  # = C.LAMBDA_ARCHITECTURE
        handler=handler, code=code, layers=layers,
        memory_size=memory_mb, timeout=Duration.seconds(timeout_seconds),
        reserved_concurrent_executions=reserved_concurrency,
        role=role, log_group=log_group, environment=dict(environment),
        description=description)
    acknowledge(function, "AwsSolutions-L1", RUNTIME_REASON)
    return function


def powertools_layer(scope: Construct, version: int) -> lambda_.ILayerVersion:
    arn = (f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{C.POWERTOOLS_ACCOUNT}:layer:"
           f"{C.POWERTOOLS_LAYER_NAME}:{version}")
    return lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", arn)


class TableCapture(Construct):
    """Capture of one table: ``function``, ``mapping`` (ESM), ``dlq`` and ``stream_arn``."""

    def __init__(self, scope: Construct, cid: str, *, table: str, shared: Shared,
                 stream_arn: str) -> None:
        super().__init__(scope, cid)
        cfg = shared.cfg
        self.table = table
        self.stream_arn = stream_arn
        # Lambda's on-failure record names the shard and sequence range (not the data);
        # the redrive re-reads them, so records must still be in the stream: see
        # max_record_age_seconds, kept under the 24 h retention.
        self.dlq = sqs.Queue(self, "OnFailure", encryption=sqs.QueueEncryption.KMS,
                             encryption_master_key=shared.ops_key, enforce_ssl=True,
                             retention_period=Duration.days(14))
        acknowledge(self.dlq, "AwsSolutions-SQS3",
                    "This queue is itself the on-failure destination (a DLQ) of the mapping.")
        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS,
                                  removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"ddbtrail capture of table {table}")
        spill_arns = [shared.bucket.arn_for_objects(f"{C.SPILL_PREFIX}*"),
                      shared.bucket.arn_for_objects(f"{C.QUARANTINE_PREFIX}*")]
        stream_wildcard = f"{table_arn(table)}/stream/*"
        self.policy = iam.Policy(self, "Policy", roles=[role], statements=[
            iam.PolicyStatement(sid="ReadStream", actions=[
                "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                resources=[stream_arn]),
            iam.PolicyStatement(sid="ListStreams", actions=["dynamodb:ListStreams"],
                                resources=[stream_wildcard]),
            iam.PolicyStatement(sid="Deliver", actions=["firehose:PutRecordBatch"],
                                resources=[shared.delivery_stream_arn]),
            iam.PolicyStatement(sid="SpillAndQuarantine", actions=["s3:PutObject"],
                                resources=spill_arns),
            iam.PolicyStatement(sid="LakeKeyViaS3", actions=["kms:GenerateDataKey"],
                                resources=[shared.lake_key.key_arn],
                                conditions={"StringEquals": {
                                    "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}),
            iam.PolicyStatement(sid="OnFailure", actions=["sqs:SendMessage"],
                                resources=[self.dlq.queue_arn]),
            iam.PolicyStatement(sid="OpsKeyViaSqs", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                resources=[shared.ops_key.key_arn],
                                conditions={"StringEquals": {
                                    "kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com"}}),
            iam.PolicyStatement(sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[log_group.log_group_arn]),
            *redaction_statements(cfg),
            *receipts_statements(cfg, shared.bucket),
        ])
        for prefix in (C.SPILL_PREFIX, C.QUARANTINE_PREFIX):
            acknowledge(self.policy, arn_finding(shared.bucket, f"/{prefix}*"),
                        "Spilled rows and quarantined records get one object per event; "
                        "the wildcard is limited to that prefix of the lake bucket.")
        acknowledge_receipts(cfg, self.policy, shared.bucket)
        acknowledge(self.policy, stream_finding(table),
                    "ListStreams is scoped to this table's streams, as the DynamoDB docs show; "
                    "the stream ARN changes if the stream is re-enabled.")

        self.function = python_function(
            self, "Function", handler=C.CAPTURE_HANDLER, code=shared.code,
            layers=[shared.powertools], memory_mb=cfg.lambda_memory_mb,
            timeout_seconds=cfg.lambda_timeout_seconds, role=role, log_group=log_group,
            environment=capture_environment(cfg, table=table,
                                            delivery_stream=shared.delivery_stream_name,
                                            spill_bucket=shared.bucket.bucket_name),
            description=f"ddbtrail: {table} stream -> Firehose")
        depends_only_on(self.function, self.policy)

        esm = cfg.esm
        self.mapping = lambda_.CfnEventSourceMapping(
            self, "Mapping",
            function_name=self.function.function_name,
            event_source_arn=stream_arn,
            starting_position=esm.starting_position,
            batch_size=esm.batch_size,
            maximum_batching_window_in_seconds=esm.batch_window_seconds,
            parallelization_factor=esm.parallelization_factor,
            bisect_batch_on_function_error=esm.bisect_on_error,
            maximum_retry_attempts=esm.max_retry_attempts,
            maximum_record_age_in_seconds=esm.max_record_age_seconds,
            function_response_types=["ReportBatchItemFailures"],
            destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(
                    destination=self.dlq.queue_arn)),
            enabled=True,
        )
        # The mapping checks the role's permissions when it is created.
        self.mapping.node.add_dependency(self.policy)


def stream_finding(table: str) -> str:
    """cdk-nag's IAM5 finding for ``table``'s ``stream/*`` ARN."""
    return (f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:"
            f"<AWS::AccountId>:table/{table}/stream/*]")


def demo_table(scope: Construct, name: str) -> dynamodb.Table:
    """A small on-demand table with a NEW_AND_OLD_IMAGES stream, deleted with the stack."""
    return dynamodb.Table(
        scope, "DemoTable", table_name=name,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True),
        removal_policy=RemovalPolicy.DESTROY,
    )
