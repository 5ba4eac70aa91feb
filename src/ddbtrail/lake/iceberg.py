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

Readers plan by partition values, then per-file ``item_key`` bounds, and read the planned
Parquet files themselves (DuckDB in ``ddbtrail.query.duck``). The loaded metadata and the
current snapshot's file list are cached per lake, keyed by the metadata location the
catalog names, which every call reads again (one SQLite query, one stat): a commit is always
seen, and an unchanged table is planned without reading its metadata or manifests again.

Metadata stays bounded however often a local writer commits: appends merge manifests
(``commit.manifest-merge.enabled``), and after each commit the writer expires snapshots by
the stack's retention (``SNAPSHOT_RETENTION_DAYS``, as Glue's optimizer does in AWS) and
beyond ``MAX_SNAPSHOTS`` (``expire_by_policy``).

Failures are domain errors naming the file (``core.exceptions``): a locked catalog is
retried for ``LOCK_WAIT_SECONDS`` first; a corrupt, empty or foreign catalog.db, missing or
corrupt metadata and a missing data file each get their own. Only a writer (``create=True``)
ever initialises a catalog; a read never writes to one. The catalog records absolute
locations, so a lake copied or moved elsewhere is refused (``LakeMoved``) before anything
is read, written or deleted: nothing here touches a file outside the lake's root.
"""

from __future__ import annotations

import contextlib
import datetime as dt_mod
import logging
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlparse

from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.core.exceptions import (
    CatalogCorrupt,
    CatalogError,
    CatalogLocked,
    DataFileMissing,
    IcebergMetadataError,
    LakeError,
    LakeMoved,
    NotADdbtrailCatalog,
    OutsideLakeRoot,
)
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
    # Bounded metadata: appends fold small manifests into one once there are this many
    # (Iceberg's default, merged explicitly: pyiceberg's default is never), and only the
    # last metadata.json files are kept.
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "100",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
# What a table made by an older ddbtrail gets on its next write (one commit, once).
WRITE_PROPERTIES: Final = {k: v for k, v in TABLE_PROPERTIES.items()
                           if k.startswith(("commit.manifest", "write.metadata.delete",
                                            "write.metadata.previous"))}

# Snapshot retention, one policy for every writer of the table. In AWS, Glue's optimizer
# (infra/constructs/iceberg.py) expires snapshots older than SNAPSHOT_RETENTION_DAYS, keeping
# at least SNAPSHOTS_TO_RETAIN. A local writer (capture, compaction) applies the same after
# its commits and, since it may commit far more often than Firehose's buffer interval, also
# keeps at most MAX_SNAPSHOTS (back down to half of that once past it, so the expiry is one
# extra commit per MAX_SNAPSHOTS // 2 commits): the metadata a commit rewrites stays small.
SNAPSHOT_RETENTION_DAYS: Final = 7
SNAPSHOTS_TO_RETAIN: Final = 1
MAX_SNAPSHOTS: Final = 32
_DAY_MS: Final = 86_400_000

_catalogs: dict[str, Any] = {}
_catalogs_lock = threading.Lock()

logger = logging.getLogger(__name__)

# How long a locked catalog is retried, in total, before CatalogLocked; each attempt also
# waits up to _BUSY_SECONDS (our own probes) or 5 s (pyiceberg's engine) inside SQLite.
# Module-level so tests can shorten it.
LOCK_WAIT_SECONDS: float = 15.0
_BUSY_SECONDS: Final = 1.0
_LOCK_RETRY: Final = RetryPolicy(max_attempts=1_000, base_delay=0.05, max_delay=1.0)
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"

T = TypeVar("T")


class _ToDdbtrailLog(logging.Handler):
    """pyiceberg's log records (a commit retried after a concurrent update) go through
    ddbtrail's logger: routine retries at INFO, never raw on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        level = logging.INFO if record.levelno <= logging.WARNING else record.levelno
        logger.log(level, "Iceberg: %s", record.getMessage())


_pyiceberg_log = logging.getLogger("pyiceberg")
if not any(isinstance(h, _ToDdbtrailLog) for h in _pyiceberg_log.handlers):
    _pyiceberg_log.addHandler(_ToDdbtrailLog())
    _pyiceberg_log.propagate = False


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


