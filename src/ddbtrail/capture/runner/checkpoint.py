"""Per-shard checkpoints in the lake: one small JSON file per shard, written atomically.

    <lake>/_ddbtrail/checkpoints/<name>/<shard_id>.json
    {"stream_arn": ..., "shard_id": ..., "sequence_number": "<last processed>", "done": false,
     "updated_at": "..."}

A checkpoint names the last sequence number whose rows are durable, or kept as an on-failure
record after their retries ran out; reading resumes AFTER it. ``done`` marks a closed shard
read to its end. A checkpoint written for another stream ARN (the table was recreated, or
its stream re-enabled) is ignored, because shard ids and sequence numbers may repeat across
streams.

Batches that ran out of retries are kept as Lambda's on-failure destination records
(``DDBStreamBatchInfo``) under ``<lake>/_ddbtrail/failures/<name>/``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Final

from ddbtrail.core.exceptions import ConfigError, LakeError
from ddbtrail.core.timefmt import iso_s
from ddbtrail.lake.files import Lake

logger = logging.getLogger(__name__)

_SAFE: Final = re.compile(r"[A-Za-z0-9_.:=-]{1,255}\Z")


def _utc_now() -> str:
    return iso_s(time.time())


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where reading of one shard resumes: AFTER ``sequence_number`` (None: from the start)."""

    stream_arn: str
    shard_id: str
    sequence_number: str | None
    done: bool = False
    updated_at: str = ""


class CheckpointStore:
    """Checkpoints of one consumer (``name``, e.g. ``capture-orders``) in a lake."""

    def __init__(self, lake: Lake, name: str) -> None:
        if not _SAFE.match(name):
            raise ConfigError(f"checkpoint name {name!r}: use letters, digits, _ . : = -")
        self.lake = lake
        self.name = name

    def path(self, shard_id: str) -> str:
        if not _SAFE.match(shard_id):
            raise LakeError(f"shard id {shard_id!r} cannot name a checkpoint file")
        return self.lake.state_path("checkpoints", self.name, f"{shard_id}.json")

    def load(self, stream_arn: str, shard_id: str) -> Checkpoint | None:
        """The checkpoint of a shard of ``stream_arn``, or None if there is none for it.

        Raises LakeError naming the file if it cannot be read or parsed.
        """
        path = self.path(shard_id)
        raw = self.lake.read_bytes(path)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            cp = Checkpoint(
                stream_arn=str(data["stream_arn"]),
                shard_id=str(data["shard_id"]),
                sequence_number=(None if data.get("sequence_number") is None
                                 else str(data["sequence_number"])),
                done=bool(data.get("done", False)),
                updated_at=str(data.get("updated_at", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LakeError(f"checkpoint {path} is not valid ({exc}); delete it to re-read "
                            "the shard from the start") from exc
        if cp.stream_arn != stream_arn:
            logger.info("checkpoint %s belongs to stream %s, not %s: ignored",
                        path, cp.stream_arn, stream_arn)
            return None
        return cp

    def save(self, checkpoint: Checkpoint) -> None:
        """Write a checkpoint atomically. Raises LakeError if it cannot be written."""
        body = dict(asdict(checkpoint), updated_at=_utc_now())
        self.lake.write_atomic(self.path(checkpoint.shard_id),
                               (json.dumps(body, indent=1) + "\n").encode())

    def record_failure(self, record: dict[str, Any]) -> str:
        """Keep an on-failure record (Lambda's DDBStreamBatchInfo shape); return its path."""
        info = record["DDBStreamBatchInfo"]
        name = (f"{info['shardId']}-{info['startSequenceNumber']}-"
                f"{info['endSequenceNumber']}.json")
        path = self.lake.state_path("failures", self.name, name)
        self.lake.write_atomic(path, (json.dumps(record, indent=1) + "\n").encode())
        return path
