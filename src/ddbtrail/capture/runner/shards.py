"""Shards of a DynamoDB stream: listing, lineage, iterators, and the Lambda record shape.

Lineage: a shard is read only after its parent has been read to its end, so the changes
of one item come out in order even across shard splits. A parent the stream no longer
lists (trimmed away after 24 hours) does not block its children.

``lambda_record`` turns a boto3 GetRecords record into the record Lambda's event source
mapping delivers: ``eventSourceARN`` added, ``ApproximateCreationDateTime`` as epoch
seconds (a number), B and BS values as base64 text, ``userIdentity`` keys in Lambda's
camelCase.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from ddbtrail.core.exceptions import StreamNotEnabled

logger = logging.getLogger(__name__)

StartingPosition = Literal["TRIM_HORIZON", "LATEST"]
# GetRecords returns at most 1,000 records per call.
MAX_GET_RECORDS: Final = 1000


def error_code(exc: ClientError) -> str:
    """The service's error code of a boto3 ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def seq_int(sequence_number: str) -> int:
    """A SequenceNumber as a number: they are decimal strings of 21-40 digits."""
    return int(sequence_number)


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard as DescribeStream lists it. ``ending_sequence_number`` is set once closed."""

    shard_id: str
    parent_shard_id: str | None = None
    starting_sequence_number: str | None = None
    ending_sequence_number: str | None = None

    @property
    def closed(self) -> bool:
        return self.ending_sequence_number is not None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Shard:
        rng = raw.get("SequenceNumberRange") or {}
        return cls(
            shard_id=str(raw["ShardId"]),
            parent_shard_id=raw.get("ParentShardId") or None,
            starting_sequence_number=rng.get("StartingSequenceNumber"),
            ending_sequence_number=rng.get("EndingSequenceNumber"),
        )


def describe_shards(client: Any, stream_arn: str) -> list[Shard]:
    """Every shard of a stream (DescribeStream, all pages), in lineage order.

    Raises StreamNotEnabled when the stream does not exist (any more).
    """
    shards: list[Shard] = []
    kwargs: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        try:
            desc = client.describe_stream(**kwargs)["StreamDescription"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise StreamNotEnabled(f"stream {stream_arn} does not exist") from exc
            raise
        shards.extend(Shard.from_api(s) for s in desc.get("Shards", []))
        last = desc.get("LastEvaluatedShardId")
        if not last:
            return lineage_order(shards)
        kwargs["ExclusiveStartShardId"] = last


def lineage_order(shards: Iterable[Shard]) -> list[Shard]:
    """Shards ordered so that every parent comes before its children.

    Among shards that are ready at the same time, the one starting at the lower sequence
    number comes first (then by shard id), so the order is deterministic.
    """
    by_id = {s.shard_id: s for s in shards}
    children: dict[str, list[Shard]] = {}
    roots: list[Shard] = []
    for s in by_id.values():
        if s.parent_shard_id and s.parent_shard_id in by_id and s.parent_shard_id != s.shard_id:
            children.setdefault(s.parent_shard_id, []).append(s)
        else:
            roots.append(s)

    def key(s: Shard) -> tuple[int, str]:
        start = s.starting_sequence_number
        return (seq_int(start) if start and start.isdigit() else 0, s.shard_id)

    ordered: list[Shard] = []
    frontier = sorted(roots, key=key)
    while frontier:
        shard = frontier.pop(0)
        ordered.append(shard)
        frontier = sorted(frontier + children.get(shard.shard_id, []), key=key)
    # A cycle (never produced by AWS) would leave shards out: append them rather than lose them.
    seen = {s.shard_id for s in ordered}
    ordered.extend(sorted((s for s in by_id.values() if s.shard_id not in seen), key=key))
    return ordered


def ready_shards(shards: Sequence[Shard], done: set[str]) -> list[Shard]:
    """Shards not yet done whose parent is done or no longer listed, in lineage order."""
    listed = {s.shard_id for s in shards}
    return [s for s in shards if s.shard_id not in done
            and (not s.parent_shard_id or s.parent_shard_id not in listed
                 or s.parent_shard_id in done)]


# --------------------------------------------------------------------------- Lambda shape


def _b64(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _lambda_value(value: Any) -> Any:
    """One typed value with binary as base64 text, as in Lambda's event JSON."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": _b64(inner)}
    if tag == "BS" and isinstance(inner, list):
        return {"BS": [_b64(v) for v in inner]}
    if tag == "M" and isinstance(inner, Mapping):
        return {"M": {k: _lambda_value(v) for k, v in inner.items()}}
    if tag == "L" and isinstance(inner, list):
        return {"L": [_lambda_value(v) for v in inner]}
    return {tag: inner}


def _lambda_item(item: Any) -> Any:
    if not isinstance(item, Mapping):
        return item
    return {name: _lambda_value(v) for name, v in item.items()}


def _epoch_seconds(value: object) -> object:
    if isinstance(value, datetime):
        # Keep sub-second digits when the source has them (moto does; AWS rounds to seconds).
        return round(value.timestamp(), 3)
    return value


def lambda_record(record: Mapping[str, Any], stream_arn: str, *,
                  raw_json: bool = False) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda delivers it (see module docstring).

    ``raw_json``: the record is the service's JSON, not boto3's parse (binary already
    base64, times already numbers), so its values are kept as they are.
    """
    out: dict[str, Any] = {k: v for k, v in record.items() if k not in ("dynamodb",
                                                                       "userIdentity")}
    ddb = record.get("dynamodb")
    if raw_json:
        out["dynamodb"] = ddb
    elif isinstance(ddb, Mapping):
        new_ddb: dict[str, Any] = {}
        for key, value in ddb.items():
            if key in ("Keys", "NewImage", "OldImage"):
                new_ddb[key] = _lambda_item(value)
            elif key == "ApproximateCreationDateTime":
                new_ddb[key] = _epoch_seconds(value)
            else:
                new_ddb[key] = value
        out["dynamodb"] = new_ddb
    identity = record.get("userIdentity")
    if isinstance(identity, Mapping):
        out["userIdentity"] = {
            "type": identity.get("Type", identity.get("type")),
            "principalId": identity.get("PrincipalId", identity.get("principalId")),
        }
    out["eventSourceARN"] = stream_arn
    return out


def lambda_event(records: Iterable[Mapping[str, Any]], stream_arn: str, *,
                 raw_json: bool = False) -> dict[str, Any]:
    """The Lambda event ``{"Records": [...]}`` for GetRecords records of one stream."""
    return {"Records": [lambda_record(r, stream_arn, raw_json=raw_json) for r in records]}
