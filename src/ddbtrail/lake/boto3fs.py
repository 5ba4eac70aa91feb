"""An ``s3://`` lake read and written through a boto3 S3 client instead of Arrow's own S3.

Why: the AWS SDK for pandas Lambda layer (the managed way to get pyarrow into a Lambda,
docs/deploy.md) builds Arrow without S3 support, so ``pyarrow.fs.S3FileSystem`` raises
there. ``Lake.open`` keeps Arrow's filesystem everywhere else; the compaction Lambda opens
its lake with ``boto3_lake``. Only what the lake's readers and compaction use is
implemented: listing, whole-object reads, whole-object writes (one PUT on close, so a
reader sees all of an object or nothing) and deletes.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ddbtrail.core.exceptions import LakeError
from ddbtrail.lake.files import Lake

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs


def boto3_lake(uri: str, client: Any) -> Lake:
    """The ``s3://bucket/prefix`` lake on ``client`` (a boto3 S3 client). Touches nothing."""
    import pyarrow.fs as pafs

    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise LakeError(f"lake {uri!r}: expected s3://bucket/prefix")
    root = (parsed.netloc + "/" + parsed.path.strip("/")).rstrip("/")
    return Lake(uri=uri.rstrip("/"), fs=pafs.PyFileSystem(_handler(client)), root=root)


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.strip("/").partition("/")
    return bucket, key


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def _handler(client: Any) -> pafs.FileSystemHandler:
    import pyarrow as pa
    import pyarrow.fs as pafs

    class _Upload(io.BytesIO):
        """Bytes written are PUT as one object when the stream closes."""

        def __init__(self, bucket: str, key: str) -> None:
            super().__init__()
            self._target = (bucket, key)

        def close(self) -> None:
            if not self.closed:
                bucket, key = self._target
                client.put_object(Bucket=bucket, Key=key, Body=self.getvalue())
            super().close()

    class Handler(pafs.FileSystemHandler):  # type: ignore[misc]
        def get_type_name(self) -> str:
            return "ddbtrail-boto3-s3"

        def equals(self, other: Any) -> bool:
            return other is self

        def normalize_path(self, path: str) -> str:
            return path

        def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
            return [self._info(p) for p in paths]

        def _info(self, path: str) -> pafs.FileInfo:
            bucket, key = _split(path)
            if key:
                try:
                    head = client.head_object(Bucket=bucket, Key=key)
                except Exception as exc:
                    if not _missing(exc):
                        raise OSError(f"s3://{path}: {exc}") from exc
                else:
                    return pafs.FileInfo(path, pafs.FileType.File, size=head["ContentLength"],
                                         mtime=head["LastModified"])
            prefix = f"{key}/" if key else ""
            page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
            kind = pafs.FileType.Directory if page.get("KeyCount", 0) or not key \
                else pafs.FileType.NotFound
            return pafs.FileInfo(path, kind)

        def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
            bucket, key = _split(selector.base_dir)
            prefix = f"{key}/" if key else ""
            args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if not selector.recursive:
                args["Delimiter"] = "/"
            out = []
            for page in client.get_paginator("list_objects_v2").paginate(**args):
                for common in page.get("CommonPrefixes", []):
                    out.append(pafs.FileInfo(f"{bucket}/{common['Prefix'].rstrip('/')}",
                                             pafs.FileType.Directory))
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):
                        continue  # a console-made folder marker
                    out.append(pafs.FileInfo(f"{bucket}/{obj['Key']}", pafs.FileType.File,
                                             size=obj["Size"], mtime=obj["LastModified"]))
            if not out and not selector.allow_not_found and key:
                raise FileNotFoundError(f"s3://{selector.base_dir}")
            return out

        def create_dir(self, path: str, recursive: bool) -> None:
            """S3 has no folders: a key's prefix exists once an object is under it."""

        def delete_file(self, path: str) -> None:
            bucket, key = _split(path)
            client.delete_object(Bucket=bucket, Key=key)

        def open_input_stream(self, path: str) -> pa.NativeFile:
            return self.open_input_file(path)

        def open_input_file(self, path: str) -> pa.NativeFile:
            # Whole objects: compaction reads every byte of every file it opens anyway.
            bucket, key = _split(path)
            try:
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                if _missing(exc):
                    raise FileNotFoundError(f"s3://{path}") from exc
                raise OSError(f"s3://{path}: {exc}") from exc
            return pa.BufferReader(body)

        def open_output_stream(self, path: str, metadata: Any) -> pa.NativeFile:
            return pa.PythonFile(_Upload(*_split(path)), mode="w")

        def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("not used by ddbtrail's lake")

        delete_dir = delete_dir_contents = delete_root_dir_contents = _unsupported
        move = copy_file = open_append_stream = _unsupported

    return Handler()
