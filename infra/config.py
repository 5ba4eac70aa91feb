"""Deployment settings: CDK context (``-c key=value``) over a JSON config file over defaults.

Pure and offline, so it is tested without a synth. Every problem raises ConfigError
naming the setting; ``app.py`` prints it as one ``error: ...`` line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from ddbtrail.capture.runner.esm import EsmSettings
from ddbtrail.catalog.glue import LAKE_FORMATS
from ddbtrail.core.exceptions import ConfigError
from ddbtrail.core.redact import RedactionPolicy
from infra import constants as C

_DDB_TABLE: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
_S3_BUCKET: Final = re.compile(r"(?!xn--)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_S3_PREFIX: Final = re.compile(r"[A-Za-z0-9!_.*'()/-]{0,200}\Z")
_DAY: Final = re.compile(r"\d{4}/\d{2}/\d{2}\Z")
_GLUE_NAME: Final = re.compile(r"[a-z0-9_]{1,255}\Z")
_WORKGROUP: Final = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")
_STACK: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}\Z")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
# Complete ARNs only: IAM is granted on exactly this resource (a secret's ARN ends in the
# 6-character suffix Secrets Manager adds; an alias ARN does not authorize kms:Decrypt).
_SECRET_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}\Z")
_KMS_KEY_ARN: Final = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+\Z")
# A hierarchical name starts with "/"; "aws" and "ssm" prefixes are reserved.
_SSM_NAME: Final = re.compile(r"(?!/?(aws|ssm))((/[A-Za-z0-9_.-]+)+|[A-Za-z0-9_.-]+)\Z",
                              re.IGNORECASE)
# Lambda allows 4 KB of environment in all; leave room for the capture's other variables.
MAX_REDACTION_POLICY_BYTES: Final = 3_072
ARCHIVE_CLASSES: Final = ("GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
# Athena cannot read these without a restore first (GLACIER_IR it reads as it is).
UNREADABLE_ARCHIVE_CLASSES: Final = ("GLACIER", "DEEP_ARCHIVE")
LOCK_MODES: Final = ("GOVERNANCE", "COMPLIANCE")
# The event source mapping's defaults live in one place, shared with the local runner.
_ESM: Final = EsmSettings()
_TRUE: Final = {"1", "true", "yes", "on"}
_FALSE: Final = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class DeployConfig:
    """Every setting of one deployment, validated. See docs/deploy.md for each key."""

    stack_name: str = C.DEFAULT_STACK_NAME
    tables: tuple[str, ...] = ()
    demo_table: bool = False
    demo_table_name: str = C.DEFAULT_DEMO_TABLE
    format: str = "parquet"
    database: str = C.DEFAULT_DATABASE
    workgroup: str = C.DEFAULT_WORKGROUP
    # None = per format: packed rows need Firehose's RecordDeAggregation; that is only
    # turned on by default for JSON Lines (see docs/deploy.md, "Packing and Parquet").
    pack_rows: bool | None = None
    require_new_and_old_images: bool = True
    stream_check_serial: str = "1"
    batch_size: int = _ESM.batch_size
    batch_window_seconds: int = _ESM.batch_window_seconds
    max_retry_attempts: int = _ESM.max_retry_attempts
    max_record_age_seconds: int = _ESM.max_record_age_seconds
    parallelization_factor: int = _ESM.parallelization_factor
    lambda_memory_mb: int = 512
    lambda_timeout_seconds: int = 120
    buffer_interval_seconds: int = 300
    buffer_size_mb: int | None = None
    ia_days: int = 30
    archive_days: int = 90
    archive_class: str = "GLACIER_IR"
    # Only with this may archive_class make old changes unreadable to Athena (docs/deploy.md).
    allow_unreadable_archive: bool = False
    expire_days: int = 0
    object_lock_days: int = 0
    object_lock_mode: str = "GOVERNANCE"
    results_expire_days: int = 30
    bytes_scanned_cutoff: int = 10 * 1024**3
    iterator_age_alarm_ms: int = 600_000
    freshness_alarm_seconds: int = 1_800
    dlq_alarm_messages: int = 1
    lambda_errors_alarm: int = 1
    alarm_email: str | None = None
    powertools_layer_version: int = C.POWERTOOLS_LAYER_VERSION
    sqs_copy_target_table: str | None = None
    sqs_copy_sender_accounts: tuple[str, ...] = ()
    # Optional scheduled redrive of each table's on-failure queue (infra/constructs/redrive.py).
    redrive: bool = False
    redrive_schedule_minutes: int = 15
    redrive_alarm_age_seconds: int = 3_600
    # Optional folder of `ddbtrail views --out DIR` files, deployed as named queries.
    views_dir: Path | None = None
    # Optional PII redaction in the capture (and redrive) Lambdas: a policy file and its
    # HMAC key's source, one of a secret or an SSM SecureString (SECURITY.md, section 5).
    redaction_policy: Path | None = None
    redaction_key_secret_arn: str | None = None
    redaction_key_parameter: str | None = None
    redaction_key_kms_arn: str | None = None
    # Who changed it (docs/cloudtrail.md): an existing trail's bucket (and key prefix) for
    # the Athena CloudTrail table; create_trail also makes a trail of the captured tables'
    # write data events (into that bucket, or a new one when none is named).
    cloudtrail_bucket: str | None = None
    cloudtrail_prefix: str = ""
    create_trail: bool = False
    cloudtrail_start_day: str = "2024/01/01"
    # Evidence (docs/evidence.md): capture receipts, hourly KMS-signed digests, the daily
    # reconciliation and its alarms. false deploys none of it.
    evidence: bool = True

    @property
    def cloudtrail(self) -> bool:
        """Whether the stack deploys the CloudTrail table (and maybe the trail)."""
        return bool(self.cloudtrail_bucket) or self.create_trail

    @property
    def all_tables(self) -> tuple[str, ...]:
        """Captured tables: the existing ones, then the demo table if asked for."""
        return self.tables + ((self.demo_table_name,) if self.demo_table else ())

    @property
    def esm(self) -> EsmSettings:
        """The capture's event source mapping, as the local runner knows it too."""
        return EsmSettings(batch_size=self.batch_size,
                           batch_window_seconds=self.batch_window_seconds,
                           max_retry_attempts=self.max_retry_attempts,
                           max_record_age_seconds=self.max_record_age_seconds,
                           parallelization_factor=self.parallelization_factor)

    @property
    def packs_rows(self) -> bool:
        """Whether the capture Lambda packs rows (PACK_ROWS) and Firehose de-aggregates."""
        return self.format == "jsonl" if self.pack_rows is None else self.pack_rows

    @property
    def buffer_mb(self) -> int:
        """Firehose SizeInMBs: 128 for Parquet (conversion needs >= 64) and Iceberg (fewer,
        larger data files per commit), 64 for JSON Lines."""
        if self.buffer_size_mb is not None:
            return self.buffer_size_mb
        return C.FIREHOSE_MAX_BUFFER_MB if self.format in ("parquet", "iceberg") else 64


