"""Deployment settings: context over file over defaults, and one clear error per bad value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddbtrail.catalog import glue as catalog
from ddbtrail.core import row
from ddbtrail.core.exceptions import ConfigError
from infra import constants as C
from infra.config import KEYS, DeployConfig, load_config, read_redaction_policy


def test_defaults_for_existing_tables() -> None:
    cfg = load_config({"tables": " orders, customers ,orders"})
    assert cfg.tables == ("orders", "customers")
    assert cfg.all_tables == ("orders", "customers")
    assert cfg.format == "parquet"
    # Parquet conversion needs >= 64 MB buffers; packing is opt-in there (docs/deploy.md).
    assert cfg.buffer_mb >= 64
    assert cfg.packs_rows is False
    assert cfg.max_record_age_seconds < C.STREAM_RETENTION_SECONDS
    assert cfg.require_new_and_old_images is True


def test_nothing_configured_means_the_demo_table() -> None:
    assert load_config({}).all_tables == (C.DEFAULT_DEMO_TABLE,)
    assert load_config({"tables": "orders"}).all_tables == ("orders",)


def test_jsonl_packs_rows_and_demo_table_is_added() -> None:
    cfg = load_config({"format": "JSONL", "demo_table": "yes", "pack_rows": "auto"})
    assert cfg.packs_rows is True
    assert cfg.all_tables == (C.DEFAULT_DEMO_TABLE,)


def test_context_overrides_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"tables": ["orders", "payments"], "format": "jsonl",
                                "expire_days": 400, "pack_rows": False}))
    cfg = load_config({"config": str(path), "expire_days": "500", "unrelated:flag": "x"})
    assert cfg.tables == ("orders", "payments")
    assert cfg.format == "jsonl"
    assert cfg.expire_days == 500
    assert cfg.packs_rows is False


def test_default_config_file_is_read_only_if_present(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    assert load_config({"tables": "orders"}, config_file=missing).tables == ("orders",)
    present = tmp_path / "config.json"
    present.write_text(json.dumps({"tables": "ledger"}))
    assert load_config({}, config_file=present).tables == ("ledger",)


@pytest.mark.parametrize(("context", "needle"), [
    ({"demo_table": "false"}, "tables: name at least one table"),
    ({"tables": "ok_table,a b"}, "tables: 'a b' is not a DynamoDB table name"),
    ({"tables": "orders", "format": "orc"}, "format='orc': expected one of parquet, jsonl"),
    ({"tables": "orders", "batch_size": "0"}, "batch_size=0 is outside 1..10000"),
    ({"tables": "orders", "batch_size": "many"}, "batch_size='many' is not a whole number"),
    ({"tables": "orders", "max_record_age_seconds": "86400"}, "max_record_age_seconds=86400"),
    ({"tables": "orders", "max_record_age_seconds": "-1"}, "max_record_age_seconds=-1"),
    ({"tables": "orders", "archive_days": "40"}, "archive_days=40 must be at least ia_days + 30"),
    ({"tables": "orders", "expire_days": "60"}, "expire_days=60 must be after archive_days"),
    ({"tables": "orders", "expire_days": "400", "object_lock_days": "500"},
     "object_lock_days=500 is longer than expire_days=400"),
    ({"tables": "orders", "buffer_size_mb": "32"}, "buffer_size_mb=32: Parquet conversion"),
    ({"tables": "orders", "bytes_scanned_cutoff": "1000"}, "bytes_scanned_cutoff=1000"),
    ({"tables": "orders", "alarm_email": "nobody"}, "alarm_email='nobody'"),
    ({"tables": "orders", "pack_rows": "maybe"}, "pack_rows='maybe' is not a boolean"),
    ({"tables": "orders", "object_lock_mode": "strict"}, "object_lock_mode='strict'"),
    ({"tables": "orders", "freshness_alarm_seconds": "300"}, "freshness_alarm_seconds=300"),
    ({"tables": "orders", "database": "Bad-Name"}, "database='Bad-Name'"),
    ({"tables": "orders", "sqs_copy_sender_accounts": "123"}, "'123' is not a 12-digit"),
    ({"demo_table": "true", "tables": C.DEFAULT_DEMO_TABLE}, "is also in tables"),
    ({"tables": "orders", "redrive": "sometimes"}, "redrive='sometimes' is not a boolean"),
    ({"tables": "orders", "evidence": "maybe"}, "evidence='maybe' is not a boolean"),
    ({"tables": "orders", "redrive_schedule_minutes": "0"},
     "redrive_schedule_minutes=0 is outside 1..1440"),
    ({"tables": "orders", "redrive_alarm_age_seconds": "86400"},
     "redrive_alarm_age_seconds=86400 is outside 60..86399"),
    # Records reach the queue up to max_record_age_seconds old: the alarm must fire in time.
    ({"tables": "orders", "redrive": "true", "max_record_age_seconds": "64800",
      "redrive_alarm_age_seconds": "21600"}, "redrive_alarm_age_seconds=21600 plus "
     "max_record_age_seconds=64800 must be under the stream's 24 h retention"),
    ({"tables": "orders", "views_dir": "/nonexistent/views"},
     "views_dir='/nonexistent/views' is not a folder"),
])
def test_bad_settings_name_the_setting(context: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(context)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"tables": "orders", "expiry_days": 30}))
    with pytest.raises(ConfigError, match=r"typo.json: unknown setting\(s\) expiry_days"):
        load_config({}, config_file=typo)
    broken = tmp_path / "broken.json"
    broken.write_text("{tables")
    with pytest.raises(ConfigError, match=r"broken\.json"):
        load_config({"config": str(broken)})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config({"config": str(tmp_path / "nope.json")})


def test_every_setting_is_documented() -> None:
    doc = (C.REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    missing = [k for k in KEYS if f"`{k}`" not in doc]
    assert missing == []


def test_firehose_prefix_is_the_row_partition_template() -> None:
    # Offline half of the synth contract: the same template, two placeholder syntaxes.
    as_glue = C.FIREHOSE_PREFIX.replace("!{partitionKeyFromQuery:", "${")
    assert catalog.location_template("s3://b/" + C.LAKE_PREFIX) == "s3://b/" + as_glue
    assert as_glue == C.LAKE_PREFIX + row.partition_path("${table_name}", "${dt}")


def test_dataclass_defaults_are_valid() -> None:
    # The defaults alone (plus a table) must pass validation.
    assert load_config({"tables": "orders"}) == DeployConfig(tables=("orders",))


def test_redrive_is_opt_in_with_its_schedule_and_alarm_age() -> None:
    off = load_config({"tables": "orders"})
    assert off.redrive is False
    on = load_config({"tables": "orders", "redrive": "true", "redrive_schedule_minutes": "5",
                      "redrive_alarm_age_seconds": "1800"})
    assert (on.redrive, on.redrive_schedule_minutes, on.redrive_alarm_age_seconds) == (
        True, 5, 1800)
    # The same pair without redrive deploys no alarm, so nothing to refuse.
    assert load_config({"tables": "orders", "max_record_age_seconds": "64800",
                        "redrive_alarm_age_seconds": "21600"}).redrive is False


def test_evidence_is_on_unless_turned_off() -> None:
    assert load_config({"tables": "orders"}).evidence is True
    assert load_config({"tables": "orders", "evidence": "false"}).evidence is False
    assert load_config({"tables": "orders", "evidence": False}).evidence is False


def test_views_dir_must_hold_sql_files(tmp_path: Path) -> None:
    views = tmp_path / "views"
    views.mkdir()
    with pytest.raises(ConfigError, match=r"views_dir='.*views' holds no \.sql files"):
        load_config({"tables": "orders", "views_dir": str(views)})
    (views / "orders_current.sql").write_text("-- name: orders_current\n", encoding="utf-8")
    assert load_config({"tables": "orders", "views_dir": str(views)}).views_dir == views
    assert load_config({"tables": "orders"}).views_dir is None


SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ddbtrail/redaction-Ab12Cd"
CMK = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def policy_file(folder: Path, policy: object, name: str = "policy.json") -> str:
    path = folder / name
    path.write_text(policy if isinstance(policy, str) else json.dumps(policy, indent=2),
                    encoding="utf-8")
    return str(path)


def test_redaction_policy_with_a_secret_or_a_parameter(tmp_path: Path) -> None:
    path = policy_file(tmp_path, {"users": {"email": "hmac"}, "*": {"password": "drop"}})
    cfg = load_config({"tables": "users", "redaction_policy": path,
                       "redaction_key_secret_arn": SECRET, "redaction_key_kms_arn": CMK})
    assert (cfg.redaction_policy, cfg.redaction_key_secret_arn, cfg.redaction_key_kms_arn) == (
        Path(path), SECRET, CMK)
    # What the Lambda gets: the same policy, compact.
    assert read_redaction_policy(Path(path)) == (
        '{"users":{"email":"hmac"},"*":{"password":"drop"}}')
    ssm = load_config({"tables": "users", "redaction_policy": path,
                       "redaction_key_parameter": "/ddbtrail/redaction-key"})
    assert ssm.redaction_key_parameter == "/ddbtrail/redaction-key"
    assert ssm.redaction_key_secret_arn is None
    off = load_config({"tables": "users"})
    assert (off.redaction_policy, off.redaction_key_secret_arn,
            off.redaction_key_parameter) == (None, None, None)


@pytest.mark.parametrize(("policy", "needle"), [
    ({"users": {"email": "mask"}},
     "REDACTION_POLICY['users']['email']: mode 'mask' is not drop or hmac"),
    ({"users": {"/address//street": "drop"}},
     "REDACTION_POLICY['users']: '/address//street' is not a valid JSON pointer"),
    ({"users": ["email"]}, "REDACTION_POLICY['users'] must map attributes to modes"),
    (["users"], "REDACTION_POLICY must be a JSON object"),
    ({"users": {}}, "names no attribute to redact"),
    ("{users", "Expecting property name"),
    ({"users": {f"attr{i:04d}": "drop" for i in range(300)}}, "Lambda's 4 KB environment"),
])
def test_bad_redaction_policy_is_one_line_naming_the_file_and_attribute(
        tmp_path: Path, policy: object, needle: str) -> None:
    path = policy_file(tmp_path, policy)
    with pytest.raises(ConfigError) as err:
        load_config({"tables": "users", "redaction_policy": path,
                     "redaction_key_secret_arn": SECRET})
    assert str(err.value).startswith(f"redaction_policy={path!r}")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("context", "needle"), [
    ({}, "needs its HMAC key: set redaction_key_secret_arn or redaction_key_parameter"),
    ({"redaction_key_kms_arn": CMK}, "needs its HMAC key"),
    ({"redaction_key_secret_arn": SECRET, "redaction_key_parameter": "/ddbtrail/key"},
     "redaction_key_secret_arn and redaction_key_parameter are both set"),
    ({"redaction_key_secret_arn": SECRET[:-7]}, "is not a valid complete Secrets Manager"),
    ({"redaction_key_secret_arn": "ddbtrail/redaction"}, "redaction_key_secret_arn="),
    ({"redaction_key_parameter": "/aws/reference/secretsmanager/x"},
     "redaction_key_parameter='/aws/reference/secretsmanager/x' is not a valid SSM"),
    ({"redaction_key_parameter": "ddbtrail/key"}, "redaction_key_parameter='ddbtrail/key'"),
    ({"redaction_key_secret_arn": SECRET,
      "redaction_key_kms_arn": "arn:aws:kms:us-east-1:111122223333:alias/ddbtrail"},
     "redaction_key_kms_arn='arn:aws:kms:us-east-1:111122223333:alias/ddbtrail'"),
])
def test_redaction_key_source_errors(tmp_path: Path, context: dict[str, str],
                                     needle: str) -> None:
    path = policy_file(tmp_path, {"users": {"email": "hmac"}})
    with pytest.raises(ConfigError) as err:
        load_config({"tables": "users", "redaction_policy": path, **context})
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("context", [
    {"redaction_key_secret_arn": SECRET},
    {"redaction_key_parameter": "/ddbtrail/key"},
    {"redaction_key_secret_arn": SECRET, "redaction_key_kms_arn": CMK},
])
def test_redaction_key_without_a_policy_is_refused(context: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"is set but redaction_policy is not"):
        load_config({"tables": "users", **context})


def test_missing_policy_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match=r"redaction_policy='.*nope\.json' does not exist"):
        load_config({"tables": "users", "redaction_policy": missing,
                     "redaction_key_secret_arn": SECRET})


@pytest.mark.parametrize("archive", ["GLACIER", "deep_archive"])
def test_an_archive_class_athena_cannot_read_is_refused_without_the_override(
        archive: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"tables": "orders", "archive_class": archive})
    assert "allow_unreadable_archive" in str(err.value)
    assert "\n" not in str(err.value)
    cfg = load_config({"tables": "orders", "archive_class": archive,
                       "allow_unreadable_archive": "true"})
    assert cfg.archive_class == archive.upper()


def test_iceberg_expiry_is_accepted_and_an_unreadable_archive_still_refused() -> None:
    """Iceberg retention is the table's own DELETE (infra/constructs/retention.py), so
    expire_days is taken; an archive class Athena cannot read still needs its override."""
    assert load_config({"tables": "orders", "format": "iceberg",
                        "expire_days": "400"}).expire_days == 400
    with pytest.raises(ConfigError, match="allow_unreadable_archive"):
        load_config({"tables": "orders", "format": "iceberg", "expire_days": "400",
                     "archive_class": "DEEP_ARCHIVE"})
