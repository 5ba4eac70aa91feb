"""What compacting one partition did: one result type for Hive and Iceberg compaction."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PartitionResult:
    """What compacting one partition did (or, with dry_run, would do). ``snapshot_id`` is
    the Iceberg snapshot the compaction committed; None on a Hive lake."""

    table_name: str
    dt: str
    files_before: int
    bytes_before: int
    rows_before: int | None = None
    rows_after: int | None = None
    files_after: int | None = None
    bytes_after: int | None = None
    snapshot_id: int | None = None
    new_files: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def duplicates(self) -> int | None:
        if self.rows_before is None or self.rows_after is None:
            return None
        return self.rows_before - self.rows_after
