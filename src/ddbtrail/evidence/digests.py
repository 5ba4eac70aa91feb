"""Signed, chained digests of the lake's data files, per table and hour (CloudTrail's log
file integrity validation, for a change lake), and their verification.

    <lake>/_ddbtrail/digests/table=<t>/dt=<yyyy-mm-dd>/hour=<hh>/<sequence>-<kind>.json

A *delivery* digest covers ``[start, end)`` and lists every data file of its table that
arrived in it (by the file's last-modified time): its path under the lake, SHA-256, size,
row count and ``row_hash``, an order-independent hash of its rows (the sum, modulo 2^256, of
the SHA-256 of each row's canonical JSON). A *compaction* digest lists the files a
compaction replaced, the files it wrote and the duplicate rows it dropped (event id and
row hash): the replaced files' row hashes minus the dropped rows' equal the written
files' row hashes, so the row multiset is proven to survive maintenance.

Each digest holds the previous digest's path and signature (the chain), the signer's key
id and algorithm, and its own ``signature`` over ``signing_string`` (the digest's SHA-256
without that field). ``verify_integrity`` checks signatures, the chain, that delivery
digests leave no gap in time, every file's hash and rows, and names every file modified,
deleted, added or forged. A holder of the signing key can forge a consistent history from
any point on (docs/evidence.md): as with CloudTrail, the proof is as good as the key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.row import DATA_COLUMNS
from ddbtrail.core.timefmt import iso_ms, parse_timestamp
from ddbtrail.evidence.signing import Signer, signature_valid
from ddbtrail.lake.files import DataFile, Lake
from ddbtrail.lake.replacements import Replacement, pending_replacements

if TYPE_CHECKING:
    import pyarrow.fs as pafs

DIGEST_VERSION: Final = 1
DIGESTS_DIR: Final = "digests"  # under the lake's _ddbtrail/
HOUR_MS: Final = 3_600_000
# Files land whole at their last-modified time, but an S3 multipart upload's is when it
# started: hours are sealed this long after they end (on S3; a folder seals up to now).
DEFAULT_SETTLE_SECONDS: Final = 900
_MOD: Final = 1 << 256
_DATA_NAMES: Final = tuple(c.name for c in DATA_COLUMNS)


# --------------------------------------------------------------------------- hashing


def row_digest(row: Mapping[str, Any]) -> int:
    """SHA-256 of a row's canonical JSON (data columns, sorted keys), as an integer. The
    same row hashes the same from Parquet or JSON Lines, before and after compaction."""
    text = json.dumps({name: row.get(name) for name in _DATA_NAMES}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")


def multiset_hash(digests: Iterable[int]) -> str:
    """Order-independent hash of row digests: their sum modulo 2^256, as 64 hex digits."""
    return f"{sum(digests) % _MOD:064x}"


def rows_of(path: str, body: bytes) -> list[dict[str, Any]]:
    """The rows of a data file's bytes (Parquet, JSON Lines, gzipped JSON Lines).
    LakeError names a file that cannot be read."""
    try:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            return list(pq.read_table(io.BytesIO(body)).to_pylist())
        from ddbtrail.lake.jsonl import gunzip

        return [json.loads(line) for line in gunzip(body).splitlines() if line.strip()]
    except Exception as exc:
        raise LakeError(f"{path}: cannot be read as data ({exc})") from exc


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a digest says of one data file, and the row digests it was computed from."""

    path: str  # relative to the lake root
    sha256: str
    size: int
    rows: int
    row_hash: str
    row_digests: tuple[tuple[str, int], ...] = ()  # (event_id, row digest), when kept

    def entry(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size,
                "rows": self.rows, "row_hash": self.row_hash}


def relative(lake: Lake, path: str) -> str:
    return path[len(lake.root) + 1:] if path.startswith(lake.root + "/") else path


