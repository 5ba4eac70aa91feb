"""The Iceberg form of the lake: one table, ``ddbtrail.changes``, in pyiceberg's SQL catalog.

    <lake>/_ddbtrail/iceberg/catalog.db     the catalog (SQLite), catalog name ``ddbtrail``
    <lake>/ddbtrail/changes/metadata/       table metadata, manifests, snapshots
    <lake>/ddbtrail/changes/data/table_name=<t>/dt=<d>/*.parquet

The warehouse is the lake folder itself, so the Hive-layout readers (which walk only
``table_name=`` folders at the root) never see Iceberg's files, and an independent
``SqlCatalog("ddbtrail", uri="sqlite:///<lake>/_ddbtrail/iceberg/catalog.db",
warehouse="file://<lake>")`` opens the same table.

Every write is one atomic commit: readers see a snapshot, never half a batch. Data files
written by a commit that then failed (a crash, a conflict) are orphans no snapshot
references; ``remove_orphans`` deletes them once they are old enough that no writer can
still be about to commit them.

Readers plan with pyiceberg (partition values, then per-file ``item_key`` bounds) and read
the planned Parquet files themselves (DuckDB in ``ddbtrail.query.duck``).
"""

from __future__ import annotations

import contextlib
import datetime as dt_mod
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.row import (
    ICEBERG_NAMESPACE,
    ICEBERG_SORT,
    ICEBERG_TABLE,
    arrow_schema,
    iceberg_field_id,
    iceberg_schema,
)
from ddbtrail.lake.files import DataFile, Lake
from ddbtrail.lake.result import PartitionResult

if TYPE_CHECKING:
    import pyarrow as pa

CATALOG_NAME: Final = "ddbtrail"
IDENTIFIER: Final = f"{ICEBERG_NAMESPACE}.{ICEBERG_TABLE}"
COMPACT_OPERATION: Final = "ddbtrail.compact"

# Table properties. Column statistics (file-level bounds, what scan planning prunes with)
# only where a predicate uses them; images and ids would bloat every manifest. Compaction
# is a rewrite, so snapshot isolation: a concurrent append never invalidates it, only a
# concurrent removal of the files it replaces does.
TABLE_PROPERTIES: Final = {
    "format-version": "2",
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "snappy",
    "write.metadata.metrics.default": "counts",
    "write.metadata.metrics.column.item_key": "truncate(256)",
    "write.metadata.metrics.column.sequence_number": "full",
    "write.metadata.metrics.column.timestamp": "full",
    "write.metadata.metrics.column.event_time": "full",
    "write.metadata.metrics.column.action": "full",
    "write.metadata.metrics.column.table_name": "full",
    "write.metadata.metrics.column.dt": "full",
    "write.delete.isolation-level": "snapshot",
    "write.update.isolation-level": "snapshot",
    "commit.retry.num-retries": "6",
    "commit.retry.min-wait-ms": "50",
}

_catalogs: dict[str, Any] = {}
_catalogs_lock = threading.Lock()


def catalog_path(lake: Lake) -> str:
    """Where the SQLite catalog lives, on the lake's filesystem."""
    return lake.state_path("iceberg", "catalog.db")


def has_catalog(lake: Lake) -> bool:
    """True when the lake holds an Iceberg catalog (cheap: one stat, no SQLite)."""
    if not lake.is_local:
        return False
    import pyarrow.fs as pafs

    try:
        return bool(lake.fs.get_file_info(catalog_path(lake)).type == pafs.FileType.File)
    except OSError:
        return False


def _catalog(lake: Lake) -> Any:
    if not lake.is_local:
        raise LakeError(f"lake {lake.uri}: the local Iceberg catalog needs a lake folder; "
                        "in AWS the Glue Data Catalog holds the table (deploy with "
                        "-c format=iceberg)")
    try:
        from pyiceberg.catalog.sql import SqlCatalog
    except ImportError as exc:
        raise LakeError(f"lake {lake.uri}: the Iceberg format needs pyiceberg: "
                        "pip install 'ddbtrail[iceberg]'") from exc

    path = catalog_path(lake)
    with _catalogs_lock:
        found = _catalogs.get(path)
        if found is None:
            lake.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            found = _catalogs[path] = SqlCatalog(
                CATALOG_NAME, uri=f"sqlite:///{path}", warehouse=f"file://{lake.root}")
        return found


def file_path(lake: Lake, uri: str) -> str:
    """A data file's Iceberg URI as a path on the lake's filesystem."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path
    return parsed.netloc + parsed.path


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One data file a scan plan chose, with its Iceberg description."""

    file: DataFile
    iceberg: Any  # pyiceberg.manifest.DataFile
    rows: int


