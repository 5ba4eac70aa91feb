"""Reading JSON Lines change files (plain or gzipped) into Arrow, one file at a time.

Each file is parsed on the calling thread's side of pyarrow's JSON reader. A pyarrow
dataset in ``JsonFileFormat`` is not used: its scan blocks the CPU pool's own threads on
nested futures, and with a pool as small as the machine's cores (2 in CI) every thread ends
up waiting and the query hangs for good.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.row import arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa

    from ddbtrail.lake.files import DataFile, Lake

# One line can hold two 400 KB images; pyarrow's JSON reader needs a line within a block.
BLOCK_BYTES: Final = 16 << 20


def gunzip(raw: bytes) -> bytes:
    """``raw`` decompressed if it is gzip."""
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def read_jsonl(lake: Lake, files: Sequence[DataFile], *,
               with_partitions: bool = False) -> pa.Table:
    """The rows of ``files`` with the row schema's data columns, in file order; with
    ``with_partitions``, ``table_name`` and ``dt`` too, taken from each file's partition
    (never from the line, which may lack them). Raises LakeError naming a file that is gone
    or is not JSON Lines rows."""
    import pyarrow as pa
    import pyarrow.json as pajson

    data = arrow_schema(include_partitions=False)
    schema = arrow_schema(include_partitions=True) if with_partitions else data
    parse = pajson.ParseOptions(explicit_schema=data, unexpected_field_behavior="ignore")
    read = pajson.ReadOptions(block_size=BLOCK_BYTES)
    parts = []
    for f in files:
        raw = lake.read_bytes(f.path)
        if raw is None:
            raise LakeError(f"{f.path} disappeared while it was read; run again")
        raw = gunzip(raw)
        if not raw.strip():
            continue
        try:
            table = pajson.read_json(io.BytesIO(raw), read_options=read, parse_options=parse)
        except pa.ArrowInvalid as exc:
            raise LakeError(f"{f.path}: not JSON Lines rows ({exc})") from exc
        table = table.select(data.names)
        if with_partitions:
            n = table.num_rows
            table = table.append_column("table_name", pa.array([f.table_name] * n, pa.string()))
            table = table.append_column("dt", pa.array([f.dt] * n, pa.string()))
        parts.append(table.cast(schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()