def file_facts(lake: Lake, path: str, *, keep_rows: bool = False) -> FileFacts | None:
    """Hash a data file (``path`` on the lake's filesystem); None if it is gone."""
    body = lake.read_bytes(path)
    if body is None:
        return None
    rows = rows_of(path, body)
    digests = [(str(r.get("event_id")), row_digest(r)) for r in rows]
    return FileFacts(relative(lake, path), hashlib.sha256(body).hexdigest(), len(body),
                     len(rows), multiset_hash(d for _, d in digests),
                     tuple(digests) if keep_rows else ())


# --------------------------------------------------------------------------- documents


def canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def signing_string(doc: Mapping[str, Any]) -> bytes:
    """What is signed: a short text naming the digest and the SHA-256 of its canonical
    JSON without ``signature`` (short enough for KMS's RAW messages)."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return (f"ddbtrail-digest-v{DIGEST_VERSION}\n{doc.get('table')}\n{doc.get('sequence')}\n"
            f"{hashlib.sha256(canonical(body)).hexdigest()}").encode()


@dataclass(frozen=True, slots=True)
class Digest:
    """One digest file: where it is (relative to the lake) and what it says."""

    path: str
    doc: dict[str, Any]

    @property
    def sequence(self) -> int:
        return int(self.doc.get("sequence", -1))

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind"))

    @property
    def signature(self) -> str | None:
        sig = self.doc.get("signature")
        return sig if isinstance(sig, str) else None


def digest_path(table: str, at_ms: int, sequence: int, kind: str) -> str:
    """``_ddbtrail/digests/table=<t>/dt=<d>/hour=<hh>/<sequence>-<kind>.json`` (relative)."""
    when = datetime.fromtimestamp(at_ms / 1000, UTC)
    return (f"_ddbtrail/{DIGESTS_DIR}/table={table}/dt={when:%Y-%m-%d}/hour={when:%H}/"
            f"{sequence:08d}-{kind}.json")


def _listing(lake: Lake, path: str) -> list[pafs.FileInfo]:
    import pyarrow.fs as pafs

    return list(lake.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True,
                                                        recursive=True)))


def digest_tables(lake: Lake) -> list[str]:
    """Tables that have digests."""
    import pyarrow.fs as pafs

    base = lake.state_path(DIGESTS_DIR)
    infos = lake.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    return sorted(i.base_name.removeprefix("table=") for i in infos
                  if i.type == pafs.FileType.Directory and i.base_name.startswith("table="))


@dataclass(slots=True)
class Chain:
    """A table's digests in sequence order, and those that could not be read."""

    digests: list[Digest] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def last(self) -> Digest | None:
        return self.digests[-1] if self.digests else None

    def sealed_until(self) -> int | None:
        """End (epoch ms) of the last delivery digest."""
        ends = [parse_timestamp(d.doc["end"]) for d in self.digests if d.kind == "delivery"]
        return max(ends) if ends else None

    def live(self) -> dict[str, dict[str, Any]]:
        """Files the chain says the lake holds now: listed, not replaced since (by path)."""
        out: dict[str, dict[str, Any]] = {}
        for d in self.digests:
            for entry in d.doc.get("replaced") or ():
                out.pop(entry.get("path"), None)
            for entry in d.doc.get("files") or ():
                out[entry.get("path")] = entry
        return out


def load_chain(lake: Lake, table: str) -> Chain:
    """Every digest of ``table``, by sequence number (unreadable ones listed apart)."""
    import pyarrow.fs as pafs

    chain = Chain()
    for info in _listing(lake, lake.state_path(DIGESTS_DIR, f"table={table}")):
        if info.type != pafs.FileType.File or not info.base_name.endswith(".json"):
            continue
        rel = relative(lake, info.path)
        try:
            doc = json.loads(lake.read_bytes(info.path) or b"")
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("sequence"), int):
            chain.unreadable.append(rel)
            continue
        chain.digests.append(Digest(rel, doc))
    chain.digests.sort(key=lambda d: (d.sequence, d.path))
    return chain