def _sqlite_kind(exc: BaseException) -> str | None:
    """``locked`` or ``corrupt`` when ``exc`` (or what it wraps) is SQLite saying so."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen).lower()
        if "database is locked" in text or "database is busy" in text:
            return "locked"
        if ("file is not a database" in text or "malformed" in text
                or "file is encrypted" in text or "disk i/o error" in text):
            return "corrupt"
        seen = seen.__cause__ or seen.__context__
    return None


def _guard(lake: Lake, what: Callable[[], T]) -> T:
    """Run one catalog operation. A locked catalog is retried with backoff for
    ``LOCK_WAIT_SECONDS`` in all, then CatalogLocked; a corrupt one is CatalogCorrupt."""
    path = catalog_path(lake)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    rng = random.Random()
    attempt = 0
    while True:
        try:
            return what()
        except Exception as exc:
            kind = _sqlite_kind(exc)
            if kind == "locked" and time.monotonic() < deadline:
                time.sleep(min(_LOCK_RETRY.delay(attempt, rng),
                               max(deadline - time.monotonic(), 0.0)))
                attempt += 1
                continue
            if kind == "locked":
                raise CatalogLocked(
                    f"Iceberg catalog {path}: locked by another process for more than "
                    f"{LOCK_WAIT_SECONDS:g} s (a capture or compaction still running?); "
                    "run again once it is done") from exc
            if kind == "corrupt":
                raise CatalogCorrupt(
                    f"Iceberg catalog {path}: not a readable SQLite database ({exc}); "
                    "restore it from a backup") from exc
            raise


def _not_ours(path: str, why: str) -> NotADdbtrailCatalog:
    return NotADdbtrailCatalog(
        f"{path}: not a ddbtrail catalog ({why}); move it aside (ddbtrail never reads "
        "from or writes to it) or point at the right lake")


def _inspect_catalog(lake: Lake) -> str:
    """What catalog.db is, read-only: ``absent``, ``empty`` (0 bytes), or ``ddbtrail``
    (an Iceberg SQL catalog). CatalogCorrupt for random bytes or a truncated file,
    NotADdbtrailCatalog for a foreign SQLite database, CatalogLocked past the wait."""
    path = catalog_path(lake)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        raise CatalogCorrupt(f"Iceberg catalog {path}: cannot be read ({exc})") from exc
    if not head:
        return "empty"
    if head != _SQLITE_MAGIC:
        raise CatalogCorrupt(f"Iceberg catalog {path}: not an SQLite database (its first "
                             "bytes are not SQLite's header); restore it from a backup")

    def probe() -> tuple[str, set[str]]:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_SECONDS)
        try:
            check = con.execute("PRAGMA quick_check").fetchone()
            names = {n for (n,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            return str(check[0]) if check else "", names
        finally:
            con.close()

    check, names = _guard(lake, probe)
    if check != "ok":
        raise CatalogCorrupt(f"Iceberg catalog {path}: SQLite reports it damaged ({check}); "
                             "restore it from a backup")
    if "iceberg_tables" not in names:
        raise _not_ours(path, "an SQLite database without Iceberg catalog tables")
    return "ddbtrail"


def _metadata_location(lake: Lake) -> str | None:
    """The catalog's pointer to ``ddbtrail.changes``'s current metadata.json (read-only)."""
    path = catalog_path(lake)

    def read() -> str | None:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_SECONDS)
        try:
            row = con.execute(
                "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND "
                "table_namespace = ? AND table_name = ?",
                (CATALOG_NAME, ICEBERG_NAMESPACE, ICEBERG_TABLE)).fetchone()
        finally:
            con.close()
        return None if row is None or row[0] is None else str(row[0])

    return _guard(lake, read)


def _file_key(location: str, path: str) -> tuple[str, int, int]:
    """What identifies one metadata file's content: its location, size and mtime (a file
    replaced or damaged in place is loaded again, and then refused)."""
    st = os.stat(path)
    return location, st.st_size, st.st_mtime_ns


def _table_dir(lake: Lake) -> str:
    return lake.path(ICEBERG_NAMESPACE, ICEBERG_TABLE)


def _catalog(lake: Lake, *, create: bool = False, over_files: bool = False) -> Any:
    """The lake's SQL catalog. A reader's never initialises or writes anything; a writer's
    (``create``) initialises a missing one, unless table files are already there (a new
    table over them would make every one an orphan for remove_orphans to delete), which
    only ``register_here`` (``over_files``) may do."""
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
        # Inspected on every open (a read-only quick_check of a few KB): the file may have
        # been replaced or damaged since this process cached its catalog.
        state = _inspect_catalog(lake)
        files_there = not over_files and os.path.isdir(_table_dir(lake))
        if state == "empty" and (not create or files_there):
            raise _not_ours(path, "0 bytes" + (
                f", though {_table_dir(lake)} holds table files" if create else ""))
        if state == "absent" and not create:
            raise LakeError(f"lake {lake.uri}: no Iceberg table (no catalog at {path})")
        if state == "absent" and files_there:
            raise CatalogError(f"Iceberg catalog {path} is missing, though "
                               f"{_table_dir(lake)} holds table files; restore it from a "
                               "backup (or rename catalog.db.moved back) before writing")
        found = _catalogs.get(path)
        if found is not None and state == "ddbtrail":
            return found
        lake.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        found = _guard(lake, lambda: SqlCatalog(
            CATALOG_NAME, uri=f"sqlite:///{path}",
            warehouse=f"file://{lake.root}",
            init_catalog_tables="true" if create else "false"))
        _catalogs[path] = found
        return found


def inside_root(lake: Lake, path: str) -> bool:
    """True when ``path`` (on the lake's filesystem) lies under the lake's root."""
    if not lake.is_local:
        return path.startswith(lake.root.rstrip("/") + "/")
    root = os.path.realpath(lake.root)
    return os.path.realpath(path).startswith(root.rstrip("/") + "/")


def require_inside_root(lake: Lake, path: str, action: str) -> str:
    """``path`` if it lies under the lake's root; OutsideLakeRoot (naming both) if not."""
    if not inside_root(lake, path):
        raise OutsideLakeRoot(f"lake {lake.uri}: refusing to {action} {path}: it lies "
                              "outside the lake's root (a copied or moved lake's metadata "
                              "still names the original)")
    return path


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


@dataclass(frozen=True, slots=True)
class _Live:
    """One live entry of a manifest, with what planning prunes on decoded once."""

    planned: PlannedFile
    key_min: str | None  # the file's item_key bounds (None: unbounded on that side)
    key_max: str | None
    deletes: bool  # a delete file (row-level deletes), not a data file


@dataclass(slots=True)
class _Loaded:
    """A lake's table as last loaded, keyed by its metadata file (location, size, mtime):
    the metadata, and once a reader planned, the current snapshot's live entries."""

    key: tuple[str, int, int]
    metadata: Any  # pyiceberg TableMetadata
    io: Any
    live: tuple[_Live, ...] | None = None


# By catalog path: the last loaded table, and the live entries of its current snapshot's
# manifests by manifest path (a manifest file is never rewritten, so a new snapshot reads
# only the manifests it added).
_loaded: dict[str, _Loaded] = {}
_manifest_entries: dict[str, dict[str, tuple[_Live, ...]]] = {}
_KEY_ID: Final = iceberg_field_id("item_key")


def _bound(raw: bytes | None) -> str | None:
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import StringType

    if raw is None:
        return None
    try:
        return str(from_bytes(StringType(), raw))
    except UnicodeDecodeError:  # not a bound this reader can compare: no pruning on it
        return None


def _live(lake: Lake, f: Any) -> _Live:
    from pyiceberg.manifest import DataFileContent

    return _Live(
        PlannedFile(DataFile(file_path(lake, f.file_path), str(f.partition[0]),
                             str(f.partition[1]), int(f.file_size_in_bytes)),
                    f, int(f.record_count)),
        _bound((f.lower_bounds or {}).get(_KEY_ID)), _bound((f.upper_bounds or {}).get(_KEY_ID)),
        f.content != DataFileContent.DATA)


def _forget(lake: Lake) -> None:
    path = catalog_path(lake)
    _loaded.pop(path, None)
    _manifest_entries.pop(path, None)


def snapshots_to_expire(metadata: Any, *, older_than_ms: int,
                        keep_newest: int | None = None) -> list[int]:
    """Ids of the snapshots the retention policy expires: committed before
    ``older_than_ms``, or (with ``keep_newest``) not among the newest ``keep_newest``.
    Never a branch or tag head (the current snapshot is main's), and never the newest
    ``SNAPSHOTS_TO_RETAIN``."""
    protected = {ref.snapshot_id for ref in metadata.refs.values()}
    newest_first = sorted(metadata.snapshots, reverse=True,
                          key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    return [s.snapshot_id for i, s in enumerate(newest_first)
            if s.snapshot_id not in protected and i >= SNAPSHOTS_TO_RETAIN
            and (s.timestamp_ms < older_than_ms
                 or (keep_newest is not None and i >= keep_newest))]


class IcebergLake:
    """``ddbtrail.changes`` of one lake. Cheap to build; the catalog is shared per lake."""

    def __init__(self, lake: Lake, *, create: bool = False) -> None:
        """``create``: a writer's catalog, initialised when absent; a reader's (the default)
        is never written to, and an absent one is a LakeError."""
        self.lake = lake
        self.catalog = _catalog(lake, create=create)

    # ------------------------------------------------------------------ table

    def exists(self) -> bool:
        """True when the catalog registers the table (its metadata is not read here)."""
        return self.metadata_file() is not None

    def metadata_file(self) -> str | None:
        """The current metadata.json (a path under the lake's root), None without a table.
        LakeMoved when the catalog names a file outside this lake (a copied or moved lake):
        checked before anything of the table is read, so a copy never reads the original."""
        current = self._current()
        return None if current is None else current[1]

    def _current(self) -> tuple[str, str] | None:
        """The catalog's metadata location and its path (``metadata_file``), or None."""
        location = _metadata_location(self.lake)
        if location is None:
            return None
        meta = file_path(self.lake, location)
        here = _table_dir(self.lake) + "/metadata/"
        if not os.path.realpath(meta).startswith(os.path.realpath(here.rstrip("/")) + "/"):
            was = meta.rsplit("/metadata/", 1)[0]
            raise LakeMoved(
                f"lake {self.lake.uri}: its Iceberg table is registered at {was}, not here "
                "(the lake was copied or moved); ddbtrail neither reads nor changes files "
                f"outside the lake: register it here with `ddbtrail compact --lake "
                f"{self.lake.uri} --register-here`, or move it back to "
                f"{was.rsplit('/', 2)[0]}")
        return location, meta

    def table(self) -> Any:
        """The table at its latest snapshot. LakeError if there is none; LakeMoved,
        IcebergMetadataError or a CatalogError (each naming the file) if it cannot be read.
        A new ``Table`` each call (writers change theirs in place), over metadata loaded
        once per metadata file."""
        from pyiceberg.table import Table

        loaded = self._loaded()
        return Table((ICEBERG_NAMESPACE, ICEBERG_TABLE), loaded.metadata, loaded.key[0],
                     loaded.io, self.catalog)

    def _loaded(self, current: tuple[str, str] | None = None) -> _Loaded:
        """The table's metadata, from the cache while the catalog still names the same
        unchanged metadata file (one SQLite query and one stat), else loaded again."""
        from pyiceberg.exceptions import NoSuchTableError

        current = current or self._current()
        if current is None:
            raise LakeError(f"lake {self.lake.uri}: no Iceberg table {IDENTIFIER}")
        location, meta = current
        try:
            cached = _loaded.get(catalog_path(self.lake))
            if cached is not None and cached.key == _file_key(location, meta):
                return cached
            table = _guard(self.lake, lambda: self.catalog.load_table(IDENTIFIER))
            return self._remember(table)
        except NoSuchTableError as exc:
            raise LakeError(f"lake {self.lake.uri}: no Iceberg table {IDENTIFIER}") from exc
        except LakeError:
            raise
        except FileNotFoundError as exc:
            raise IcebergMetadataError(
                f"Iceberg table {IDENTIFIER}: its current metadata file {meta} is missing; "
                "restore it from a backup (the catalog points at it)") from exc
        except Exception as exc:  # pydantic, JSON and OS errors alike: a damaged file
            raise IcebergMetadataError(
                f"Iceberg table {IDENTIFIER}: its current metadata file {meta} is unreadable "
                f"({type(exc).__name__}: {_one_line(exc)}); restore it from a backup") from exc

    def _remember(self, table: Any) -> _Loaded:
        """Cache a table just loaded or committed (its metadata is its metadata file's)."""
        location = table.metadata_location
        loaded = _Loaded(_file_key(location, file_path(self.lake, location)), table.metadata,
                         table.io)
        _loaded[catalog_path(self.lake)] = loaded
        return loaded

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
        from pyiceberg.exceptions import TableAlreadyExistsError

        # Existence first: pyiceberg's create_table_if_not_exists writes a new metadata
        # file before the catalog refuses it, one orphan per call.
        if self.exists():
            return self.table()
        _guard(self.lake, lambda: self.catalog.create_namespace_if_not_exists(
            ICEBERG_NAMESPACE))
        try:
            return _guard(self.lake, lambda: self.catalog.create_table(
                IDENTIFIER, schema=iceberg_schema(), partition_spec=spec, sort_order=order,
                properties=TABLE_PROPERTIES))
        except TableAlreadyExistsError:  # another writer won the race
            return self.table()

    # ------------------------------------------------------------------ writing

    def _writable(self) -> Any:
        """The table for a write: created if absent; a table made by an older ddbtrail gets
        the ``WRITE_PROPERTIES`` it lacks (bounded metadata) first, in one commit."""
        table = self.create()
        props = table.metadata.properties
        missing = {k: v for k, v in WRITE_PROPERTIES.items() if k not in props}
        if missing:
            with table.transaction() as tx:
                tx.set_properties(missing)
            self._remember(table)
        return table

    def _after_commit(self, table: Any) -> None:
        """What follows each local commit: the committed table cached, then the retention
        policy (``expire_by_policy``). An expiry that fails is logged and tried again after
        the next commit: the commit itself has landed."""
        self._remember(table)
        try:
            self.expire_by_policy(table)
        except Exception as exc:  # noqa: BLE001 (SQLAlchemy, pyiceberg, OS errors alike)
            logger.warning("Iceberg table %s: snapshot expiry skipped (%s: %s); the next "
                           "commit tries again", IDENTIFIER, type(exc).__name__,
                           _one_line(exc))

    def append(self, rows: pa.Table) -> list[str]:
        """Append rows (any partitions) in one commit; the data files it added.

        ``rows`` has ``row.arrow_schema()`` (partition columns included). Raises LakeError
        when the commit fails; files it wrote are then orphans, never visible. Manifests
        are merged as the table's properties say, and snapshots expire by the retention
        policy after the commit.
        """
        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        table = self._writable()  # LakeErrors (catalog, metadata) pass through as they are
        data = rows.cast(arrow_schema(include_partitions=True))
        try:
            tx = table.transaction()
            with tx.update_snapshot(snapshot_properties={"ddbtrail.operation": "append"}
                                    ).merge_append() as producer:
                added = list(_dataframe_to_data_files(
                    table_metadata=tx.table_metadata, df=data, io=table.io,
                    write_uuid=producer.commit_uuid)) if data.num_rows else []
                for f in added:
                    producer.append_data_file(f)
            table = tx.commit_transaction()
        except Exception as exc:  # pyiceberg, SQLAlchemy and OS errors alike
            raise LakeError(f"lake {self.lake.uri}: Iceberg append of {rows.num_rows} rows "
                            f"failed ({type(exc).__name__}: {exc})") from exc
        self._drop_merged_away(table, producer)
        self._after_commit(table)
        return sorted(file_path(self.lake, f.file_path) for f in added)

    def _drop_merged_away(self, table: Any, producer: Any) -> None:
        """Delete the manifests a merging append wrote and then folded into a merged one:
        no snapshot ever referenced them (pyiceberg leaves them behind)."""
        snapshot = table.current_snapshot()
        if snapshot is None:
            return
        kept = {m.manifest_path for m in snapshot.manifests(table.io)}
        for written in getattr(producer, "_written_manifests", ()):
            if written not in kept:
                with contextlib.suppress(OSError, LakeError):
                    self.lake.fs.delete_file(require_inside_root(
                        self.lake, file_path(self.lake, written), "delete"))

    def delete_source_table(self, table_name: str) -> bool:
        """Drop every row of one DynamoDB table (whole partitions, so whole files: no
        row-level deletes) in one commit; True if there were any."""
        from pyiceberg.expressions import EqualTo

        if not self.exists() or not self.plan(table_name=table_name):
            return False
        table = self._writable()
        try:
            table.delete(_pred(EqualTo, "table_name", table_name),
                         snapshot_properties={"ddbtrail.operation": "delete-table"})
        except Exception as exc:
            raise LakeError(f"lake {self.lake.uri}: cannot delete table {table_name}'s rows "
                            f"from {IDENTIFIER} ({type(exc).__name__}: {exc})") from exc
        self._after_commit(table)
        return True

    # ------------------------------------------------------------------ reading

    def plan(self, *, table_name: str | None = None, dt_from: str | None = None,
             dt_to: str | None = None, item_key: str | None = None,
             snapshot_id: int | None = None) -> list[PlannedFile]:
        """Data files of one snapshot (default: the latest) that can hold matching rows.

        Partition values prune by table and dt range; the per-file ``item_key`` bounds
        prune by key. The latest snapshot's files come from the cache while the catalog
        names the same metadata file (a commit is seen by the next call). Raises LakeError
        for a table with row-level deletes (ddbtrail never writes them; another engine's
        would need a merge-on-read reader).
        """
        current = self._current()
        if current is None:
            return []
        loaded = self._loaded(current)
        snapshot = loaded.metadata.current_snapshot()
        if snapshot is None:
            return []
        if snapshot_id is not None and snapshot_id != snapshot.snapshot_id:
            live = self._live_of(loaded, snapshot_id)
        else:
            if loaded.live is None:
                loaded.live = self._live_of(loaded, snapshot.snapshot_id)
            live = loaded.live
        out = []
        for entry in live:
            if entry.deletes:
                raise LakeError(f"{IDENTIFIER} has row-level deletes "
                                f"({entry.planned.iceberg.file_path}); read this table with "
                                "Athena")
            f = entry.planned.file
            if (entry.planned.rows == 0
                    or (table_name is not None and f.table_name != table_name)
                    or (dt_from is not None and f.dt < dt_from)
                    or (dt_to is not None and f.dt > dt_to)
                    or (item_key is not None and (
                        (entry.key_min is not None and item_key < entry.key_min)
                        or (entry.key_max is not None and item_key > entry.key_max)))):
                continue
            out.append(entry.planned)
        self._require_present([p.file.path for p in out])
        return sorted(out, key=lambda p: p.file.path)

    def _live_of(self, loaded: _Loaded, snapshot_id: int) -> tuple[_Live, ...]:
        """Every live entry (data and delete files) of one snapshot's manifests. Manifests
        already read for this lake are not read again; the cache keeps those of the
        current snapshot only."""
        snapshot = loaded.metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise LakeError(f"{IDENTIFIER}: no snapshot {snapshot_id}")
        path = catalog_path(self.lake)
        known = _manifest_entries.get(path, {})
        by_manifest: dict[str, tuple[_Live, ...]] = {}
        try:
            for manifest in snapshot.manifests(loaded.io):
                got = known.get(manifest.manifest_path)
                if got is None:
                    got = tuple(_live(self.lake, e.data_file) for e in
                                manifest.fetch_manifest_entry(loaded.io, discard_deleted=True))
                by_manifest[manifest.manifest_path] = got
        except FileNotFoundError as exc:
            raise IcebergMetadataError(
                f"Iceberg table {IDENTIFIER}: a manifest file is missing "
                f"({_one_line(exc)}); restore it from a backup") from exc
        except Exception as exc:
            raise IcebergMetadataError(
                f"lake {self.lake.uri}: cannot plan a scan of {IDENTIFIER}, a manifest "
                f"is unreadable ({type(exc).__name__}: {_one_line(exc)}); restore it from "
                "a backup") from exc
        current = loaded.metadata.current_snapshot()
        if current is not None and current.snapshot_id == snapshot_id:
            _manifest_entries[path] = by_manifest
        return tuple(e for entries in by_manifest.values() for e in entries)

    def _require_present(self, paths: list[str]) -> None:
        """DataFileMissing naming the first planned data file that is not on disk."""
        import pyarrow.fs as pafs

        if not paths:
            return
        for info in self.lake.fs.get_file_info(paths):
            if info.type == pafs.FileType.NotFound:
                raise DataFileMissing(
                    f"Iceberg table {IDENTIFIER}: data file {info.path} is missing, though "
                    "the current snapshot references it; restore it from a backup")

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

    def compact_partition(self, table_name: str, dt: str, *,
                          layout: Callable[[pa.Table], tuple[int, int]],
                          sort: Callable[[pa.Table], pa.Table],
                          before_commit: Callable[[PartitionResult], None] | None = None,
                          ) -> PartitionResult:
        """Replace one partition's files with deduplicated, key-sorted ones: one commit.

        ``sort`` deduplicates and orders a table; ``layout`` gives (rows per file, rows
        per row group) for the sorted table: each file holds a contiguous key range;
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

        table = self._writable()
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
            file_rows, group_rows = layout(data)
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
            self._after_commit(committed)
        # pyiceberg, SQLAlchemy, Arrow and OS errors alike: the commit did not land, so
        # nothing of ours is visible; report it and leave the table as it was.
        except Exception as exc:  # noqa: BLE001
            result.error = f"{type(exc).__name__}: {exc}"
            for f in new_files:
                # One left behind is an orphan; remove_orphans deletes it later.
                with contextlib.suppress(OSError, LakeError):
                    self.lake.fs.delete_file(require_inside_root(
                        self.lake, file_path(self.lake, f.file_path), "delete"))
        return result

    def expire_snapshots(self, older_than: dt_mod.datetime) -> int:
        """Expire snapshots committed before ``older_than`` (never the current one);
        how many were expired. Their data files become orphans for ``remove_orphans``."""
        table = self.table()
        return self._expire(table, snapshots_to_expire(
            table.metadata, older_than_ms=int(older_than.timestamp() * 1000)))

    def expire_by_policy(self, table: Any | None = None, *, now_ms: int | None = None) -> int:
        """The retention policy every local commit applies, when it is due: snapshots
        older than ``SNAPSHOT_RETENTION_DAYS`` expire, and past ``MAX_SNAPSHOTS`` all but
        the newest ``MAX_SNAPSHOTS // 2``. Due once there are more than ``MAX_SNAPSHOTS``
        or one is a day past the retention, so it is one commit now and then, not one per
        commit. How many were expired (0 when not due)."""
        table = table if table is not None else self.table()
        now = int(time.time() * 1000) if now_ms is None else now_ms
        cutoff = now - SNAPSHOT_RETENTION_DAYS * _DAY_MS
        snapshots = table.metadata.snapshots
        if (len(snapshots) <= MAX_SNAPSHOTS
                and min((s.timestamp_ms for s in snapshots), default=now) >= cutoff - _DAY_MS):
            return 0
        return self._expire(table, snapshots_to_expire(
            table.metadata, older_than_ms=cutoff, keep_newest=MAX_SNAPSHOTS // 2))

    def _expire(self, table: Any, ids: list[int]) -> int:
        """Expire these snapshots in one commit (``table`` is updated in place), then
        delete the manifest lists and manifests only they referenced, as the optimizer's
        retention does (``CleanExpiredFiles``). Their data files are left for
        ``remove_orphans``: a reader may still be reading one."""
        if not ids:
            return 0
        gone = set(ids)
        kept: set[str] = set()
        dropped: set[str] = set()
        for s in table.metadata.snapshots:
            manifests = {m.manifest_path for m in s.manifests(table.io)}
            if s.snapshot_id in gone:
                dropped |= manifests | {s.manifest_list}
            else:
                kept |= manifests
        _guard(self.lake, lambda: table.maintenance.expire_snapshots().by_ids(ids).commit())
        self._remember(table)
        for uri in sorted(dropped - kept):
            with contextlib.suppress(OSError, LakeError):
                self.lake.fs.delete_file(require_inside_root(
                    self.lake, file_path(self.lake, uri), "delete"))
        return len(ids)

    def referenced_files(self) -> set[str]:
        """Paths of every data file any live snapshot references."""
        table = self.table()
        out: set[str] = set()
        for s in table.snapshots():
            for manifest in s.manifests(table.io):
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                    out.add(file_path(self.lake, entry.data_file.file_path))
        return out

    def referenced_metadata(self) -> set[str]:
        """Paths of the metadata the table needs now: the current metadata.json, and the
        manifest list and manifests of every live snapshot."""
        table = self.table()
        out = {file_path(self.lake, table.metadata_location)}
        for s in table.snapshots():
            out.add(file_path(self.lake, s.manifest_list))
            out |= {file_path(self.lake, m.manifest_path) for m in s.manifests(table.io)}
        return out

    def remove_orphans(self, older_than: dt_mod.datetime) -> list[str]:
        """Delete files no live snapshot needs, last modified before ``older_than`` (a
        younger one may belong to a commit in flight): data files, and metadata (old
        metadata.json, manifest lists, manifests). The paths deleted. OutsideLakeRoot,
        before deleting anything, if the table's folders lie outside the lake's root."""
        import pyarrow.fs as pafs

        table = self.table()
        location = file_path(self.lake, table.location().rstrip("/"))
        require_inside_root(self.lake, location + "/data", "remove orphans in")
        referenced = self.referenced_files() | self.referenced_metadata()
        cutoff = older_than.timestamp()
        removed = []
        for folder in ("data", "metadata"):
            infos = self.lake.fs.get_file_info(pafs.FileSelector(
                f"{location}/{folder}", recursive=True, allow_not_found=True))
            for info in infos:
                if info.type != pafs.FileType.File or info.path in referenced:
                    continue
                if info.mtime is not None and info.mtime.timestamp() >= cutoff:
                    continue
                self.lake.fs.delete_file(require_inside_root(self.lake, info.path, "delete"))
                removed.append(info.path)
        return sorted(removed)


def _one_line(exc: BaseException) -> str:
    """The first line of an error's text (pydantic's run to many)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def register_here(lake: Lake) -> int:
    """Register a copied or moved lake's Iceberg table again, in place: a new catalog whose
    table holds the current snapshot's data files at their paths under this lake's root, in
    one commit. Older snapshots are not carried over; the old catalog is kept beside the
    new one as ``catalog.db.moved``. The number of data files registered.

    Reads only files under this root (the copied metadata, manifests, data files); LakeError
    if the table is already registered here, or a file it needs is missing from the copy.
    """
    import pyarrow.fs as pafs
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import DATA_FILE_TYPE, read_manifest_list
    from pyiceberg.serializers import FromInputFile

    if _inspect_catalog(lake) != "ddbtrail" or (location := _metadata_location(lake)) is None:
        raise LakeError(f"lake {lake.uri}: no Iceberg table to register again")
    old_meta = file_path(lake, location)
    was = old_meta.rsplit("/metadata/", 1)[0]
    here = _table_dir(lake)
    if os.path.realpath(was) == os.path.realpath(here):
        raise LakeError(f"lake {lake.uri}: its Iceberg table is already registered here")

    def moved(uri: str) -> str:
        path = file_path(lake, uri)
        if not path.startswith(was + "/"):
            raise OutsideLakeRoot(f"lake {lake.uri}: {uri} lies outside the table's old "
                                  f"folder {was}; cannot register it here")
        return here + path[len(was):]

    class _Moved(PyArrowFileIO):
        # Reads the copy's files where the old metadata names the original's.
        def new_input(self, location: str) -> Any:
            return super().new_input(moved(location))

    io = _Moved()
    try:
        metadata = FromInputFile.table_metadata(io.new_input(location))
        snapshot = metadata.current_snapshot()
        files = [] if snapshot is None else [
            entry.data_file
            for manifest in read_manifest_list(io.new_input(snapshot.manifest_list))
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True)]
    except LakeError:
        raise
    except FileNotFoundError as exc:
        raise IcebergMetadataError(f"lake {lake.uri}: a metadata file of the copied table "
                                   f"is missing ({_one_line(exc)})") from exc
    path_pos = [f.name for f in DATA_FILE_TYPE[2].fields].index("file_path")
    for f in files:
        f[path_pos] = "file://" + moved(f.file_path)
    paths = [file_path(lake, f.file_path) for f in files]
    for info in lake.fs.get_file_info(paths) if paths else []:
        if info.type == pafs.FileType.NotFound:
            raise DataFileMissing(f"lake {lake.uri}: data file {info.path} of the copied "
                                  "table is missing; cannot register it here")
    path = catalog_path(lake)
    with _catalogs_lock:
        _catalogs.pop(path, None)
        _forget(lake)
        os.replace(path, path + ".moved")
    _catalog(lake, create=True, over_files=True)
    table = IcebergLake(lake, create=True).create()
    if files:
        with table.transaction() as tx, tx.update_snapshot(
                snapshot_properties={"ddbtrail.operation": "register-here"}
        ).fast_append() as append:
            for f in files:
                append.append_data_file(f)
    return len(files)


def _pred(kind: Any, name: str, value: str) -> Any:
    # pyiceberg's predicates take (term, literal); its stubs only show the keyword form.
    return kind(name, value)


def open_if_present(lake: Lake) -> IcebergLake | None:
    """The lake's Iceberg table, or None when the lake has no Iceberg catalog or table."""
    if not has_catalog(lake):
        return None
    ice = IcebergLake(lake)
    return ice if ice.metadata_file() is not None else None


def partition_needs_compacting(files: Sequence[PlannedFile], sort_order_id: int) -> bool:
    """False when every file is already sorted by the table's sort order (one compaction's
    output, nothing appended since)."""
    return any(p.iceberg.sort_order_id != sort_order_id for p in files)
