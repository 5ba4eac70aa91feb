"""What changes the lake or a table: state snapshots, compaction, restore; and the cost
model."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddbtrail.api._args import Instant, KeyValue, instant_ms, not_future
from ddbtrail.api._lake import Lake
from ddbtrail.api._read import _item_key, _open
from ddbtrail.core.exceptions import InvalidArgument

if TYPE_CHECKING:
    from ddbtrail.cost import Estimate
    from ddbtrail.deployment import Deployment
    from ddbtrail.query.restore import RestorePlan
    from ddbtrail.query.snapshots import BuildResult


def snapshot(lake: Lake | str, table: str, *, at: Instant | None = None,
             settle_seconds: int | None = None) -> BuildResult:
    """Write the state of every item of ``table`` at ``at`` as a new state snapshot.

    ``at`` defaults to the end of the last closed UTC day and may not be in the future.
    ``settle_seconds``: how long a row may take to reach the lake [default: 900 on S3, 0
    for a folder]. Returns what was written (items, base snapshot, path). as-of, restore
    and table_as_of then start from it; their answers do not change.

    >>> dt.snapshot(lake, "demo_orders").items
    """
    from ddbtrail.lake.tables import require_table
    from ddbtrail.query import snapshots

    lake = _open(lake)
    now = time.time_ns() // 1_000_000
    at_ms = snapshots.default_instant(now) if at is None else instant_ms(at, "at", now=now)
    if at is not None:
        not_future(at_ms, at, "at", now=now)
    require_table(lake.files, table)
    return snapshots.build(lake.files, table, at_ms, settle_seconds=settle_seconds,
                           now_ms=now)


def compact(lake: Lake | str, *, table: str | None = None, before: str | None = None,
            dry_run: bool = False, key: str | None = None,
            boto3_session: Any = None) -> list[Any]:
    """Compact every closed partition that needs it, in any lake format; one result per
    partition, in order. ``before``: only partitions before this date [default: today,
    UTC]; ``dry_run`` plans and writes nothing. A sealed lake (one with digests) is sealed
    up to now first, and each replacement writes its own signed digest before the old
    files go (``key``: see ``dt.seal``), so ``dt.verify`` still proves it.

    >>> [r.partition for r in dt.compact(lake, dry_run=True)]
    """
    from ddbtrail.api._evidence import replacement_digests
    from ddbtrail.lake import compact as compaction

    lake = _open(lake)
    on_replace = None if dry_run else replacement_digests(lake, table=table, key=key,
                                                          boto3_session=boto3_session)
    return list(compaction.compact(lake.files, table=table, before=before, dry_run=dry_run,
                                   on_replace=on_replace))


@dataclass(frozen=True)
class Restored:
    """What a restore wrote, or would write: the plan (typed items, keys not alive at the
    instant) and how many items went to the target table (0 for a dry run)."""

    plan: RestorePlan
    written: int
    dry_run: bool


def restore(lake: Lake | str, table: str, at: Instant, *, to_table: str,
            key: Mapping[str, KeyValue] | None = None, dry_run: bool = True,
            explain: list[str] | None = None,
            on_plan: Callable[[RestorePlan], None] | None = None,
            progress: Callable[[int, int], None] | None = None) -> Restored:
    """Items of ``table`` exactly as they were at ``at`` (types, digits, bytes), put into
    ``to_table`` through the lake's session; only ``key``'s item when given.

    Dry run by default: nothing is written until ``dry_run=False``. Only puts: target
    items that did not exist at that instant are left alone. ``explain`` receives the
    snapshot used and the files read; ``on_plan(plan)`` hears what will be written before
    any write, and ``progress(written, total)`` after each. Raises InvalidArgument naming
    ``at`` (also for an instant in the future) or ``key``; LakeError when an item has no
    image to restore; InvalidValue when a stored image cannot be rebuilt; TableNotFound
    when ``to_table`` does not exist.

    >>> dt.restore(lake, "demo_orders", "2024-05-01", to_table="orders_copy").plan.items
    """
    from ddbtrail.capture.put_items import batch_write
    from ddbtrail.lake.tables import require_table
    from ddbtrail.query.restore import check_plan, plan_restore

    lake = _open(lake)
    at_ms = instant_ms(at, "at")
    not_future(at_ms, at, "at")
    require_table(lake.files, table)
    keys = [_item_key(lake, table, key)] if key is not None else None
    plan = plan_restore(lake.files, table, at_ms, keys, explain=explain)
    check_plan(plan)
    if on_plan is not None:
        on_plan(plan)
    if dry_run:
        return Restored(plan, 0, True)
    total, done = len(plan.items), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    written = batch_write(lake.dynamodb(), to_table, plan.items, progress=advance)
    return Restored(plan, written, False)


def cost(*, template: str | Path | Mapping[str, Any] | None = None,
         **workload: Any) -> Estimate:
    """Monthly AWS cost per component of ddbtrail's design beside the naive one.

    ``template``: the deployment to price, as its synthesised CloudFormation template (a
    path such as ``cdk.out/ddbtrail.template.json``, or the parsed dict); without one, the
    stack's defaults for ``format``. ``workload``: the fields of ``ddbtrail.cost.Workload``
    (``changes_per_day``, ``avg_item_kb``, ``lookups_per_day``, ``format``, ...); with a
    template, ``format`` defaults to the template's. Raises InvalidArgument naming the
    field out of range, or ``template`` when it cannot be read or lacks a resource.

    >>> dt.cost(changes_per_day=1_000_000, avg_item_kb=2).total_ddbtrail
    >>> dt.cost(template="cdk.out/ddbtrail.template.json", changes_per_day=10**6,
    ...         avg_item_kb=2).lines[-1].provenance
    """
    from dataclasses import fields

    from ddbtrail.cost import Workload, estimate

    known = {f.name for f in fields(Workload)}
    for name in workload:
        if name not in known:
            raise InvalidArgument(name, None, f"not a workload field; known: "
                                  f"{', '.join(sorted(known))}")
    deployment = None if template is None else _deployment(template)
    if workload.get("format") is None:
        workload["format"] = deployment.format if deployment else "parquet"
    return estimate(Workload(**workload), deployment=deployment)


def _deployment(template: str | Path | Mapping[str, Any]) -> Deployment:
    """The deployment facts of a template file or dict; InvalidArgument ``template``."""
    import json

    from ddbtrail.core.exceptions import ConfigError
    from ddbtrail.deployment import from_template

    if isinstance(template, Mapping):
        data, where = dict(template), "the template"
    else:
        where = str(template)
        try:
            data = json.loads(Path(template).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidArgument("template", where, "does not exist") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidArgument("template", where, f"cannot be read as JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InvalidArgument("template", where, "is not a CloudFormation template")
    try:
        return from_template(data, source=where)
    except ConfigError as exc:
        raise InvalidArgument("template", None, str(exc)) from exc
