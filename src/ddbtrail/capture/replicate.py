"""Replicate a DynamoDB stream into a target table, in order, exactly, never backwards.

* INSERT and MODIFY put the new image; REMOVE deletes by key.
* Records are applied one at a time in batch order and processing stops at the first
  failure, which is reported in ``batchItemFailures``: Lambda retries from it, so the
  changes of one item are never applied out of order.
* **Stale-replay guard.** Every write carries the source record's SequenceNumber in a
  replication attribute (``_ddbtrail_seq`` by default), stored as N so DynamoDB compares
  it as a number, and is conditional on ``attribute_not_exists(seq) OR seq < :seq``. A
  replay of an already-applied record, or of an older one, fails the condition and is
  skipped: it can never overwrite newer data. Sequence numbers are ordered per item within
  a stream, which is exactly the order this guard needs.
* **Deletes.** The default is a *conditional delete* with the same guard: a stale REMOVE
  cannot delete an item that a newer put re-created. Once an item is gone its last
  sequence number is gone too, so a stale INSERT replayed *after* the delete could
  re-create it; with DynamoDB Streams that only happens inside a Lambda retry, which
  replays every later record too (the REMOVE included), so the target converges and
  readers never see tombstones. When old batches may be replayed out of band
  (redrives of on-failure records, several replicators) use ``delete_mode="tombstone"``:
  a REMOVE then *puts* a key-only item holding the sequence number and
  ``_ddbtrail_deleted = true`` (plus an optional TTL attribute), which keeps the guard
  alive after the delete; readers of the target must skip those items.
* Binary values arrive base64 in the event and are sent as bytes (the low-level client
  base64-encodes them once); numbers are sent as their exact text.

Limits: DynamoDB's N holds 38 significant digits; a SequenceNumber longer than that
(the API allows 40 digits, streams today use about 21-28) fails its record loudly.
Kinesis Data Streams records are refused for the same reason (56-digit sequence numbers).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import boto3
import botocore.session
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.core import codec
from ddbtrail.core.backoff import error_code, fix_hint, is_permanent
from ddbtrail.core.exceptions import ConfigError, InvalidValue, MalformedRecord
from ddbtrail.core.flatten import event_records, record_identity, unwrap
from ddbtrail.core.settings import env_required

logger = logging.getLogger(__name__)

DEFAULT_SEQ_ATTRIBUTE: Final = "_ddbtrail_seq"
DELETED_ATTRIBUTE: Final = "_ddbtrail_deleted"
GUARD: Final = "attribute_not_exists(#seq) OR #seq < :seq"
DeleteMode = Literal["delete", "tombstone"]


@dataclass(frozen=True, slots=True)
class ReplicateSettings:
    """Where and how to replicate. Explicit values win over the environment."""

    target_table: str
    target_region: str | None = None
    role_arn: str | None = None
    seq_attribute: str = DEFAULT_SEQ_ATTRIBUTE
    delete_mode: DeleteMode = "delete"
    tombstone_ttl_attribute: str | None = None
    tombstone_ttl_seconds: int = 7 * 24 * 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReplicateSettings:
        """Read TARGET_TABLE (required), TARGET_REGION, TARGET_ROLE_ARN,
        REPLICATION_ATTRIBUTE, DELETE_MODE (delete | tombstone) and TOMBSTONE_TTL_ATTRIBUTE.
        Raises ConfigError naming the variable that is missing or wrong."""
        env = os.environ if env is None else env
        table = env_required(env, "TARGET_TABLE")
        mode = env.get("DELETE_MODE") or "delete"
        if mode not in ("delete", "tombstone"):
            raise ConfigError(f"DELETE_MODE={mode!r} must be delete or tombstone")
        role = env.get("TARGET_ROLE_ARN") or None
        if role is not None and not role.startswith("arn:"):
            raise ConfigError(f"TARGET_ROLE_ARN={role!r} is not an ARN")
        return cls(
            target_table=table,
            target_region=env.get("TARGET_REGION") or None,
            role_arn=role,
            seq_attribute=env.get("REPLICATION_ATTRIBUTE") or DEFAULT_SEQ_ATTRIBUTE,
            delete_mode="tombstone" if mode == "tombstone" else "delete",
            tombstone_ttl_attribute=env.get("TOMBSTONE_TTL_ATTRIBUTE") or None,
        )


# --------------------------------------------------------------------------- pure part


@dataclass(frozen=True, slots=True)
class Write:
    """One conditional write to the target: ``put`` (with an item) or ``delete`` (a key)."""

    op: Literal["put", "delete"]
    event_id: str
    sequence_number: str
    key: codec.TypedItem
    item: codec.TypedItem | None = None


def seq_number(seq: str, event_id: str) -> str:
    """The SequenceNumber as N text; MalformedRecord if N cannot hold it exactly."""
    digits = seq.lstrip("0") or "0"
    significant = len(digits.rstrip("0")) if digits != "0" else 1
    if significant > 38:
        raise MalformedRecord(event_id, f"SequenceNumber {seq} has more than 38 significant "
                              "digits; DynamoDB's N cannot hold it for the stale-replay guard")
    return digits


def _client_item(item: Mapping[str, Any], event_id: str, what: str) -> codec.TypedItem:
    """Stream form (B as base64 text, or bytes) -> low-level client form (B as bytes)."""
    try:
        text, hints = codec.encode_item(item)
        return codec.decode_item(text, hints, binary_as_bytes=True)
    except InvalidValue as exc:
        raise MalformedRecord(event_id, f"{what}: {exc}") from exc


def plan_write(record: object, settings: ReplicateSettings, *, now_s: float | None = None) -> Write:
    """The write that applies one stream record to the target. Pure.

    Raises MalformedRecord naming the record when it cannot be replicated: bad shape, or
    an INSERT/MODIFY without a new image (KEYS_ONLY or OLD_IMAGE streams).
    """
    # The source table does not matter here; "-" spares events whose ARN names none.
    change = unwrap(record, table_name="-")
    if change.event_source == "aws:kinesis":
        raise MalformedRecord(change.event_id, "Kinesis Data Streams records cannot be "
                              "replicated: their sequence numbers do not fit the N-typed "
                              "stale-replay guard; replicate from the table's DynamoDB stream")
    seq = seq_number(change.sequence_number, change.event_id)
    keys = change.ddb.get("Keys")
    if not isinstance(keys, Mapping) or not keys:
        raise MalformedRecord(change.event_id, "no Keys")
    key = _client_item(keys, change.event_id, "Keys")
    attr = settings.seq_attribute
    if change.action == "REMOVE":
        if settings.delete_mode == "delete":
            return Write("delete", change.event_id, seq, key)
        tomb: codec.TypedItem = dict(key)
        tomb[DELETED_ATTRIBUTE] = {"BOOL": True}
        tomb[attr] = {"N": seq}
        if settings.tombstone_ttl_attribute:
            now = time.time() if now_s is None else now_s
            tomb[settings.tombstone_ttl_attribute] = {
                "N": str(int(now) + settings.tombstone_ttl_seconds)}
        return Write("put", change.event_id, seq, key, tomb)
    new = change.ddb.get("NewImage")
    if not isinstance(new, Mapping):
        view = change.ddb.get("StreamViewType") or "with no new image"
        raise MalformedRecord(
            change.event_id,
            f"{change.action} has no NewImage: stream view type {view} cannot be "
            "replicated; enable NEW_IMAGE or NEW_AND_OLD_IMAGES on the source stream",
        )
    item = _client_item(new, change.event_id, "NewImage")
    item[attr] = {"N": seq}  # a source attribute of that name is replaced on purpose
    return Write("put", change.event_id, seq, key, item)


# --------------------------------------------------------------------------- I/O part


@dataclass(slots=True)
class ReplicateResult:
    """Outcome of one batch: counts, and the first record that must be retried."""

    records: int = 0
    puts: int = 0
    deletes: int = 0
    stale: int = 0
    first_failure: str | None = None
    failed: bool = False
    errors: list[str] = field(default_factory=list)
    # Set when the failure is one no retry can fix (see core.backoff.is_permanent).
    permanent: str | None = None

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response: retry from the first failed record."""
        if not self.failed:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": self.first_failure or ""}]}

    def metrics(self) -> dict[str, int]:
        """Counts to publish, by metric name."""
        return {"Records": self.records, "Puts": self.puts, "Deletes": self.deletes,
                "StaleSkipped": self.stale, "FailedBatches": int(self.failed)}