KEYS: Final = tuple(f.name for f in fields(DeployConfig))
# Context/file spellings that differ from the field name.
_ALIASES: Final = {"fmt": "format"}


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{key}={value!r} is not a boolean (true or false)")


def _as_int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} is not a whole number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a whole number") from None
    if not lo <= number <= hi:
        raise ConfigError(f"{key}={number} is outside {lo}..{hi}")
    return number


def _as_choice(key: str, value: Any, choices: tuple[str, ...], *, upper: bool = False) -> str:
    text = str(value).strip()
    text = text.upper() if upper else text.lower()
    if text not in choices:
        raise ConfigError(f"{key}={value!r}: expected one of {', '.join(choices)}")
    return text


def _as_name(key: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
    text = str(value).strip()
    if not pattern.match(text):
        raise ConfigError(f"{key}={value!r} is not a valid {what}")
    return text


def _as_tables(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"tables={value!r}: expected a comma list or a JSON list of names")
    names = [str(v).strip() for v in items if str(v).strip()]
    for name in names:
        if not _DDB_TABLE.match(name):
            raise ConfigError(f"tables: {name!r} is not a DynamoDB table name")
    return tuple(dict.fromkeys(names))


def _as_accounts(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"sqs_copy_sender_accounts={value!r}: expected a list of account ids")
    accounts = tuple(str(v).strip() for v in items if str(v).strip())
    for account in accounts:
        if not re.fullmatch(r"\d{12}", account):
            raise ConfigError(f"sqs_copy_sender_accounts: {account!r} is not a 12-digit account id")
    return accounts


def _as_views_dir(value: Any) -> Path | None:
    """An existing folder holding at least one .sql file (relative to the working directory)."""
    text = str(value).strip()
    if not text:
        return None
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"views_dir={text!r} is not a folder (write one with "
                          "'ddbtrail views --table T --out DIR')")
    if not any(folder.glob("*.sql")):
        raise ConfigError(f"views_dir={text!r} holds no .sql files (write them with "
                          "'ddbtrail views --table T --out DIR')")
    return folder