def _write(lake: Lake, chain: Chain, signer: Signer, table: str, kind: str, at_ms: int,
           body: dict[str, Any]) -> Digest:
    last = chain.last
    sequence = last.sequence + 1 if last is not None else 0
    doc = {"digest_version": DIGEST_VERSION, "kind": kind, "table": table,
           "sequence": sequence, **body,
           "previous_digest": last.path if last is not None else None,
           "previous_signature": last.signature if last is not None else None,
           "key_id": signer.key_id, "algorithm": signer.algorithm}
    doc["signature"] = base64.b64encode(signer.sign(signing_string(doc))).decode()
    path = digest_path(table, at_ms, sequence, kind)
    lake.write_atomic(lake.path(path), canonical(doc) + b"\n")
    digest = Digest(path, doc)
    chain.digests.append(digest)
    return digest


# --------------------------------------------------------------------------- sealing


@dataclass(slots=True)
class SealReport:
    """What ``seal`` wrote: digest paths per table, files sealed, pending replacements
    completed (``lake.replacements``) and those that could not be (each named, with why)."""

    digests: dict[str, list[str]] = field(default_factory=dict)
    files: int = 0
    replacements: int = 0
    failed: list[Finding] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(len(v) for v in self.digests.values())


def seal_until(now_ms: int, *, settle_seconds: int, partial_hour: bool) -> int:
    """The end of what may be sealed at ``now_ms``: ``now - settle``, floored to the hour
    unless ``partial_hour``."""
    end = now_ms - settle_seconds * 1000
    return end if partial_hour else end - end % HOUR_MS


def seal(lake: Lake, *, signer: Signer, table: str | None = None,
         now: datetime | None = None, settle_seconds: int | None = None,
         partial_hour: bool = False) -> SealReport:
    """Write the delivery digests of every hour not yet sealed, for ``table`` or every table
    of the lake: closed hours ending ``settle_seconds`` before ``now`` [default: 900 on S3,
    0 for a folder]; with ``partial_hour`` also the current hour so far (local capture
    and ``ddbtrail verify --seal``: the next seal goes on from there). One digest per hour,
    empty ones too, so a missing digest is a gap in time. A file older than what is sealed
    already but in no digest is never sealed: ``verify_integrity`` names it as added.

    Then each pending replacement of a compaction (``lake.replacements``) whose replaced
    files are all sealed is completed: its compaction digest (``record_compaction``), the
    replaced files deleted, the note deleted; a crash between these is made good by the
    next seal. A replacement that would lose an event is kept, with its old files, and
    named in ``SealReport.failed``. Raises LakeError when the lake cannot be read or
    written."""
    settle = settle_seconds if settle_seconds is not None else (
        0 if lake.is_local else DEFAULT_SETTLE_SECONDS)
    now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    until = seal_until(now_ms, settle_seconds=settle, partial_hour=partial_hour)
    from ddbtrail.lake.tables import lake_tables

    tables = [table] if table is not None else sorted(set(lake_tables(lake))
                                                      | set(digest_tables(lake)))
    tables = sorted(set(tables) | {r.table_name for r in pending_replacements(lake, table)})
    report = SealReport()
    for name in tables:
        notes = pending_replacements(lake, name)
        chain = load_chain(lake, name)
        # A compaction's new files enter the chain by its compaction digest, never as a
        # delivery. (The compaction Lambda writes its note within its 15-minute timeout of
        # the files, so a file whose note is not yet listed is newer than ``until``.)
        written, files = _seal_table(lake, chain, name, signer, until,
                                     exclude={relative(lake, p) for r in notes
                                              for p in r.written})
        for note in notes:
            try:
                done, digest = _complete_replacement(lake, chain, signer, note)
            except LakeError as exc:
                report.failed.append(Finding(name, "replacement_refused",
                                             relative(lake, note.path), str(exc)))
                continue
            written += [digest] if digest is not None else []
            report.replacements += done
        if written:
            report.digests[name] = written
        report.files += files
    return report