def apply_write(write: Write, *, target: Any, settings: ReplicateSettings) -> bool:
    """Apply one write under the stale-replay guard. False if it was stale (skipped).

    Raises ClientError / BotoCoreError for anything but a failed guard.
    """
    names = {"#seq": settings.seq_attribute}
    values = {":seq": {"N": write.sequence_number}}
    try:
        if write.op == "put":
            target.put_item(TableName=settings.target_table, Item=write.item,
                            ConditionExpression=GUARD, ExpressionAttributeNames=names,
                            ExpressionAttributeValues=values)
        else:
            target.delete_item(TableName=settings.target_table, Key=write.key,
                               ConditionExpression=GUARD, ExpressionAttributeNames=names,
                               ExpressionAttributeValues=values)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def replicate_batch(event: object, *, target: Any, settings: ReplicateSettings,
                    remaining_seconds: Callable[[], float] | None = None) -> ReplicateResult:
    """Apply a DynamoDB Streams event to the target table, in record order.

    ``target`` is a low-level DynamoDB client for the target. Stops at the first record
    that cannot be applied and names it in ``response()``; nothing after it is written.
    Raises MalformedEvent if the event has no Records list.
    """
    records = event_records(event)
    result = ReplicateResult(records=len(records))
    for record in records:
        event_id, seq = record_identity(record)
        if remaining_seconds is not None and remaining_seconds() < 2.0:
            result.errors.append("out of time")
            return _fail(result, event_id, seq, "out of time; the rest will be retried")
        try:
            write = plan_write(record, settings)
            if apply_write(write, target=target, settings=settings):
                if write.op == "put" and write.item is not None \
                        and DELETED_ATTRIBUTE not in write.item:
                    result.puts += 1
                else:
                    result.deletes += 1
            else:
                result.stale += 1
        except MalformedRecord as exc:
            return _fail(result, event_id, seq, str(exc))
        except (ClientError, BotoCoreError) as exc:
            if is_permanent(exc):
                code = error_code(exc)
                said = getattr(exc, "response", {}).get("Error", {}).get("Message", exc)
                result.permanent = (
                    f"replicate into table {settings.target_table}: {code}: {said}; "
                    f"{fix_hint(code, 'table ' + settings.target_table)}")
            return _fail(result, event_id, seq, f"record {event_id}: {exc}",
                         log=result.permanent is None)
    return result


