"""The lake: a local folder or an ``s3://`` URI, laid out as Firehose writes it.

    <lake>/table_name=<table>/dt=<YYYY-MM-DD>/<file>.parquet | .jsonl | .jsonl.gz
    <lake>/snapshots/table_name=<table>/snapshot_date=<YYYY-MM-DD>/<file>.parquet
                                state snapshots (ddbtrail.query.snapshots); a second dataset
    <lake>/_ddbtrail/...        ddbtrail's own state (checkpoints); readers skip it

Files go through pyarrow filesystems. pyarrow ignores AWS_ENDPOINT_URL, so the endpoint
is passed explicitly as ``endpoint_override``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.row import SNAPSHOT_DIR, partition_path

if TYPE_CHECKING:
    import pyarrow.fs as pafs

DEFAULT_LAKE: Final = "./ddbtrail-lake"
STATE_DIR: Final = "_ddbtrail"
DATA_SUFFIXES: Final = (".parquet", ".jsonl", ".jsonl.gz")


def default_lake() -> str:
    """DDBTRAIL_LAKE, or ./ddbtrail-lake."""
    return os.environ.get("DDBTRAIL_LAKE") or DEFAULT_LAKE


@dataclass(frozen=True, slots=True)
class DataFile:
    """One data file of the lake, with the partition its path names."""

    path: str
    table_name: str
    dt: str
    size: int
    mtime_ms: int = 0  # last modified, epoch ms; 0 when the filesystem does not say

    @property
    def format(self) -> str:
        return "parquet" if self.path.endswith(".parquet") else "jsonl"


@dataclass(frozen=True)
class Lake:
    """A lake root on a pyarrow filesystem. Build with ``Lake.open``."""

    uri: str
    fs: pafs.FileSystem
    root: str  # path on ``fs``, no trailing slash

    @classmethod
    def open(cls, uri: str | None = None, *, endpoint_url: str | None = None,
             region: str | None = None, profile: str | None = None) -> Lake:
        """Resolve a lake URI (local path or s3://bucket/prefix). Does not touch storage.

        ``profile`` names an AWS CLI profile whose credentials (and region, unless given)
        an s3:// lake uses; botocore's ProfileNotFound if there is no such profile.
        """
        import pyarrow.fs as pafs

        uri = uri or default_lake()
        parsed = urlparse(uri)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise LakeError(f"lake {uri!r}: an s3:// lake needs a bucket")
            kwargs: dict[str, object] = {}
            if profile:
                kwargs.update(_profile_credentials(profile))
                region = region or str(kwargs.pop("region", "") or "")
            region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            if region:
                kwargs["region"] = region
            if endpoint_url:
                ep = urlparse(endpoint_url)
                kwargs["endpoint_override"] = ep.netloc or ep.path
                kwargs["scheme"] = ep.scheme or "http"
                # Local endpoints (moto) want path-style addressing.
                kwargs["force_virtual_addressing"] = False
            fs = pafs.S3FileSystem(**kwargs)  # type: ignore[arg-type]
            root = (parsed.netloc + "/" + parsed.path.strip("/")).rstrip("/")
            return cls(uri=uri.rstrip("/"), fs=fs, root=root)
        if parsed.scheme not in ("", "file"):
            raise LakeError(f"lake {uri!r}: only local paths and s3:// URIs are supported")
        path = Path(parsed.path if parsed.scheme == "file" else uri).expanduser().resolve()
        return cls(uri=str(path), fs=pafs.LocalFileSystem(), root=str(path))

    @property
    def is_local(self) -> bool:
        return self.uri.startswith("/")

    def path(self, *parts: str) -> str:
        """A path under the root, on ``fs``."""
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def partition(self, table_name: str, dt: str) -> str:
        """The folder of one partition, on ``fs``."""
        return self.path(partition_path(table_name, dt))

    def state_path(self, *parts: str) -> str:
        """A path under ``_ddbtrail/`` for ddbtrail's own state."""
        return self.path(STATE_DIR, *parts)

    def new_file_name(self, stream: str, suffix: str, when: str) -> str:
        """A Firehose-like object name: ``<stream>-<when>-<uuid><suffix>``."""
        return f"{stream}-{when}-{uuid.uuid4().hex}{suffix}"

    def exists(self) -> bool:
        import pyarrow.fs as pafs

        try:
            return bool(self.fs.get_file_info(self.root).type != pafs.FileType.NotFound)
        except OSError as exc:
            raise LakeError(f"lake {self.uri}: cannot be read ({exc})") from exc

    def data_files(self, table_name: str | None = None, dt_from: str | None = None,
                   dt_to: str | None = None) -> list[DataFile]:
        """Data files, pruned by table and by an inclusive dt range, sorted by path.

        Pruning reads folder names only, so a key lookup lists just its partitions.
        """
        return sorted(self._walk(table_name, dt_from, dt_to), key=lambda f: f.path)

    def _walk(self, table_name: str | None, dt_from: str | None,
              dt_to: str | None) -> Iterator[DataFile]:
        import pyarrow.fs as pafs

        try:
            if table_name is not None:
                table_dirs = [self.path(f"table_name={table_name}")]
            else:
                table_dirs = [i.path for i in self._list(self.root)
                              if i.type == pafs.FileType.Directory
                              and i.base_name.startswith("table_name=")]
            for tdir in table_dirs:
                table = tdir.rsplit("table_name=", 1)[1]
                for ddir in self._list(tdir):
                    if ddir.type != pafs.FileType.Directory or not ddir.base_name.startswith("dt="):
                        continue
                    dt = ddir.base_name[3:]
                    if (dt_from and dt < dt_from) or (dt_to and dt > dt_to):
                        continue
                    for f in self._list(ddir.path):
                        if (f.type == pafs.FileType.File and f.base_name.endswith(DATA_SUFFIXES)
                                and not f.base_name.startswith((".", "_"))):
                            yield DataFile(f.path, table, dt, f.size or 0, _mtime_ms(f))
        except OSError as exc:
            raise LakeError(f"lake {self.uri}: cannot be read ({exc})") from exc

    def snapshot_dates(self, table_name: str) -> list[str]:
        """The dates of a table's snapshot partitions, oldest first (folder names only)."""
        try:
            return sorted(date for date, _ in self._snapshot_dirs(table_name))
        except OSError as exc:
            raise LakeError(f"lake {self.uri}: cannot list snapshots ({exc})") from exc

    def _snapshot_dirs(self, table_name: str) -> Iterator[tuple[str, str]]:
        import pyarrow.fs as pafs

        for ddir in self._list(self.path(SNAPSHOT_DIR, f"table_name={table_name}")):
            date = ddir.base_name.removeprefix("snapshot_date=")
            if ddir.type == pafs.FileType.Directory and date != ddir.base_name:
                yield date, ddir.path

    def snapshot_files(self, table_name: str | None = None,
                       snapshot_date: str | None = None) -> list[DataFile]:
        """Parquet files of the state snapshots (``dt`` holds the snapshot date), pruned
        by table and date, sorted by path. They live under ``snapshots/``, apart from the
        change partitions, so no reader of changes sees them."""
        import pyarrow.fs as pafs

        out = []
        try:
            base = self.path(SNAPSHOT_DIR)
            tables = [table_name] if table_name is not None else [
                i.base_name.removeprefix("table_name=") for i in self._list(base)
                if i.type == pafs.FileType.Directory and i.base_name.startswith("table_name=")]
            for table in tables:
                for date, path in self._snapshot_dirs(table):
                    if snapshot_date is not None and date != snapshot_date:
                        continue
                    for f in self._list(path):
                        if (f.type == pafs.FileType.File and f.base_name.endswith(".parquet")
                                and not f.base_name.startswith((".", "_"))):
                            out.append(DataFile(f.path, table, date, f.size or 0, _mtime_ms(f)))
        except OSError as exc:
            raise LakeError(f"lake {self.uri}: cannot list snapshots ({exc})") from exc
        return sorted(out, key=lambda f: f.path)

    def _list(self, path: str) -> list[pafs.FileInfo]:
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return list(info)

    def write_atomic(self, path: str, data: bytes) -> None:
        """Write a whole object so readers see all of it or nothing.

        S3 PUTs are atomic; locally the bytes go to a hidden temp file and are renamed.
        """
        parent = path.rsplit("/", 1)[0]
        try:
            self.fs.create_dir(parent, recursive=True)
            if self.is_local:
                # fsync before the rename (and the folder after it), so that a checkpoint
                # can never reach the disk before the data file it covers.
                tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
                with self.fs.open_output_stream(tmp) as out:
                    out.write(data)
                _fsync(tmp)
                os.replace(tmp, path)
                _fsync(parent)
            else:
                # Bytes as given: pyarrow would gzip a ".gz" path a second time.
                with self.fs.open_output_stream(path, compression=None) as out:
                    out.write(data)
        except OSError as exc:
            raise LakeError(f"lake {self.uri}: cannot write {path} ({exc})") from exc

    def read_bytes(self, path: str) -> bytes | None:
        """The whole object as stored (a ``.gz`` stays compressed), or None if it does not
        exist."""
        try:
            with self.fs.open_input_stream(path, compression=None) as inp:
                return bytes(inp.read())
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "not found" in str(exc).lower() or "no such" in str(exc).lower():
                return None
            raise LakeError(f"lake {self.uri}: cannot read {path} ({exc})") from exc


def _profile_credentials(profile: str) -> dict[str, object]:
    """pyarrow S3FileSystem arguments from an AWS CLI profile (pyarrow reads no profile
    it is not told of); includes ``region`` when the profile sets one."""
    import boto3

    return s3_arguments(boto3.Session(profile_name=profile))


def s3_arguments(session: Any) -> dict[str, object]:
    """pyarrow S3FileSystem arguments from a boto3 session's credentials and region
    (pyarrow knows no sessions)."""
    kwargs: dict[str, object] = {}
    creds = session.get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        kwargs.update(access_key=frozen.access_key, secret_key=frozen.secret_key)
        if frozen.token:
            kwargs["session_token"] = frozen.token
    if session.region_name:
        kwargs["region"] = session.region_name
    return kwargs


def _mtime_ms(info: pafs.FileInfo) -> int:
    when = info.mtime
    return int(when.timestamp() * 1000) if when is not None else 0


def _fsync(path: str) -> None:
    """Flush a file's or a folder's data to disk (by path: pyarrow streams have no fd)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