class IcebergLake:
    """``ddbtrail.changes`` of one lake. Cheap to build; the catalog is shared per lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.catalog = _catalog(lake)

    # ------------------------------------------------------------------ table

    def exists(self) -> bool:
        return bool(self.catalog.table_exists(IDENTIFIER))

    def table(self) -> Any:
        """The table at its latest snapshot. LakeError if there is none."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table(IDENTIFIER)
        except NoSuchTableError as exc:
            raise LakeError(f"lake {self.lake.uri}: no Iceberg table {IDENTIFIER}") from exc

    def create(self) -> Any:
        """Create the table (idempotent): schema from the row schema, partitioned by
        identity ``table_name`` and ``dt``, sorted by ``item_key``, ``sequence_number``."""
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.table.sorting import SortField, SortOrder
        from pyiceberg.transforms import IdentityTransform

        spec = PartitionSpec(
            PartitionField(source_id=iceberg_field_id("table_name"), field_id=1000,
                           transform=IdentityTransform(), name="table_name"),
            PartitionField(source_id=iceberg_field_id("dt"), field_id=1001,
                           transform=IdentityTransform(), name="dt"),
        )
        order = SortOrder(*(SortField(source_id=iceberg_field_id(c),
                                      transform=IdentityTransform()) for c in ICEBERG_SORT))
        self.catalog.create_namespace_if_not_exists(ICEBERG_NAMESPACE)
        return self.catalog.create_table_if_not_exists(
            IDENTIFIER, schema=iceberg_schema(), partition_spec=spec, sort_order=order,
            properties=TABLE_PROPERTIES)

    # ------------------------------------------------------------------ writing

    def append(self, rows: pa.Table) -> list[str]:
        """Append rows (any partitions) in one commit; the data files it added.

        ``rows`` has ``row.arrow_schema()`` (partition columns included). Raises LakeError
        when the commit fails; files it wrote are then orphans, never visible.
        """
        table = self.create()
        try:
            table.append(rows.cast(arrow_schema(include_partitions=True)),
                         snapshot_properties={"ddbtrail.operation": "append"})
            snapshot = table.current_snapshot()
            if snapshot is None:
                return []
            return sorted(
                file_path(self.lake, e.data_file.file_path)
                for m in snapshot.manifests(table.io)
                if m.added_snapshot_id == snapshot.snapshot_id
                for e in m.fetch_manifest_entry(table.io, discard_deleted=True)
                if e.snapshot_id == snapshot.snapshot_id)
        except Exception as exc:  # pyiceberg, SQLAlchemy and OS errors alike
            raise LakeError(f"lake {self.lake.uri}: Iceberg append of {rows.num_rows} rows "
                            f"failed ({type(exc).__name__}: {exc})") from exc

    def delete_source_table(self, table_name: str) -> bool:
        """Drop every row of one DynamoDB table (whole partitions, so whole files: no
        row-level deletes) in one commit; True if there were any."""
        from pyiceberg.expressions import EqualTo

        if not self.exists() or not self.plan(table_name=table_name):
            return False
        try:
            self.table().delete(_pred(EqualTo, "table_name", table_name),
                                snapshot_properties={"ddbtrail.operation": "delete-table"})
        except Exception as exc:
            raise LakeError(f"lake {self.lake.uri}: cannot delete table {table_name}'s rows "
                            f"from {IDENTIFIER} ({type(exc).__name__}: {exc})") from exc
        return True

    # ------------------------------------------------------------------ reading

    def plan(self, *, table_name: str | None = None, dt_from: str | None = None,
             dt_to: str | None = None, item_key: str | None = None,
             snapshot_id: int | None = None) -> list[PlannedFile]:
        """Data files of one snapshot (default: the latest) that can hold matching rows.

        Partition values prune by table and dt range; the per-file ``item_key`` bounds
        prune by key. Raises LakeError for a table with row-level deletes (ddbtrail never
        writes them; another engine's would need a merge-on-read reader).
        """
        from pyiceberg.expressions import (
            AlwaysTrue,
            And,
            BooleanExpression,
            EqualTo,
            GreaterThanOrEqual,
            LessThanOrEqual,
        )

        if not self.exists():
            return []
        table = self.table()
        expr: BooleanExpression = AlwaysTrue()
        if table_name is not None:
            expr = And(expr, _pred(EqualTo, "table_name", table_name))
        if dt_from is not None:
            expr = And(expr, _pred(GreaterThanOrEqual, "dt", dt_from))
        if dt_to is not None:
            expr = And(expr, _pred(LessThanOrEqual, "dt", dt_to))
        if item_key is not None:
            expr = And(expr, _pred(EqualTo, "item_key", item_key))
        if snapshot_id is None and table.current_snapshot() is None:
            return []
        try:
            tasks = list(table.scan(row_filter=expr, snapshot_id=snapshot_id).plan_files())
        except Exception as exc:
            raise LakeError(f"lake {self.lake.uri}: cannot plan a scan of {IDENTIFIER} "
                            f"({type(exc).__name__}: {exc})") from exc
        out = []
        for task in tasks:
            if task.delete_files:
                raise LakeError(f"{IDENTIFIER}: {task.file.file_path} has row-level deletes; "
                                "read this table with Athena")
            f = task.file
            out.append(PlannedFile(
                DataFile(file_path(self.lake, f.file_path), str(f.partition[0]),
                         str(f.partition[1]), int(f.file_size_in_bytes)),
                f, int(f.record_count)))
        return sorted(out, key=lambda p: p.file.path)

    def snapshots(self) -> list[dict[str, Any]]:
        """The table's snapshots, oldest first: id, time, operation, counts."""
        if not self.exists():
            return []
        table = self.table()
        current = table.current_snapshot()
        out = []
        for s in table.snapshots():
            summary = s.summary.additional_properties if s.summary else {}
            out.append({
                "snapshot_id": s.snapshot_id,
                "committed_at": dt_mod.datetime.fromtimestamp(
                    s.timestamp_ms / 1000, dt_mod.UTC).isoformat(timespec="milliseconds"),
                "operation": s.summary.operation.value if s.summary else "",
                "by": summary.get("ddbtrail.operation", ""),
                "added_files": int(summary.get("added-data-files", 0)),
                "deleted_files": int(summary.get("deleted-data-files", 0)),
                "added_rows": int(summary.get("added-records", 0)),
                "total_rows": int(summary.get("total-records", 0)),
                "total_files": int(summary.get("total-data-files", 0)),
                "current": current is not None and s.snapshot_id == current.snapshot_id,
            })
        return out

    # ------------------------------------------------------------------ maintenance

    def sort_order_id(self) -> int:
        return int(self.table().metadata.default_sort_order_id)

    def partitions(self, *, table_name: str | None = None) -> dict[tuple[str, str],
                                                                    list[PlannedFile]]:
        """The latest snapshot's files by (table_name, dt)."""
        out: dict[tuple[str, str], list[PlannedFile]] = {}
        for p in self.plan(table_name=table_name):
            out.setdefault((p.file.table_name, p.file.dt), []).append(p)
        return out

    def compact_partition(self, table_name: str, dt: str, *, file_rows: int,
                          row_group_rows: Callable[[pa.Table], int],
                          sort: Callable[[pa.Table], pa.Table],
                          before_commit: Callable[[PartitionResult], None] | None = None,
                          ) -> PartitionResult:
        """Replace one partition's files with deduplicated, key-sorted ones: one commit.

        ``sort`` deduplicates and orders a table; ``row_group_rows`` sizes row groups;
        ``before_commit`` runs with the new files written and not yet committed (tests
        use it to race a writer). A concurrent append conflicts at commit and is retried
        on the refreshed table (its files stay); a concurrent compaction that removed the
        same files fails this one, whose written files are then deleted. Never raises on
        the partition's data: the error goes in the result, the table is unchanged.
        """
        import pyarrow.dataset as ds
        from pyiceberg.expressions import And, EqualTo
        from pyiceberg.io.pyarrow import write_file
        from pyiceberg.manifest import DATA_FILE_TYPE
        from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
        from pyiceberg.table import WriteTask

        table = self.table()
        snapshot = table.current_snapshot()
        planned = self.plan(table_name=table_name, dt_from=dt, dt_to=dt,
                            snapshot_id=snapshot.snapshot_id if snapshot else None)
        result = PartitionResult(table_name, dt, len(planned),
                                        sum(p.file.size for p in planned))
        if not planned:
            return result
        new_files: list[Any] = []
        try:
            full = arrow_schema(include_partitions=True)
            data = ds.dataset([p.file.path for p in planned], schema=full, format="parquet",
                              filesystem=self.lake.fs).to_table()
            result.rows_before = data.num_rows
            data = sort(data)
            result.rows_after = data.num_rows
            metadata = table.metadata
            group_rows = row_group_rows(data)
            metadata = metadata.model_copy(update={"properties": {
                **metadata.properties, "write.parquet.row-group-limit": str(group_rows)}})
            spec = metadata.spec()
            key = PartitionKey(
                field_values=[PartitionFieldValue(field=f, value=v)
                              for f, v in zip(spec.fields, (table_name, dt), strict=True)],
                partition_spec=spec, schema=metadata.schema())
            write_uuid = uuid.uuid4()
            tasks = [WriteTask(write_uuid=write_uuid, task_id=i, schema=metadata.schema(),
                               record_batches=data.slice(start, file_rows).to_batches(),
                               partition_key=key)
                     for i, start in enumerate(range(0, max(data.num_rows, 1), file_rows))]
            sort_pos = [f.name for f in DATA_FILE_TYPE[2].fields].index("sort_order_id")
            for written in write_file(table.io, metadata, iter(tasks)):
                # pyiceberg leaves sort_order_id unset; these files are sorted by it.
                written[sort_pos] = metadata.default_sort_order_id
                new_files.append(written)
            result.new_files = [file_path(self.lake, f.file_path) for f in new_files]
            result.files_after = len(new_files)
            result.bytes_after = sum(int(f.file_size_in_bytes) for f in new_files)
            if before_commit is not None:
                before_commit(result)
            tx = table.transaction()
            with tx.update_snapshot(
                    snapshot_properties={"ddbtrail.operation": COMPACT_OPERATION}
            ).overwrite() as rewrite:
                rewrite.delete_by_predicate(And(_pred(EqualTo, "table_name", table_name),
                                                _pred(EqualTo, "dt", dt)))
                for p in planned:
                    rewrite.delete_data_file(p.iceberg)
                for f in new_files:
                    rewrite.append_data_file(f)
            committed = tx.commit_transaction()
            current = committed.current_snapshot()
            result.snapshot_id = int(current.snapshot_id) if current else None
        # pyiceberg, SQLAlchemy, Arrow and OS errors alike: the commit did not land, so
        # nothing of ours is visible; report it and leave the table as it was.
        except Exception as exc:  # noqa: BLE001
            result.error = f"{type(exc).__name__}: {exc}"
            for f in new_files:
                # One left behind is an orphan; remove_orphans deletes it later.
                with contextlib.suppress(OSError):
                    self.lake.fs.delete_file(file_path(self.lake, f.file_path))
        return result

    def expire_snapshots(self, older_than: dt_mod.datetime) -> int:
        """Expire snapshots committed before ``older_than`` (never the current one);
        how many were expired. Their files become orphans for ``remove_orphans``."""
        table = self.table()
        before = {s.snapshot_id for s in table.snapshots()}
        table.maintenance.expire_snapshots().older_than(older_than).commit()
        after = {s.snapshot_id for s in self.table().snapshots()}
        return len(before - after)

    def referenced_files(self) -> set[str]:
        """Paths of every data file any live snapshot references."""
        table = self.table()
        out: set[str] = set()
        for s in table.snapshots():
            for manifest in s.manifests(table.io):
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                    out.add(file_path(self.lake, entry.data_file.file_path))
        return out

    def remove_orphans(self, older_than: dt_mod.datetime) -> list[str]:
        """Delete data files no snapshot references, last modified before ``older_than``
        (a younger one may belong to a commit in flight). The paths deleted."""
        import pyarrow.fs as pafs

        table = self.table()
        data_dir = file_path(self.lake, table.location().rstrip("/") + "/data")
        referenced = self.referenced_files()
        cutoff = older_than.timestamp()
        removed = []
        infos = self.lake.fs.get_file_info(pafs.FileSelector(data_dir, recursive=True,
                                                             allow_not_found=True))
        for info in infos:
            if info.type != pafs.FileType.File or info.path in referenced:
                continue
            if info.mtime is not None and info.mtime.timestamp() >= cutoff:
                continue
            self.lake.fs.delete_file(info.path)
            removed.append(info.path)
        return sorted(removed)


def _pred(kind: Any, name: str, value: str) -> Any:
    # pyiceberg's predicates take (term, literal); its stubs only show the keyword form.
    return kind(name, value)


def open_if_present(lake: Lake) -> IcebergLake | None:
    """The lake's Iceberg table, or None when the lake has no Iceberg catalog or table."""
    if not has_catalog(lake):
        return None
    ice = IcebergLake(lake)
    return ice if ice.exists() else None


def partition_needs_compacting(files: Sequence[PlannedFile], sort_order_id: int) -> bool:
    """False when every file is already sorted by the table's sort order (one compaction's
    output, nothing appended since)."""
    return any(p.iceberg.sort_order_id != sort_order_id for p in files)