def _fail(result: ReplicateResult, event_id: str | None, seq: str | None,
          message: str, *, log: bool = True) -> ReplicateResult:
    result.failed = True
    result.first_failure = seq or ""
    result.errors.append(message)
    if log:  # a permanent failure is the caller's to report (result.permanent)
        logger.error("replication stopped at the first failure; Lambda retries from it",
                 extra={"event_id": event_id, "sequence_number": seq, "error": message})
    return result


# --------------------------------------------------------------------------- clients


def target_client(settings: ReplicateSettings, *, endpoint_url: str | None = None,
                  sts: Any = None, session: Any = None) -> Any:
    """A DynamoDB client for the target: the region from settings, and with a role ARN
    credentials from STS AssumeRole that botocore refreshes before they expire."""
    base = session or boto3.Session()
    if settings.role_arn is None:
        return base.client("dynamodb", region_name=settings.target_region,
                           endpoint_url=endpoint_url)
    sts = sts or base.client("sts", region_name=settings.target_region,
                             endpoint_url=endpoint_url)
    return assumed_session(settings.role_arn, sts).client(
        "dynamodb", region_name=settings.target_region, endpoint_url=endpoint_url)


def assumed_session(role_arn: str, sts: Any, *, session_name: str = "ddbtrail-replicate",
                    duration_seconds: int = 3600) -> Any:
    """A boto3 Session whose credentials come from ``sts.assume_role`` and are refreshed
    by botocore ahead of expiry (15 minutes advisory, 10 minutes mandatory)."""
    def fetch() -> dict[str, str]:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name,
                                DurationSeconds=duration_seconds)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    try:
        credentials = RefreshableCredentials.create_from_metadata(
            metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
    except ClientError as exc:
        raise ConfigError(f"TARGET_ROLE_ARN {role_arn}: cannot assume role ({exc})") from exc
    core = botocore.session.get_session()
    # botocore has no public setter for refreshable credentials; this is the usual hook.
    core._credentials = credentials  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=core)


def target_item_equal(a: Mapping[str, Any], b: Mapping[str, Any],
                      seq_attribute: str = DEFAULT_SEQ_ATTRIBUTE) -> bool:
    """Items equal as DynamoDB sees them, ignoring the replication attribute."""
    left = {k: v for k, v in a.items() if k != seq_attribute}
    right = {k: v for k, v in b.items() if k != seq_attribute}
    return left.keys() == right.keys() and all(
        codec.same_value(left[k], right[k]) for k in left)
