"""Pending replacements: a compaction whose old files wait for the signed digest.

On a lake sealed by the stack's digest function (evidence on, docs/evidence.md) only that
function signs, so the compaction Lambda cannot write the compaction digest that must come
between writing a partition's new files and deleting its old ones. It writes the new files
and then, instead of deleting, this note:

    <lake>/_ddbtrail/replacements/table=<t>/dt=<d>/<run>.json
    {"table_name": t, "dt": d, "replaced": [...], "written": [...]}   (paths under the lake)

The hourly seal (``ddbtrail.evidence.digests.seal``, one at a time) completes each note: the
compaction digest, then the old files deleted, then the note. Until then readers see old and
new files together (deduplicated by event_id), and compaction leaves the partition alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ddbtrail.core.exceptions import LakeError
from ddbtrail.lake.files import Lake

REPLACEMENTS_DIR: Final = "replacements"  # under the lake's _ddbtrail/


@dataclass(frozen=True, slots=True)
class Replacement:
    """One pending note: where it is and the files (paths on the lake's filesystem) it
    replaces and wrote."""

    path: str
    table_name: str
    dt: str
    replaced: tuple[str, ...]
    written: tuple[str, ...]


def _relative(lake: Lake, path: str) -> str:
    return path[len(lake.root) + 1:] if path.startswith(lake.root + "/") else path


def write_replacement(lake: Lake, table_name: str, dt: str, *, replaced: Sequence[str],
                      written: Sequence[str]) -> str:
    """Write the note of one partition's compaction (paths on the lake's filesystem);
    its path."""
    path = lake.state_path(REPLACEMENTS_DIR, f"table={table_name}", f"dt={dt}",
                           f"{uuid.uuid4().hex}.json")
    doc = {"table_name": table_name, "dt": dt,
           "replaced": [_relative(lake, p) for p in replaced],
           "written": [_relative(lake, p) for p in written]}
    lake.write_atomic(path, json.dumps(doc, sort_keys=True).encode() + b"\n")
    return path


def pending_replacements(lake: Lake, table_name: str | None = None) -> list[Replacement]:
    """Every pending note (of ``table_name``, if given), oldest name first within a
    partition. LakeError names a note that cannot be read: it is never skipped."""
    import pyarrow.fs as pafs

    base = lake.state_path(REPLACEMENTS_DIR, *([f"table={table_name}"] if table_name else []))
    try:
        infos = lake.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True,
                                                        recursive=True))
    except OSError as exc:
        raise LakeError(f"lake {lake.uri}: cannot list {base} ({exc})") from exc
    out = []
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File or not info.base_name.endswith(".json"):
            continue
        body = lake.read_bytes(info.path)
        if body is None:
            continue  # completed meanwhile
        try:
            doc = json.loads(body)
            out.append(Replacement(info.path, str(doc["table_name"]), str(doc["dt"]),
                                   tuple(lake.path(p) for p in doc["replaced"]),
                                   tuple(lake.path(p) for p in doc["written"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise LakeError(f"{info.path}: not a readable replacement note ({exc})") from exc
    return out


def pending_partitions(lake: Lake, table_name: str | None = None) -> set[tuple[str, str]]:
    """(table, dt) of every partition with a pending note: not to be compacted again."""
    return {(r.table_name, r.dt) for r in pending_replacements(lake, table_name)}
