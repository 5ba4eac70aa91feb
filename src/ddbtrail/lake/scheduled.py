"""Compaction as the stack runs it: the steps the compaction Lambda answers.

The state machine (infra/constructs/compaction.py) asks twice:

* ``{"step": "plan"}`` (optionally ``"lookback_days": N``): the closed partitions of the
  last N days that need compacting (``compact.plan_run``), as ``{"partitions": [{"table_name",
  "dt"}, ...], "oversize": ["<table>/dt=<dt> (<bytes> bytes)", ...], "remaining": n}``;
* ``{"step": "partition", "table_name": T, "dt": D}``: compact that one partition
  (``compact.compact_one``, which lists its files again at that moment), answering what it
  did. A failure raises, so Step Functions retries it and then records it.

With ``defer_delete`` (EVIDENCE, set by the stack when the digest function seals the lake)
the old files stay and a pending-replacement note names them for that function
(``lake.replacements``): it alone signs, so it writes the compaction digest and deletes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.core.settings import env_bool, env_int, env_required
from ddbtrail.lake.compact import compact_one, plan_run
from ddbtrail.lake.files import Lake

# What one invocation may read (docs/deploy.md, "Compaction"). Measured on Firehose-shaped
# Parquet (96 files, ~1 KB changes): peak RSS ~300 MB + 7.5x the partition's bytes (129 MB
# read, 1.25 GB peak). 10x leaves room for data that compresses better.
RUNTIME_MB: Final = 300
MEMORY_PER_PARTITION_BYTE: Final = 10


def max_partition_bytes(memory_mb: int) -> int:
    """The largest partition (bytes of its files) a Lambda of ``memory_mb`` compacts."""
    return max(memory_mb - RUNTIME_MB, 0) * 2**20 // MEMORY_PER_PARTITION_BYTE


@dataclass(frozen=True, slots=True)
class CompactionSettings:
    """The compaction Lambda's settings: ``lake_uri`` (s3://bucket/prefix), ``max_bytes``
    (largest partition compacted), ``max_partitions`` per run, ``lookback_days``, and
    ``defer_delete`` (old files left to the digest function, module docstring)."""

    lake_uri: str
    max_bytes: int
    max_partitions: int = 1000
    lookback_days: int = 7
    defer_delete: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CompactionSettings:
        """Read LAKE_URI (required), MAX_PARTITION_BYTES (default: from the function's
        memory, AWS_LAMBDA_FUNCTION_MEMORY_SIZE), MAX_PARTITIONS, LOOKBACK_DAYS and
        EVIDENCE (true: ``defer_delete``). Raises
        ConfigError naming the variable."""
        env = os.environ if env is None else env
        memory = env_int(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 3008, 128, 10_240)
        return cls(
            lake_uri=env_required(env, "LAKE_URI"),
            max_bytes=env_int(env, "MAX_PARTITION_BYTES", max_partition_bytes(memory),
                              1, 2**40),
            max_partitions=env_int(env, "MAX_PARTITIONS", 1000, 1, 10_000),
            lookback_days=env_int(env, "LOOKBACK_DAYS", 7, 1, 36_500),
            defer_delete=env_bool(env, "EVIDENCE", False),
        )


def run_step(lake: Lake, event: Mapping[str, Any], settings: CompactionSettings, *,
             today: str | None = None) -> dict[str, Any]:
    """Answer one step of the state machine (module docstring). Raises InvalidArgument
    on an unknown step, CompactionFailed/PartitionTooLarge/LakeError when a partition
    cannot be compacted."""
    step = event.get("step")
    if step == "plan":
        lookback = event.get("lookback_days", settings.lookback_days)
        if not isinstance(lookback, int) or isinstance(lookback, bool):
            raise InvalidArgument("lookback_days", lookback, "must be a whole number of days")
        run = plan_run(lake, lookback_days=lookback, max_partitions=settings.max_partitions,
                       max_bytes=settings.max_bytes, today=today)
        return {
            "partitions": [{"table_name": p.table_name, "dt": p.dt} for p in run.partitions],
            "oversize": [f"{p.table_name}/dt={p.dt} ({p.bytes} bytes)" for p in run.oversize],
            "remaining": run.remaining,
        }
    if step == "partition":
        table_name, dt = event.get("table_name"), event.get("dt")
        if not isinstance(table_name, str) or not isinstance(dt, str):
            raise InvalidArgument("event", dict(event), "needs table_name and dt")
        r = compact_one(lake, table_name, dt, max_bytes=settings.max_bytes, today=today,
                        defer_delete=settings.defer_delete)
        return {"table_name": r.table_name, "dt": r.dt, "files_before": r.files_before,
                "files_after": r.files_after, "bytes_before": r.bytes_before,
                "bytes_after": r.bytes_after, "rows_before": r.rows_before,
                "rows_after": r.rows_after, "warning": r.error}
    raise InvalidArgument("step", step, "expected plan or partition")
