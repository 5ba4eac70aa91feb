"""``ddbtrail verify``: prove the lake complete (receipts against rows) and intact (signed,
chained digests against files); one line per table and day, then every finding."""

from __future__ import annotations

from typing import Annotated

import typer

from ddbtrail.api import verify
from ddbtrail.cli._app import LakeOpt, app, console
from ddbtrail.cli._args import open_lake
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt
from ddbtrail.core.timefmt import INSTANT_HELP


@app.command("verify")
def verify_command(
    *,
    lake: LakeOpt = None,
    table: Annotated[str | None, typer.Option(
        "--table", "-t", help="Only this table [default: every table].")] = None,
    since: Annotated[str | None, typer.Option(
        help=f"Check changes received and partitions from this instant: {INSTANT_HELP} "
        "[default: each table's first receipt; every partition].")] = None,
    seal: Annotated[bool, typer.Option(
        "--seal", help="First write signed digests of the files delivered since the last "
        "one (needs the signing key).")] = False,
    key: Annotated[str | None, typer.Option(
        "--key", help="With --seal: a KMS key ARN or alias, or an Ed25519 key file "
        "[default for a folder lake: the local key file, made on first use].")] = None,
    public_key: Annotated[str | None, typer.Option(
        "--public-key", help="The public key (PEM file, or a KMS key ARN or alias) the "
        "digests were signed with [default: the local key file's].")] = None,
    settle: Annotated[int | None, typer.Option(
        help="Seconds rows may take to reach the lake; newer receipts are not checked yet "
        "[default: 900 on S3 (Firehose's longest buffer), 0 for a folder].")] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Prove the lake complete and unaltered, per table and day.

    Complete: every change a capture receipt names is in the lake and every row of the
    lake is named by a receipt (the saved query reconcile_receipts, on DuckDB). Intact:
    every digest's signature, the chain, and every data file's SHA-256 and rows. Needs only
    read access and the public key, unless --seal. Exits 0 when complete and intact, 1
    with one line per finding naming the table and the file, digest or event id.
    """
    the_lake = open_lake(lake, endpoint_url, region, profile)
    report = verify(the_lake, public_key=public_key, table=table, since=since, seal=seal,
                    key=key, settle_seconds=settle)
    if report.sealed is not None:
        console.print(f"sealed: {report.sealed.written} digest(s), {report.sealed.files} "
                      "file(s)", highlight=False)
    for d in report.days:
        console.print(
            f"{d.table}  {d.day}  received {d.received:,}  in lake {d.in_lake:,}  "
            f"missing {d.received_not_in_lake:,}  without receipt "
            f"{d.in_lake_without_receipt:,}  files checked {d.files_checked:,}  "
            f"{'complete' if d.complete else 'INCOMPLETE'}", highlight=False, markup=False)
    for name, paths in sorted(report.pending.items()):
        console.print(f"{name}  {len(paths)} file(s) newer than the last digest, not sealed "
                      "yet (run with --seal)", highlight=False, markup=False)
    for finding in report.findings:
        console.print(f"FINDING {finding}", highlight=False, markup=False, soft_wrap=True)
    digests = sum(report.digests.values())
    if report.ok:
        console.print(f"complete and intact: {len(report.tables)} table(s), {digests} "
                      "digest(s) verified", highlight=False)
        return
    console.print(f"NOT VERIFIED: {len(report.findings)} finding(s) "
                  f"({'complete' if report.complete else 'incomplete'}, "
                  f"{'intact' if report.intact else 'altered'})", highlight=False)
    raise typer.Exit(1)