def _as_policy_file(value: Any) -> Path | None:
    """An existing policy file (relative to the working directory) that reads as a policy."""
    text = str(value).strip()
    if not text:
        return None
    path = Path(text).expanduser()
    read_redaction_policy(path)
    return path


def read_redaction_policy(path: Path) -> str:
    """The redaction policy in ``path`` as compact JSON (REDACTION_POLICY's value).

    Checked as the capture checks it at cold start (``RedactionPolicy.from_mapping``), so a
    bad mode or attribute fails the synth, not the deployed Lambda. Raises ConfigError.
    """
    where = f"redaction_policy={str(path)!r}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    try:
        # Any key: the key source is checked with the other settings.
        policy = RedactionPolicy.from_mapping(raw, key=b"x")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if not any(policy.tables.values()):
        raise ConfigError(f"{where} names no attribute to redact")
    text = json.dumps(raw, separators=(",", ":"))
    if len(text) > MAX_REDACTION_POLICY_BYTES:
        raise ConfigError(f"{where} is {len(text)} bytes as compact JSON; Lambda's 4 KB "
                          f"environment leaves it at most {MAX_REDACTION_POLICY_BYTES}")
    return text


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in a JSON config file. Raises ConfigError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a JSON object of settings")
    unknown = sorted(set(data) - set(KEYS) - set(_ALIASES))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return data


def load_config(context: Mapping[str, Any], *, config_file: Path | None = None) -> DeployConfig:
    """Merge defaults < config file < context and validate.

    ``context`` holds CDK context values (strings from ``-c``, or JSON values from
    cdk.json); keys that are not settings are ignored. ``config_file`` is read when
    given; ``context["config"]`` names another file. Raises ConfigError.
    """
    raw: dict[str, Any] = {}
    path = Path(str(context["config"])) if context.get("config") else config_file
    if path is not None and (context.get("config") or path.is_file()):
        raw.update(read_config_file(path))
    for key, value in context.items():
        if value is not None and (key in KEYS or key in _ALIASES):
            raw[key] = value
    for alias, key in _ALIASES.items():
        if alias in raw:
            raw[key] = raw.pop(alias)
    return _validate(raw)


