"""Two honest ways to count the bytes a lookup reads.

* ``CountingFS``: a pyarrow filesystem wrapping another one; every byte returned by a
  read on a file opened through it is counted (what S3 would send, what Athena bills as
  "scanned" for the same reads). Python-level, so it slows reads: use it for bytes, not
  for latency.
* ``rchar()``: the process's ``rchar`` from /proc/self/io, all threads: every byte any
  read syscall returned (page-cache hits included). It sees readers that bypass pyarrow
  (DuckDB's own JSON/Parquet readers), so it measures the naive full scan too.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs


def rchar() -> int:
    """Bytes returned by read syscalls of this process so far (Linux)."""
    with open("/proc/self/io", encoding="ascii") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


class _Counter:
    def __init__(self) -> None:
        self.bytes = 0
        self.opens: list[str] = []  # paths opened for reading, in order
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes += n


class _CountingFile:
    """A read-only file-like object that counts what it returns."""

    def __init__(self, inner: pa.NativeFile, counter: _Counter) -> None:
        self._inner = inner
        self._counter = counter
        self.closed = False
        self.mode = "rb"

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read() if n is None or n < 0 else self._inner.read(n)
        self._counter.add(len(data))
        return bytes(data)

    def seek(self, pos: int, whence: int = 0) -> int:
        return int(self._inner.seek(pos, whence))

    def tell(self) -> int:
        return int(self._inner.tell())

    def size(self) -> int:
        return int(self._inner.size())

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._inner.close()


class _Handler(pafs.FileSystemHandler):  # type: ignore[misc]
    def __init__(self, inner: pafs.FileSystem, counter: _Counter) -> None:
        self.inner = inner
        self.counter = counter

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Handler) and other.inner == self.inner

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def get_type_name(self) -> str:
        return "counting+" + self.inner.type_name

    def normalize_path(self, path: str) -> str:
        return str(self.inner.normalize_path(path))

    def get_file_info(self, paths: list[str]) -> Any:
        return self.inner.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> Any:
        return self.inner.get_file_info(selector)

    def open_input_file(self, path: str) -> pa.NativeFile:
        with self.counter._lock:
            self.counter.opens.append(path)
        return pa.PythonFile(_CountingFile(self.inner.open_input_file(path), self.counter),
                             mode="r")

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self.open_input_file(path)

    # Writes are not counted and not needed by readers.
    def create_dir(self, path: str, recursive: bool) -> None:
        self.inner.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.inner.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.inner.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        self.inner.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.inner.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.inner.copy_file(src, dest)

    def open_output_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        return self.inner.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        return self.inner.open_append_stream(path, metadata=metadata)


class CountingFS:
    """``.fs`` is a pyarrow filesystem over ``inner`` that counts bytes read."""

    def __init__(self, inner: pafs.FileSystem) -> None:
        self._counter = _Counter()
        self.fs = pafs.PyFileSystem(_Handler(inner, self._counter))

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes

    @property
    def files_opened(self) -> int:
        return len(self._counter.opens)

    @property
    def opened(self) -> list[str]:
        """The paths opened for reading, in order."""
        return list(self._counter.opens)

    def reset(self) -> None:
        self._counter.bytes = 0
        self._counter.opens = []