def _complete_replacement(lake: Lake, chain: Chain, signer: Signer,
                          note: Replacement) -> tuple[bool, str | None]:
    """Complete one pending replacement (``seal``): the compaction digest unless the chain
    has it already, then the replaced files and the note deleted. Returns whether it was
    completed (not while a replaced file is still unsealed) and the digest written."""
    from ddbtrail.lake.iceberg import require_inside_root

    live = chain.live()
    replaced = {relative(lake, p) for p in note.replaced}
    recorded = (all(relative(lake, p) in live for p in note.written)
                and not replaced & live.keys())
    path = None
    if not recorded:
        sealed_until = chain.sealed_until()
        present = {relative(lake, f.path): f for f in lake.data_files(
            note.table_name, dt_from=note.dt, dt_to=note.dt)}
        if sealed_until is None or any(present[p].mtime_ms >= sealed_until
                                       for p in replaced if p in present):
            return False, None  # an old file is not sealed yet: a later seal completes it
        path = record_compaction(lake, signer=signer, table=note.table_name,
                                 replaced=note.replaced, written=note.written,
                                 chain=chain).path
    for p in note.replaced:
        try:
            lake.fs.delete_file(require_inside_root(lake, p, "delete"))
        except FileNotFoundError:
            continue  # deleted by a seal that stopped before the note
        except OSError as exc:
            raise LakeError(f"{p}: cannot be deleted ({exc})") from exc
    try:
        lake.fs.delete_file(note.path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise LakeError(f"{note.path}: cannot be deleted ({exc})") from exc
    return True, path


def _seal_table(lake: Lake, chain: Chain, table: str, signer: Signer, until: int, *,
                exclude: set[str]) -> tuple[list[str], int]:
    live = chain.live()
    start = chain.sealed_until()
    fresh = [f for f in lake.data_files(table)
             if relative(lake, f.path) not in live and relative(lake, f.path) not in exclude
             and f.mtime_ms < until and (start is None or f.mtime_ms >= start)]
    if start is None:
        if not fresh:
            return [], 0
        first = min(f.mtime_ms for f in fresh)
        start = first - first % HOUR_MS
    written: list[str] = []
    files = 0
    while start < until:
        end = min(until, start - start % HOUR_MS + HOUR_MS)
        batch = [f for f in fresh if f.mtime_ms < end]
        fresh = [f for f in fresh if f.mtime_ms >= end]
        digest = _write(lake, chain, signer, table, "delivery", end - 1, {
            "start": iso_ms(start), "end": iso_ms(end),
            "files": [_facts(lake, f).entry() for f in batch]})
        written.append(digest.path)
        files += len(batch)
        start = end
    return written, files


def _facts(lake: Lake, f: DataFile, *, keep_rows: bool = False) -> FileFacts:
    facts = file_facts(lake, f.path, keep_rows=keep_rows)
    if facts is None:
        raise LakeError(f"{f.path}: vanished while it was being sealed")
    return facts


def record_compaction(lake: Lake, *, signer: Signer, table: str, replaced: Sequence[str],
                      written: Sequence[str], now: datetime | None = None,
                      chain: Chain | None = None) -> Digest:
    """Write the digest of one partition's compaction, between writing its new files and
    deleting the old ones (``ddbtrail.lake.compact``'s ``on_replace``): the files
    ``replaced`` and ``written`` (paths on the lake's filesystem) and the duplicate rows
    dropped. Raises LakeError (and the old files must then stay) if the new files lack an
    event the old ones held, or hold a row the old ones did not: a compaction may only drop
    duplicates. ``chain``: the table's, when the caller has it loaded (it is extended)."""
    now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    old = [_facts(lake, DataFile(p, table, "", 0), keep_rows=True) for p in replaced]
    new = [_facts(lake, DataFile(p, table, "", 0), keep_rows=True) for p in written]
    before = Counter(r for f in old for r in f.row_digests)
    after = Counter(r for f in new for r in f.row_digests)
    invented = after - before
    if invented:
        event = next(iter(invented))[0]
        raise LakeError(f"compaction of {table}: row of event {event} is in no replaced file")
    dropped = before - after
    kept = {event for event, _ in after}
    for event, _ in dropped:
        if event not in kept:
            raise LakeError(f"compaction of {table}: event {event} would be lost")
    chain = chain if chain is not None else load_chain(lake, table)
    return _write(lake, chain, signer, table, "compaction", now_ms, {
        "at": iso_ms(now_ms),
        "replaced": [f.entry() for f in old],
        "files": [f.entry() for f in new],
        "removed_duplicates": [{"event_id": e, "row_hash": f"{d:064x}"}
                               for (e, d), n in sorted(dropped.items()) for _ in range(n)],
    })


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong, named: ``kind`` (file_modified, file_deleted, file_added,
    rows_changed, digest_missing, digest_invalid, chain_broken, ...), the table and
    what it concerns (a file, a digest, an event id)."""

    table: str
    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.table}: {self.kind}: {self.subject}: {self.detail}"


@dataclass(slots=True)
class IntegrityReport:
    """What ``verify_integrity`` checked and found, per table."""

    findings: list[Finding] = field(default_factory=list)
    digests: dict[str, int] = field(default_factory=dict)
    files_checked: dict[tuple[str, str], int] = field(default_factory=dict)  # (table, dt)
    files_pending: dict[str, list[str]] = field(default_factory=dict)  # not sealed yet

    @property
    def intact(self) -> bool:
        return not self.findings


def verify_integrity(lake: Lake, *, public_key: bytes, table: str | None = None,
                     since: str | None = None, now: datetime | None = None,
                     settle_seconds: int | None = None) -> IntegrityReport:
    """Check every digest's signature under ``public_key`` (PEM), the chain, that delivery
    digests follow each other without a gap, and every data file (of partitions from
    ``since``, a date, when given) against the digests: each live file present with its
    SHA-256, rows and row hash; each file present listed; each compaction keeping the row
    multiset. Files newer than the sealed hours (within the hour plus ``settle_seconds``
    of ``now``) are pending, not findings. Raises LakeError when the lake cannot be read."""
    from ddbtrail.lake.tables import lake_tables

    settle = settle_seconds if settle_seconds is not None else (
        0 if lake.is_local else DEFAULT_SETTLE_SECONDS)
    now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    report = IntegrityReport()
    tables = [table] if table is not None else sorted(set(lake_tables(lake))
                                                      | set(digest_tables(lake)))
    for name in tables:
        _verify_table(lake, name, public_key, since, now_ms - settle * 1000 - HOUR_MS, report)
    return report


def _verify_table(lake: Lake, table: str, public_key: bytes, since: str | None,
                  pending_after: int, report: IntegrityReport) -> None:
    found = report.findings.append
    chain = load_chain(lake, table)
    report.digests[table] = len(chain.digests)
    for path in chain.unreadable:
        found(Finding(table, "digest_invalid", path, "not a readable digest (edited)"))
    previous: Digest | None = None
    previous_end: int | None = None
    sealed: dict[str, dict[str, Any]] = {}
    for d in chain.digests:
        _check_digest(d, table, public_key, found)
        if previous is None and d.sequence != 0:
            found(Finding(table, "digest_missing", d.path,
                          f"the chain starts at sequence {d.sequence}, not 0"))
        if previous is not None:
            if d.sequence != previous.sequence + 1:
                found(Finding(table, "digest_missing", d.path,
                              f"sequences {previous.sequence + 1}..{d.sequence - 1} are "
                              f"missing after {previous.path}"))
            if (d.doc.get("previous_signature") != previous.signature
                    or d.doc.get("previous_digest") != previous.path):
                found(Finding(table, "chain_broken", d.path,
                              f"does not carry the signature of {previous.path}"))
        if d.kind == "delivery":
            start = parse_timestamp(str(d.doc.get("start")))
            if previous_end is not None and start != previous_end:
                found(Finding(table, "digest_missing", d.path,
                              f"no digest covers {iso_ms(previous_end)} to {iso_ms(start)}"))
            previous_end = parse_timestamp(str(d.doc.get("end")))
        else:
            _check_compaction(d, table, sealed, found)
        for entry in d.doc.get("replaced") or ():
            sealed.pop(entry.get("path"), None)
        for entry in d.doc.get("files") or ():
            sealed[entry.get("path")] = entry
        previous = d
    sealed_until = chain.sealed_until()
    present = {relative(lake, f.path): f for f in lake.data_files(table, dt_from=since)}
    for path, entry in sorted(sealed.items()):
        dt = _dt_of(path)
        if since is not None and dt is not None and dt < since:
            continue
        if path not in present:
            found(Finding(table, "file_deleted", path,
                          f"listed in a digest ({entry.get('rows')} rows) but gone"))
            continue
        key = (table, dt or "")
        report.files_checked[key] = report.files_checked.get(key, 0) + 1
        facts = file_facts(lake, present[path].path)
        if facts is None:
            found(Finding(table, "file_deleted", path, "gone while being checked"))
        elif facts.sha256 != entry.get("sha256"):
            rows = (f"{facts.rows} rows, digest says {entry.get('rows')}"
                    if facts.rows != entry.get("rows") else "row values differ"
                    if facts.row_hash != entry.get("row_hash") else "bytes differ")
            found(Finding(table, "file_modified", path, f"SHA-256 differs ({rows})"))
    for path, f in sorted(present.items()):
        if path in sealed:
            continue
        if sealed_until is not None and f.mtime_ms < sealed_until:
            found(Finding(table, "file_added", path,
                          "in no digest though older than the sealed hours (added or forged)"))
        elif f.mtime_ms < pending_after:
            found(Finding(table, "digest_missing", path, "delivered over an hour ago and in "
                          "no digest (its digest deleted, or sealing stopped)"))
        else:
            report.files_pending.setdefault(table, []).append(path)


def _dt_of(path: str) -> str | None:
    for part in path.split("/"):
        if part.startswith("dt="):
            return part[3:]
    return None


def _check_digest(d: Digest, table: str, public_key: bytes, found: Any) -> None:
    sig = d.signature
    ok = False
    if sig is not None and d.doc.get("table") == table:
        try:
            ok = signature_valid(public_key, str(d.doc.get("algorithm")), signing_string(d.doc),
                                 base64.b64decode(sig, validate=True))
        except ValueError:
            ok = False
    if not ok:
        found(Finding(table, "digest_invalid", d.path,
                      "signature does not verify under the public key (edited or forged)"))


def _check_compaction(d: Digest, table: str, sealed: Mapping[str, Mapping[str, Any]],
                      found: Any) -> None:
    replaced = d.doc.get("replaced") or []
    for entry in replaced:
        before = sealed.get(entry.get("path"))
        if before is None or before.get("sha256") != entry.get("sha256"):
            found(Finding(table, "rows_changed", d.path,
                          f"replaced {entry.get('path')}, which no earlier digest lists as is"))
    dropped = d.doc.get("removed_duplicates") or []
    total = (sum(int(str(e.get("row_hash")), 16) for e in replaced)
             - sum(int(str(e.get("row_hash")), 16) for e in dropped))
    written = sum(int(str(e.get("row_hash")), 16) for e in d.doc.get("files") or ())
    rows = (sum(int(e.get("rows", 0)) for e in replaced) - len(dropped)
            - sum(int(e.get("rows", 0)) for e in d.doc.get("files") or ()))
    if (total - written) % _MOD != 0 or rows != 0:
        found(Finding(table, "rows_changed", d.path,
                      "the written files' rows are not the replaced files' rows minus the "
                      "duplicates removed"))