def _validate(raw: dict[str, Any]) -> DeployConfig:
    out: dict[str, Any] = {}
    ints = {
        "batch_size": (1, C.ESM_MAX_BATCH_SIZE),
        "batch_window_seconds": (0, C.ESM_MAX_WINDOW_SECONDS),
        "max_retry_attempts": (0, 10_000),
        # -1 (forever) is refused: a poison record would block its shard until it ages out.
        "max_record_age_seconds": (60, C.STREAM_RETENTION_SECONDS),
        "parallelization_factor": (1, 10),
        "lambda_memory_mb": (128, 10_240),
        "lambda_timeout_seconds": (10, 900),
        "buffer_interval_seconds": (0, C.FIREHOSE_MAX_INTERVAL_SECONDS),
        "buffer_size_mb": (1, C.FIREHOSE_MAX_BUFFER_MB),
        "ia_days": (30, 36_500),
        "archive_days": (1, 36_500),
        "expire_days": (0, 36_500),
        "object_lock_days": (0, 36_500),
        "results_expire_days": (1, 3_650),
        "bytes_scanned_cutoff": (C.ATHENA_MIN_CUTOFF_BYTES, 2**63 - 1),
        "iterator_age_alarm_ms": (1_000, C.STREAM_RETENTION_SECONDS * 1000),
        "freshness_alarm_seconds": (60, 86_400),
        "dlq_alarm_messages": (1, 1_000_000),
        "lambda_errors_alarm": (1, 1_000_000),
        "powertools_layer_version": (1, 100_000),
        "redrive_schedule_minutes": (1, 1_440),
        "redrive_alarm_age_seconds": (60, C.STREAM_RETENTION_SECONDS - 1),
    }
    for key, value in raw.items():
        if key == "tables":
            out[key] = _as_tables(value)
        elif key in ("demo_table", "require_new_and_old_images", "redrive", "create_trail",
                     "allow_unreadable_archive", "evidence"):
            out[key] = _as_bool(key, value)
        elif key == "pack_rows":
            auto = str(value).strip().lower() == "auto"
            out[key] = None if auto else _as_bool(key, value)
        elif key == "format":
            out[key] = _as_choice(key, value, LAKE_FORMATS)
        elif key == "archive_class":
            out[key] = _as_choice(key, value, ARCHIVE_CLASSES, upper=True)
        elif key == "object_lock_mode":
            out[key] = _as_choice(key, value, LOCK_MODES, upper=True)
        elif key in ints:
            out[key] = _as_int(key, value, *ints[key])
        elif key in ("demo_table_name", "sqs_copy_target_table"):
            out[key] = _as_name(key, value, _DDB_TABLE, "DynamoDB table name")
        elif key == "database":
            out[key] = _as_name(key, value, _GLUE_NAME, "Glue name (a-z, 0-9, _)")
        elif key == "workgroup":
            out[key] = _as_name(key, value, _WORKGROUP, "Athena workgroup name")
        elif key == "stack_name":
            out[key] = _as_name(key, value, _STACK, "CloudFormation stack name")
        elif key == "alarm_email":
            out[key] = _as_name(key, value, _EMAIL, "e-mail address")
        elif key == "sqs_copy_sender_accounts":
            out[key] = _as_accounts(value)
        elif key == "stream_check_serial":
            out[key] = str(value).strip() or "1"
        elif key == "views_dir":
            out[key] = _as_views_dir(value)
        elif key == "redaction_policy":
            out[key] = _as_policy_file(value)
        elif key == "cloudtrail_bucket":
            out[key] = _as_name(key, value, _S3_BUCKET, "S3 bucket name") if str(
                value).strip() else None
        elif key == "cloudtrail_prefix":
            out[key] = _as_name(key, value, _S3_PREFIX, "S3 key prefix").strip("/")
        elif key == "cloudtrail_start_day":
            out[key] = _as_name(key, value, _DAY, "day (yyyy/MM/dd)")
        elif key == "redaction_key_secret_arn":
            out[key] = _as_name(key, value, _SECRET_ARN,
                                "complete Secrets Manager secret ARN (ending in its "
                                "6-character suffix)")
        elif key == "redaction_key_parameter":
            out[key] = _as_name(key, value, _SSM_NAME, "SSM parameter name")
        elif key == "redaction_key_kms_arn":
            out[key] = _as_name(key, value, _KMS_KEY_ARN, "KMS key ARN (arn:...:key/<id>)")
    if not out.get("tables") and "demo_table" not in out:
        # Nothing named: synthesize (and deploy) the demo table, so a bare
        # `python infra/app.py` or `cdk synth` works; app.py says so on stderr.
        out["demo_table"] = True
    cfg = DeployConfig(**out)
    _check_together(cfg)
    return cfg


def _check_retention(cfg: DeployConfig) -> None:
    """Refuse lifecycle settings that would make a table unreadable to Athena."""
    # Iceberg with expire_days: the table's own DELETE and snapshot expiry (no S3 expiry
    # under lake/, infra/constructs/lake.py and retention.py), never refused here.
    if cfg.archive_class in UNREADABLE_ARCHIVE_CLASSES and not cfg.allow_unreadable_archive:
        raise ConfigError(f"archive_class={cfg.archive_class}: Athena cannot read "
                          f"{cfg.archive_class} objects, so queries over changes older than "
                          f"archive_days={cfg.archive_days} would fail; use GLACIER_IR, or add "
                          "allow_unreadable_archive=true to accept that")


