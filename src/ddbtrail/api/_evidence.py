"""Evidence: seal the lake with signed digests, and verify that it is complete and intact."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddbtrail.api._args import Instant, instant_ms
from ddbtrail.api._lake import Lake
from ddbtrail.api._read import _open
from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.core.timefmt import iso_ms

if TYPE_CHECKING:
    from ddbtrail.evidence.digests import Finding, SealReport
    from ddbtrail.evidence.signing import Signer

RECONCILE = "reconcile_receipts"
RECONCILE_DETAIL = "reconcile_receipts_detail"


def _is_kms(key: str) -> bool:
    return key.startswith(("arn:aws:kms:", "alias/")) or (
        len(key) == 36 and key.count("-") == 4)


def signer_for(lake: Lake, key: str | Path | None = None, *,
               boto3_session: Any = None) -> Signer:
    """The signer ``key`` names: a KMS key (ARN, alias/..., key id) through
    ``boto3_session`` (default: the lake's), or an Ed25519 key file. Without ``key``, a
    folder lake uses the local key file (``evidence.signing.default_key_path``), made on
    first use; an S3 lake needs ``key``. InvalidArgument names ``key``."""
    from ddbtrail.evidence.signing import Ed25519FileSigner, KmsSigner, default_key_path

    if key is not None and _is_kms(str(key)):
        return KmsSigner(str(key), boto3_session=boto3_session or lake.boto3_session)
    if key is None and not lake.files.is_local:
        raise InvalidArgument("key", None, "an S3 lake is sealed with a KMS key (its ARN or "
                              "alias) or a key file; give one")
    path = Path(key).expanduser() if key is not None else default_key_path()
    if key is not None and not path.exists():
        raise InvalidArgument("key", str(key), "no such key file")
    return Ed25519FileSigner(path, create=key is None)


def _public_key(lake: Lake, public_key: str | Path | bytes | None, signer: Signer | None,
                boto3_session: Any) -> bytes:
    from ddbtrail.evidence.signing import (
        Ed25519FileSigner,
        KmsSigner,
        default_key_path,
        public_key_pem,
        public_path,
    )

    if isinstance(public_key, bytes):
        return public_key_pem(public_key)
    if public_key is not None and _is_kms(str(public_key)):
        return KmsSigner(str(public_key),
                         boto3_session=boto3_session or lake.boto3_session).public_pem()
    if public_key is not None:
        path = Path(public_key).expanduser()
        if not path.is_file():
            raise InvalidArgument("public_key", str(public_key), "no such file")
        try:
            return public_key_pem(path.read_bytes())
        except ValueError as exc:
            raise InvalidArgument("public_key", str(public_key), "not a PEM public key") from exc
    if isinstance(signer, Ed25519FileSigner):
        return signer.public_pem
    if isinstance(signer, KmsSigner):
        return signer.public_pem()
    local = public_path(default_key_path())
    if local.is_file():
        return public_key_pem(local.read_bytes())
    raise InvalidArgument("public_key", None, "give the public key (PEM) the digests were "
                          "signed with")


def seal(lake: Lake | str, *, key: str | Path | None = None, table: str | None = None,
         partial_hour: bool = True, signer: Signer | None = None,
         boto3_session: Any = None) -> SealReport:
    """Write signed digests of every data file delivered since the last one, per table and
    hour (``ddbtrail.evidence.digests``). ``partial_hour`` seals the current hour so far
    (the next seal goes on from there); False seals closed hours only, as the stack's
    hourly schedule does. ``key``/``signer``: see ``signer_for``.

    >>> dt.seal(lake).written
    """
    from ddbtrail.evidence.digests import seal as seal_digests

    lake = _open(lake)
    signer = signer or signer_for(lake, key, boto3_session=boto3_session)
    return seal_digests(lake.files, signer=signer, table=table, partial_hour=partial_hour)


def replacement_digests(lake: Lake, *, table: str | None = None, key: str | Path | None = None,
                        boto3_session: Any = None) -> Callable[[Any, Any], None] | None:
    """For a sealed lake (one with digests): seal it up to now, then return the
    ``on_replace`` hook of ``ddbtrail.lake.compact.compact`` that writes each replacement's
    signed digest before the old files go. None for a lake that is not sealed."""
    from ddbtrail.evidence.digests import digest_tables, record_compaction
    from ddbtrail.evidence.digests import seal as seal_digests

    if not digest_tables(lake.files):
        return None
    signer = signer_for(lake, key, boto3_session=boto3_session)
    seal_digests(lake.files, signer=signer, table=table, partial_hour=True)

    def on_replace(part: Any, result: Any) -> None:
        record_compaction(lake.files, signer=signer, table=part.table_name,
                          replaced=[f.path for f in part.files], written=result.new_files)

    return on_replace


@dataclass(frozen=True, slots=True)
class DayCheck:
    """One table and day: changes received and in the lake (by day received or first
    ingested), the gaps between them, and data files checked (by partition day)."""

    table: str
    day: str
    received: int = 0
    in_lake: int = 0
    received_not_in_lake: int = 0
    in_lake_without_receipt: int = 0
    files_checked: int = 0

    @property
    def complete(self) -> bool:
        return not (self.received_not_in_lake or self.in_lake_without_receipt)


@dataclass
class VerifyReport:
    """What ``verify`` checked (one ``DayCheck`` per table and day) and every finding, each
    naming the table and the file, digest or event id at fault. ``ok``: complete and
    intact. ``pending``: files newer than the last digest, not yet sealed (not a finding)."""

    days: list[DayCheck]
    findings: list[Finding]
    digests: dict[str, int]
    pending: dict[str, list[str]]
    window: tuple[str, str] | None
    sealed: SealReport | None = None
    tables: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not any(f.kind in _COMPLETENESS for f in self.findings)

    @property
    def intact(self) -> bool:
        return not any(f.kind not in _COMPLETENESS for f in self.findings)

    @property
    def ok(self) -> bool:
        return not self.findings


_COMPLETENESS = frozenset({"received_not_in_lake", "in_lake_without_receipt", "no_receipts"})


def verify(lake: Lake | str, *, public_key: str | Path | bytes | None = None,
           table: str | None = None, since: Instant | None = None, seal: bool = False,
           key: str | Path | None = None, settle_seconds: int | None = None,
           boto3_session: Any = None) -> VerifyReport:
    """Prove the lake complete and intact, per table and day.

    Completeness: the saved query ``reconcile_receipts`` (and its detail) on DuckDB,
    the same SQL Athena runs: every change a receipt names is in the lake, every row of the
    lake is named by a receipt, from ``since`` (default: each table's first receipt) to
    ``settle_seconds`` ago [default: 900 on S3, Firehose's buffer; 0 for a folder].
    Integrity: every digest's signature under ``public_key`` (a PEM file or bytes, or a
    KMS key whose public half is fetched; default: the local key's), the chain, and every
    data file's SHA-256 and rows (``evidence.digests.verify_integrity``). With ``seal``,
    digests are written first (``seal``; ``key``). Read-only otherwise: an auditor needs
    read access to the lake and the public key. Raises InvalidArgument naming
    ``public_key``, ``key`` or ``since``; LakeError when the lake cannot be read.

    >>> dt.verify(lake, public_key="signing-key.pub.pem").ok
    """
    from ddbtrail.evidence.digests import Finding, digest_tables, verify_integrity
    from ddbtrail.evidence.receipts import read_receipts
    from ddbtrail.lake.tables import lake_tables, require_table

    lake = _open(lake)
    files = lake.files
    now_ms = time.time_ns() // 1_000_000
    since_ms = instant_ms(since, "since") if since is not None else None
    if table is not None:
        require_table(files, table)
    signer = signer_for(lake, key, boto3_session=boto3_session) if seal else None
    sealed = None
    if signer is not None:
        from ddbtrail.evidence.digests import seal as seal_digests

        sealed = seal_digests(files, signer=signer, table=table, partial_hour=True,
                              now=datetime.fromtimestamp(now_ms / 1000, UTC))
    pem = _public_key(lake, public_key, signer, boto3_session)
    settle = settle_seconds if settle_seconds is not None else (0 if files.is_local else 900)
    integrity = verify_integrity(files, public_key=pem, table=table,
                                 since=iso_ms(since_ms)[:10] if since_ms is not None else None,
                                 now=datetime.fromtimestamp(now_ms / 1000, UTC),
                                 settle_seconds=settle)
    # A compaction the seal refused to sign (an event would be lost) is a finding too.
    findings: list[Finding] = [*(sealed.failed if sealed else ()), *integrity.findings]
    tables = [table] if table is not None else sorted(set(lake_tables(files))
                                                      | set(digest_tables(files)))
    receipts = read_receipts(files, table)
    first: dict[str, str] = {}
    for r in receipts:
        first[r["table_name"]] = min(first.get(r["table_name"], r["received_at"]),
                                     r["received_at"])
    until = iso_ms(now_ms - settle * 1000 + 1)
    days: dict[tuple[str, str], dict[str, int]] = {}
    window: tuple[str, str] | None = None
    for name in tables:
        start = iso_ms(since_ms) if since_ms is not None else _before(first.get(name))
        if start is None:
            findings.append(Finding(name, "no_receipts", f"table={name}",
                                    "no capture receipt: completeness cannot be shown"))
            continue
        window = (min(window[0], start), until) if window else (start, until)
        summary, detail = _reconcile(lake, name, start, until)
        for row in summary:
            days[(name, row["day"])] = {k: int(row[k]) for k in (
                "received", "in_lake", "received_not_in_lake", "in_lake_without_receipt")}
        for row in detail:
            findings.append(Finding(name, row["problem"], f"event {row['event_id']}",
                                    f"{row['action']} of {row['item_key']} (sequence "
                                    f"{row['sequence_number']}), {row['day']}"))
    for (name, day), n in integrity.files_checked.items():
        days.setdefault((name, day), {})["files_checked"] = n
    checks = [DayCheck(t, d, **v) for (t, d), v in sorted(days.items())]
    return VerifyReport(checks, findings, integrity.digests, integrity.files_pending, window,
                        sealed, tables)


def _before(received_at: str | None) -> str | None:
    """The start of a window that holds the rows of the first receipt: a row's ingested_at
    is taken when its invocation starts, at most 15 minutes (Lambda's longest run) before
    its receipt is written."""
    from ddbtrail.core.timefmt import parse_timestamp

    return iso_ms(parse_timestamp(received_at) - 900_000) if received_at else None


def _reconcile(lake: Lake, table: str, start: str,
               until: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The reconciliation queries' rows for one table, on one DuckDB connection."""
    from ddbtrail.query import receipts_table, saved
    from ddbtrail.query.duck import connect

    values = {"table_name": table, "from": start, "to": until}
    con = connect(lake.files, table_name=table)
    try:
        receipts_table.register(con, lake.files, table)
        return (saved.rows(saved.run_duckdb(saved.load(RECONCILE), values, con)),
                saved.rows(saved.run_duckdb(saved.load(RECONCILE_DETAIL), values, con)))
    finally:
        con.close()
