"""Stream record -> change row (schema v1). Pure: no I/O, no clock.

Accepts DynamoDB Streams records as Lambda delivers them, and Kinesis Data Streams for
DynamoDB records (``kinesis.data`` holding the change as base64 JSON, timestamps in ms).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, cast

from ddbtrail.core import codec
from ddbtrail.core.exceptions import InvalidValue, MalformedEvent, MalformedRecord
from ddbtrail.core.redact import RedactionPolicy, Redactor
from ddbtrail.core.row import COLUMN_NAMES, Row, row_from

STREAM_ACTIONS: Final = frozenset({"INSERT", "MODIFY", "REMOVE"})
_TABLE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,255}\Z")
_ARN_TABLE: Final = re.compile(r"^arn:[^:]*:dynamodb:[^:]*:[^:]*:table/([^/]+)")
# A number above this is milliseconds; DynamoDB Streams give seconds.
_MS_THRESHOLD: Final = 100_000_000_000
# Event times must fit iso_ms and a dt partition: 1970-01-01 up to the end of 9999.
_MAX_MS: Final = 253_402_300_800_000


@functools.lru_cache(maxsize=256)  # a batch names one table
def _table_ok(name: str) -> bool:
    return _TABLE_NAME.match(name) is not None


@functools.lru_cache(maxsize=256)  # a batch comes from one stream
def _arn_table(arn: str) -> str | None:
    match = _ARN_TABLE.match(arn)
    if match and _TABLE_NAME.match(match.group(1)):
        return match.group(1)
    return None


def table_from_arn(arn: object) -> str | None:
    """The table name in a stream ARN, or None when the ARN names no valid table."""
    if not isinstance(arn, str):
        return None
    return _arn_table(arn)


class Change(NamedTuple):
    """A stream record, unwrapped to its DynamoDB section (Kinesis or Streams form)."""

    event_id: str
    sequence_number: str
    action: str
    ddb: Mapping[str, Any]
    table_name: str
    event_source: str
    region: str | None
    user_identity: Mapping[str, Any] | None
    timestamp_ms: int | None
    # The microseconds within timestamp_ms's millisecond, when the source has them
    # (Kinesis Data Streams at MICROSECOND precision, its default); else None.
    extra_micros: int | None = None


def _is_map(value: object) -> bool:
    return value.__class__ is dict or isinstance(value, Mapping)


def record_identity(record: object) -> tuple[str | None, str | None]:
    """(eventID, SequenceNumber) of a record, as far as they can be read. Never raises."""
    if not _is_map(record):
        return None, None
    assert isinstance(record, Mapping)
    event_id = record.get("eventID")
    ddb = record.get("dynamodb")
    seq = ddb.get("SequenceNumber") if ddb is not None and _is_map(ddb) else None
    kin = record.get("kinesis")
    if seq is None and kin is not None and _is_map(kin):
        seq = kin.get("sequenceNumber")
    return (event_id if isinstance(event_id, str) else None,
            seq if isinstance(seq, str) else None)


def unwrap(record: object, *, table_name: str | None = None) -> Change:
    """Read the parts of a record every row needs; MalformedRecord names what is wrong.

    ``table_name`` overrides the table read from the record (for events whose ARN names
    no table, such as sample events with placeholders).
    """
    if not _is_map(record):
        raise MalformedRecord(None, f"a record must be a JSON object, got {type(record).__name__}")
    record = cast("Mapping[str, Any]", record)  # _is_map said so (an assert costs a record)
    event_id = record.get("eventID")
    if not isinstance(event_id, str):
        raise MalformedRecord(None, "no eventID")
    get = record.get
    source = get("eventSource", "aws:dynamodb")
    region = get("awsRegion")
    ms_precision = False
    seq = None
    if "kinesis" in record:
        seq = record_identity(record)[1]
        record = _kinesis_payload(record, event_id)
        get = record.get
        ms_precision = True
        source = "aws:kinesis"
        event_id = str(get("eventID") or event_id)
        region = get("awsRegion", region)
    ddb = get("dynamodb")
    if not _is_map(ddb):
        raise MalformedRecord(event_id, "no 'dynamodb' section")
    ddb = cast("Mapping[str, Any]", ddb)
    if seq is None:
        seq = ddb.get("SequenceNumber")
    if not isinstance(seq, str) or not (seq.isascii() and seq.isdigit()):
        raise MalformedRecord(event_id, f"SequenceNumber {seq!r} is not a decimal string")
    action = get("eventName")
    if not isinstance(action, str) or action not in STREAM_ACTIONS:
        raise MalformedRecord(event_id, f"eventName {action!r} is not INSERT, MODIFY or REMOVE")
    name = table_name or get("tableName") or table_from_arn(get("eventSourceARN"))
    if not isinstance(name, str) or not _table_ok(name):
        raise MalformedRecord(
            event_id,
            f"cannot tell the table: eventSourceARN {get('eventSourceARN')!r} names "
            "none (set TABLE_NAME, or `table`)",
        )
    identity = get("userIdentity")
    ms, micros = _event_time(ddb, event_id, ms_precision)
    return Change(event_id, seq, action, ddb, name, str(source),
                  region if isinstance(region, str) else None,
                  identity if identity is not None and _is_map(identity) else None,
                  ms, micros)


def _kinesis_payload(record: Mapping[str, Any], event_id: str) -> Mapping[str, Any]:
    data = record["kinesis"].get("data") if isinstance(record["kinesis"], Mapping) else None
    try:
        payload = json.loads(base64.b64decode(data or "", validate=True))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise MalformedRecord(event_id, f"kinesis.data is not base64 JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise MalformedRecord(event_id, "kinesis.data does not hold a JSON object")
    return payload


def _event_time(ddb: Mapping[str, Any], event_id: str,
                ms_precision: bool) -> tuple[int | None, int | None]:
    """(epoch ms, microseconds past that ms or None) of ApproximateCreationDateTime.

    Its unit follows ApproximateCreationDateTimePrecision (MILLISECOND or MICROSECOND,
    Kinesis Data Streams for DynamoDB); without it, DynamoDB Streams give seconds and
    Kinesis gives milliseconds.
    """
    raw = ddb.get("ApproximateCreationDateTime")
    if raw is None:
        return None, None
    if isinstance(raw, bool) or not isinstance(raw, int | float) \
            or (isinstance(raw, float) and not math.isfinite(raw)):
        raise MalformedRecord(event_id, f"ApproximateCreationDateTime {raw!r} is not a number")
    precision = ddb.get("ApproximateCreationDateTimePrecision")
    micros = None
    if precision == "MICROSECOND":
        ms, micros = divmod(math.floor(raw), 1000)
    elif precision is not None and precision != "MILLISECOND":
        raise MalformedRecord(event_id, f"ApproximateCreationDateTimePrecision {precision!r} is "
                                        "not MILLISECOND or MICROSECOND")
    elif ms_precision or precision == "MILLISECOND" or raw >= _MS_THRESHOLD:
        ms = int(raw)
    else:
        ms = round(raw * 1000)
    if not 0 <= ms < _MAX_MS:
        unit = {"MICROSECOND": " (microseconds)", "MILLISECOND": " (milliseconds)"}.get(
            str(precision), "")
        raise MalformedRecord(event_id, f"ApproximateCreationDateTime {raw!r}{unit} is not a "
                                        "time between 1970 and 9999")
    return ms, micros


def build_row(change: Change, *, ingested_at_ms: int, redactor: Redactor | None = None) -> Row:
    """The schema-v1 row of a change. Raises MalformedRecord naming the record.

    A record with no ApproximateCreationDateTime takes its event time from
    ``ingested_at_ms``, the closest time known. ``redactor`` is applied to the keys and
    both images before anything is encoded.
    """
    ddb = change.ddb
    try:
        keys = ddb.get("Keys")
        if not keys or not (keys.__class__ is dict or isinstance(keys, Mapping)):
            raise InvalidValue("no Keys")
        old = ddb.get("OldImage")
        new = ddb.get("NewImage")
        if redactor is not None:
            codec.item_key(keys)  # a key DynamoDB could not hold stays an error when HMAC'd
            keys = redactor.item(keys, is_key=True)
            old = redactor.item(old)
            new = redactor.item(new)
        encoded = codec.encode_change(keys, old, new)
    except InvalidValue as exc:
        raise MalformedRecord(change.event_id, str(exc)) from exc
    except RecursionError as exc:
        raise MalformedRecord(change.event_id, "attribute values nested too deep to read "
                                               "(DynamoDB allows 32 levels)") from exc

    action = change.action
    if action == "INSERT" and new is not None:
        changed: list[str] | None = sorted(new)
    elif action == "REMOVE" and old is not None:
        changed = sorted(old)
    elif old is not None and new is not None:
        changed = encoded.changed
    else:
        changed = None

    view = ddb.get("StreamViewType")
    if not isinstance(view, str):
        view = _infer_view(old is not None, new is not None, action)
    ts = change.timestamp_ms if change.timestamp_ms is not None else ingested_at_ms
    identity = change.user_identity
    principal = None if identity is None else identity.get("principalId")
    size = ddb.get("SizeBytes")
    return row_from(
        change.event_id, change.sequence_number, action, encoded.item_key, encoded.keys,
        encoded.old_image, encoded.new_image, encoded.type_hints, changed, ts,
        ingested_at_ms, change.event_source, change.table_name, change.region,
        change.extra_micros, view,
        size if isinstance(size, int) and not isinstance(size, bool) else None,
        (principal == "dynamodb.amazonaws.com" and action == "REMOVE"
         and identity is not None and identity.get("type") == "Service"),
        principal if isinstance(principal, str) else None, None)


def _infer_view(has_old: bool, has_new: bool, action: str) -> str | None:
    """Kinesis records carry no StreamViewType; say what the images show."""
    if has_old and has_new:
        return "NEW_AND_OLD_IMAGES"
    if not has_old and not has_new:
        return "KEYS_ONLY"
    if action == "MODIFY":
        return "NEW_IMAGE" if has_new else "OLD_IMAGE"
    return None


def flatten_record(record: object, *, ingested_at_ms: int, table_name: str | None = None,
                   policy: RedactionPolicy | None = None) -> Row:
    """One stream record -> one row. Raises MalformedRecord naming the record."""
    (item,) = flatten_records((record,), ingested_at_ms=ingested_at_ms, table_name=table_name,
                              policy=policy)
    if item.error is not None:
        raise item.error
    assert item.row is not None
    return item.row


def event_records(event: object) -> list[Any]:
    """The ``Records`` list of a Lambda event; MalformedEvent if there is none."""
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        if isinstance(event, Mapping) and "DDBStreamBatchInfo" in event:
            raise MalformedEvent(
                "this is an on-failure destination record (DDBStreamBatchInfo): it holds the "
                "shard and sequence range of a failed batch, not the changes; "
                "use 'ddbtrail redrive' to re-read them"
            )
        raise MalformedEvent("not a DynamoDB Streams event: expected {\"Records\": [...]}")
    return list(event["Records"])


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to build, once a record
class Flattened:
    """Outcome for one record of a batch: a row, or the error that names it."""

    index: int
    event_id: str | None
    sequence_number: str | None
    row: Row | None = None
    error: MalformedRecord | None = None


def flatten_records(records: Iterable[object], *, ingested_at_ms: int,
                    table_name: str | None = None,
                    policy: RedactionPolicy | None = None) -> Iterator[Flattened]:
    """Flatten a batch, isolating each bad record instead of failing the batch."""
    for index, record in enumerate(records):
        try:
            change = unwrap(record, table_name=table_name)
            row = build_row(change, ingested_at_ms=ingested_at_ms, redactor=None if policy is None
                            else policy.redactor(change.table_name))
        except MalformedRecord as exc:
            event_id, seq = record_identity(record)
            yield Flattened(index, event_id, seq, error=exc)
        else:
            yield Flattened(index, change.event_id, change.sequence_number, row)


_ROW_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ORDER: Final = list(COLUMN_NAMES)


def _ordered(row: Row) -> Mapping[str, object]:
    """The row with its columns in schema order (build_row already makes them so)."""
    return row if list(row) == _ORDER else {name: row.get(name) for name in COLUMN_NAMES}


def row_json(row: Row) -> str:
    """A row as one compact JSON object, columns in schema order, no newline."""
    return _ROW_JSON.encode(_ordered(row))


def row_bytes(row: Row) -> bytes:
    """A row as UTF-8 JSON plus the newline every delivered row ends with.

    orjson when installed; the standard library writes the same bytes otherwise, and
    also whatever orjson refuses (integers beyond 64 bits, lone surrogates outside the
    images, which are escaped).
    """
    ordered = _ordered(row)
    fast = codec.fast_dumps(ordered)
    if fast is not None:
        # Concatenating copies the text out of orjson's buffer, which is several times
        # the row's size and would stay allocated while the batch is held.
        return fast + b"\n"
    try:
        return (_ROW_JSON.encode(ordered) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates in a string (legal in the event JSON, not in UTF-8): escape them.
        return (json.dumps(ordered, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