def _check_together(cfg: DeployConfig) -> None:
    if not cfg.all_tables:
        raise ConfigError("tables: name at least one table (-c tables=orders,customers) "
                          "or allow the demo table (-c demo_table=true)")
    if cfg.demo_table and cfg.demo_table_name in cfg.tables:
        raise ConfigError(f"demo_table_name={cfg.demo_table_name!r} is also in tables")
    if cfg.format == "parquet" and cfg.buffer_mb < C.FIREHOSE_MIN_PARQUET_BUFFER_MB:
        raise ConfigError(f"buffer_size_mb={cfg.buffer_mb}: Parquet conversion needs at "
                          f"least {C.FIREHOSE_MIN_PARQUET_BUFFER_MB}")
    if cfg.format == "iceberg" and cfg.packs_rows:
        # AWS documents no record de-aggregation for the Iceberg destination.
        raise ConfigError("pack_rows=true: Firehose's Iceberg destination takes one JSON row "
                          "per record; use pack_rows=auto with format=iceberg")
    # S3 refuses a second transition sooner than 30 days after STANDARD_IA.
    if cfg.archive_days < cfg.ia_days + 30:
        raise ConfigError(f"archive_days={cfg.archive_days} must be at least ia_days + 30 "
                          f"({cfg.ia_days + 30})")
    _check_retention(cfg)
    if cfg.expire_days and cfg.expire_days <= cfg.archive_days:
        raise ConfigError(f"expire_days={cfg.expire_days} must be after archive_days="
                          f"{cfg.archive_days} (or 0 to keep changes forever)")
    if cfg.expire_days and cfg.object_lock_days > cfg.expire_days:
        raise ConfigError(f"object_lock_days={cfg.object_lock_days} is longer than "
                          f"expire_days={cfg.expire_days}; locked versions cannot expire")
    if cfg.freshness_alarm_seconds <= cfg.buffer_interval_seconds:
        raise ConfigError(f"freshness_alarm_seconds={cfg.freshness_alarm_seconds} must exceed "
                          f"buffer_interval_seconds={cfg.buffer_interval_seconds}")
    if cfg.max_record_age_seconds >= C.STREAM_RETENTION_SECONDS:
        raise ConfigError(f"max_record_age_seconds={cfg.max_record_age_seconds} must be under "
                          "the stream's 24 h retention, so a redrive can still read the records")
    # A message arrives with records up to max_record_age_seconds old; its age alarm must
    # fire while they are still in the stream.
    if cfg.redrive and (cfg.max_record_age_seconds + cfg.redrive_alarm_age_seconds
                        >= C.STREAM_RETENTION_SECONDS):
        raise ConfigError(f"redrive_alarm_age_seconds={cfg.redrive_alarm_age_seconds} plus "
                          f"max_record_age_seconds={cfg.max_record_age_seconds} must be under "
                          "the stream's 24 h retention, so the alarm fires before records are lost")
    _check_redaction(cfg)


def _check_redaction(cfg: DeployConfig) -> None:
    """A policy needs exactly one key source; a key source (or its CMK) needs a policy."""
    sources = [k for k in ("redaction_key_secret_arn", "redaction_key_parameter")
               if getattr(cfg, k)]
    if len(sources) > 1:
        raise ConfigError("redaction_key_secret_arn and redaction_key_parameter are both set; "
                          "the key comes from one of them")
    if cfg.redaction_policy is not None and not sources:
        raise ConfigError(f"redaction_policy={str(cfg.redaction_policy)!r} needs its HMAC key: "
                          "set redaction_key_secret_arn or redaction_key_parameter")
    # Unused grants are not least privilege: a key setting without a policy is a mistake.
    extra = [*sources, *(["redaction_key_kms_arn"] if cfg.redaction_key_kms_arn else [])]
    if cfg.redaction_policy is None and extra:
        raise ConfigError(f"{extra[0]} is set but redaction_policy is not; set both (or neither)")
