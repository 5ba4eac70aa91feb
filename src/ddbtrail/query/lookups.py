"""Item lookups over the lake: history and as-of, served by the saved Athena queries.

These run ``athena_queries/item_history.sql``, ``item_as_of.sql`` and ``table_as_of.sql``
on DuckDB, so the CLI and Athena answer from the same SQL. Keys are the canonical
``item_key`` strings of ``codec.item_key``; ``resolve_item_key`` builds one from key
values as text and the table's key types.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.core import codec
from ddbtrail.core.exceptions import (
    DdbtrailError,
    InvalidArgument,
    InvalidValue,
    LakeError,
    TableNotFound,
)
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake import footers
from ddbtrail.lake.files import Lake
from ddbtrail.query import snapshots
from ddbtrail.query.duck import connect
from ddbtrail.query.saved import load, run_duckdb

if TYPE_CHECKING:
    import pyarrow as pa
    from mypy_boto3_dynamodb import DynamoDBClient

    from ddbtrail.lake.files import DataFile

KEY_TYPES: Final = frozenset({"S", "N", "B"})


def _run(lake: Lake, name: str, values: Mapping[str, str],
         files: list[DataFile] | None) -> pa.Table:
    # Only item_history runs here, and it reads no state snapshot.
    con = connect(lake, table_name=values["table_name"], item_key=values.get("item_key"),
                  files=files, snapshot_files=[], shared=True)
    try:
        return run_duckdb(load(name), values, con)
    finally:
        con.close()


def item_history_table(lake: Lake, table_name: str, item_key: str, *,
                       files: list[DataFile] | None = None) -> pa.Table:
    """``item_history`` as Arrow, with a ``what_changed`` column (``describe_change``).

    Rows in sequence number order, deduplicated; LakeError if the lake is unreadable.
    ``files``: the table's Hive-layout files when the caller has listed them
    (``lake.tables.require_table``); listed here otherwise.
    """
    found = _run(lake, "item_history", {"table_name": table_name, "item_key": item_key},
                 files)
    return found.append_column("what_changed", describe_changes(found))


def item_history(lake: Lake, table_name: str, item_key: str) -> list[dict[str, Any]]:
    """Every change of one item, oldest first (sequence number order), deduplicated.

    Rows have the columns of ``item_history.sql``. Raises LakeError if the lake is
    unreadable.
    """
    return list(_run(lake, "item_history", {"table_name": table_name,
                                            "item_key": item_key}, None).to_pylist())


def item_as_of(lake: Lake, table_name: str, item_key: str, at_ms: int, *,
               use_snapshots: bool = True, explain: list[str] | None = None,
               files: list[DataFile] | None = None) -> dict[str, Any] | None:
    """One item as it was at ``at_ms`` (epoch ms, changes at or before it count).

    None when the item did not exist then (never written, or deleted). The row has the
    columns of ``item_as_of.sql``: ``item`` is the plain image text, ``type_hints`` the
    row's hints (the item's under ``/new_image``); ``typed_item`` rebuilds it. Starts from
    the latest usable state snapshot (``ddbtrail.query.snapshots``) unless
    ``use_snapshots`` is false; ``explain`` receives what was read. ``files``: the
    table's Hive-layout files, as ``item_history_table`` takes them.
    """
    plan = snapshots.plan(lake, table_name, at_ms, use_snapshots=use_snapshots,
                          listing=files)
    if explain is not None:
        explain.extend(plan.explain())
    found = snapshots.run_as_of(lake, "item_as_of", {"table_name": table_name,
                                                     "item_key": item_key,
                                                     "at": iso_ms(at_ms)}, plan)
    return found[0] if found else None


def table_as_of(lake: Lake, table_name: str, at_ms: int, *, use_snapshots: bool = True,
                explain: list[str] | None = None,
                files: list[DataFile] | None = None) -> list[dict[str, Any]]:
    """Every live item of a table at ``at_ms`` (epoch ms), ordered by item_key.

    Items deleted at or before the instant are absent. Rows and ``files`` as in
    ``item_as_of``.
    """
    plan = snapshots.plan(lake, table_name, at_ms, use_snapshots=use_snapshots,
                          listing=files)
    if explain is not None:
        explain.extend(plan.explain())
    return snapshots.run_as_of(lake, "table_as_of", {"table_name": table_name,
                                                     "at": iso_ms(at_ms)}, plan)


def typed_item(row: Mapping[str, Any], image: str = "item") -> codec.TypedItem | None:
    """The exact typed DynamoDB item of an as-of row (or of ``old_image``/``new_image``).

    None when the row carries no such image (KEYS_ONLY streams).
    """
    text = row.get(image)
    if text is None:
        return None
    root = "/old_image" if image == "old_image" else "/new_image"
    hints = codec.hints_under(json.loads(row["type_hints"]), root) if row.get("type_hints") \
        else {}
    return codec.decode_item(text, hints)


# --------------------------------------------------------------------------- keys


def build_item_key(values: Mapping[str, str], types: Mapping[str, str], *,
                   table_name: str = "") -> str:
    """Canonical item_key from key values as text and the table's key types (name -> S|N|B).

    Raises InvalidArgument naming ``key`` when the names are not exactly the key
    attributes or a value does not fit its type.
    """
    where = f"table {table_name}" if table_name else "the table"
    if not values:
        raise InvalidArgument("key", None, f"give the item's key: {where} is keyed by "
                              f"{', '.join(sorted(types))}")
    if set(values) != set(types):
        raise InvalidArgument("key", None, f"{where} is keyed by {', '.join(sorted(types))}; "
                              f"got {', '.join(sorted(values))}")
    try:
        return codec.item_key_from_plain(values, types)
    except InvalidValue as exc:
        # The codec's message starts with the attribute: "Id: 'abc' is not a number".
        name, _, reason = str(exc).partition(": ")
        raise InvalidArgument("key", None, reason, part=name) from exc


def key_types_from_description(description: Mapping[str, Any]) -> dict[str, str]:
    """Key attribute -> S|N|B from a DescribeTable ``Table`` description."""
    definitions = {d["AttributeName"]: d["AttributeType"]
                   for d in description.get("AttributeDefinitions", [])}
    return {k["AttributeName"]: definitions.get(k["AttributeName"], "S")
            for k in description.get("KeySchema", [])}


def key_types_from_table(table_name: str, client: DynamoDBClient | None = None, *,
                         endpoint_url: str | None = None,
                         region: str | None = None) -> dict[str, str]:
    """Key types from DynamoDB's DescribeTable. Raises TableNotFound if there is no table."""
    if client is None:
        import boto3

        client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        table = client.describe_table(TableName=table_name)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise TableNotFound(f"table {table_name}: not found in DynamoDB") from exc
        raise TableNotFound(f"table {table_name}: DescribeTable failed: {exc}") from exc
    except BotoCoreError as exc:
        raise TableNotFound(f"table {table_name}: DescribeTable failed: {exc}") from exc
    return key_types_from_description(table)


def key_types_from_lake(lake: Lake, table_name: str, *,
                        files: list[DataFile] | None = None) -> dict[str, str]:
    """Key types inferred from the lake's rows of a table (``files``: its Hive-layout
    files when the caller has listed them).

    Plain JSON keys show a number as a number and a string as a string; binary keys
    carry a ``/keys/<name>`` type hint. Raises LakeError when the lake holds no rows of
    the table.
    """
    # One row of one Parquet file says it (its footer is cached for the lookup after);
    # JSON Lines and Iceberg lakes go through DuckDB.
    if files is None:
        files = lake.data_files(table_name)
    parquet = [footers.ParquetFile(f.path, f.size, f.mtime_ms)
               for f in files if f.format == "parquet"]
    head = footers.first_row(lake.fs, parquet, ("keys", "type_hints")) if parquet else None
    if head is not None:
        found = [(head["keys"], head["type_hints"])]
    else:
        con = connect(lake, table_name=table_name, files=files, snapshot_files=[],
                      shared=True)
        try:
            found = con.execute(
                "SELECT keys, type_hints FROM changes WHERE table_name = ? LIMIT 1",
                [table_name]).fetchall()
        except Exception as exc:  # duckdb and pyarrow read errors alike
            raise LakeError(f"lake {lake.uri}: cannot read table {table_name}: {exc}") \
                from exc
        finally:
            con.close()
    if not found:
        raise LakeError(f"lake {lake.uri}: no changes of table {table_name} "
                        "(check the table name and the lake)")
    keys_text, hints_text = found[0]
    hints = json.loads(hints_text) if hints_text else {}
    types: dict[str, str] = {}
    for name, value in codec.parse_plain(keys_text).items():
        if hints.get("/keys/" + codec.pointer_token(name)) == "B":
            types[name] = "B"
        elif isinstance(value, codec.JsonNumber):
            types[name] = "N"
        else:
            types[name] = "S"
    return types


def key_types(lake: Lake, table_name: str, client: DynamoDBClient | None = None, *,
              files: list[DataFile] | None = None) -> dict[str, str]:
    """Key attribute -> S|N|B: from DescribeTable when ``client`` (DynamoDB) is given and
    the table is there, otherwise (or for a table since deleted) from the lake
    (``key_types_from_lake``, which takes ``files``)."""
    if client is not None:
        try:
            return key_types_from_table(table_name, client)
        except DdbtrailError:
            pass
    return key_types_from_lake(lake, table_name, files=files)


def resolve_item_key(lake: Lake, table_name: str, values: Mapping[str, str], *,
                     client: DynamoDBClient | None = None) -> str:
    """item_key from key values as text (``{"Id": "101"}``), typed as ``key_types`` says.

    Raises InvalidArgument naming ``key`` on bad values, LakeError when the lake holds no
    row to learn the types from.
    """
    return build_item_key(values, key_types(lake, table_name, client), table_name=table_name)


# --------------------------------------------------------------------------- display

_VALUE_WIDTH: Final = 40


def plain_text(value: Any) -> str:
    """Compact plain JSON of a value parsed by ``codec.parse_plain`` (numbers keep digits)."""
    if isinstance(value, codec.JsonNumber):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + plain_text(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(plain_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _short(text: str) -> str:
    return text if len(text) <= _VALUE_WIDTH else text[:_VALUE_WIDTH - 1] + "…"


def _short_pair(old: str, new: str) -> tuple[str, str]:
    """Both sides cut to the width around where they first differ, so a change late in a
    long value still shows."""
    if max(len(old), len(new)) <= _VALUE_WIDTH:
        return old, new
    same = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                min(len(old), len(new)))
    start = max(0, same - _VALUE_WIDTH // 4)
    if start == 0:
        return _short(old), _short(new)
    return _short("…" + old[start:]), _short("…" + new[start:])


@functools.lru_cache(maxsize=4096)  # attribute names repeat across an item's changes
def _path_name(name: str) -> str:
    return name if name.isidentifier() else json.dumps(name, ensure_ascii=False)


def _diff(path: str, old: Any, new: Any, parts: list[str],
          text: Callable[[Any], str] = plain_text) -> None:
    """Append one ``path: old -> new`` per changed leaf; maps are followed down by name.
    ``text`` writes a parsed value as compact JSON."""
    if isinstance(old, dict) and isinstance(new, dict):
        for name in [*new, *(n for n in old if n not in new)]:
            sub = f"{path}.{_path_name(name)}"
            if name not in new:
                parts.append(f"{sub} removed")
            elif name not in old:
                parts.append(f"{sub} = {_short(text(new[name]))}")
            elif text(old[name]) != text(new[name]):
                _diff(sub, old[name], new[name], parts, text)
        return
    before, after = _short_pair(text(old), text(new))
    parts.append(f"{path}: {before} -> {after}")


def _kept(value: Any, source: str) -> bool:
    """Whether ``value``, parsed by orjson from ``source``, writes back every number as the
    text spelled it: no float (``1.50`` comes back ``1.5``, a 20-digit integer as a float),
    no integer zero where the text may have said ``-0``."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is float:
        return False
    if kind is int:
        return value != 0 or "-0" not in source
    if kind is dict:
        return all(_kept(v, source) for v in value.values())
    if kind is list:
        return all(_kept(v, source) for v in value)
    return True


class _Images:
    """Image texts parsed for ``describe_change``. orjson parses, where the values the
    changed attributes hold keep their numbers' text that way (``_kept``), and those are
    written back by ``codec.dumps`` (the same bytes as ``plain_text``); otherwise
    ``codec.parse_plain`` and ``plain_text``, exact. The last texts parsed are reused: a
    change's old image is mostly the change before's new image."""

    __slots__ = ("memo",)
    _REFUSED: Final = object()

    def __init__(self) -> None:
        self.memo: dict[str, Any] = {}

    def _fast(self, source: str) -> Any:
        hit = self.memo.get(source)
        if hit is None:
            try:
                hit = codec.orjson.loads(source)
            except codec.orjson.JSONDecodeError:
                hit = self._REFUSED
            if len(self.memo) >= 4:
                self.memo.clear()
            self.memo[source] = hit
        return hit

    def pair(self, old_text: str, new_text: str, changed: list[str]
             ) -> tuple[Any, Any, Callable[[Any], str]]:
        if codec.orjson is not None:
            old, new = self._fast(old_text), self._fast(new_text)
            if type(old) is dict and type(new) is dict:
                for n in changed:
                    if not (_kept(old.get(n), old_text) and _kept(new.get(n), new_text)):
                        break
                else:
                    return old, new, _fast_text
        return codec.parse_plain(old_text), codec.parse_plain(new_text), plain_text


def _fast_text(value: Any) -> str:
    """``codec.dumps`` of an orjson-parsed value that ``_kept`` passed; an integer's text
    is its digits, without a call to orjson."""
    return str(value) if type(value) is int else codec.dumps(value)


def describe_change(row: Mapping[str, Any]) -> str:
    """One line saying what a history row changed, by attribute path, e.g.
    ``status: "NEW" -> "PAID"; shipping.address.city: "Québec" -> "Lyon"``."""
    return _describe(row.get("action"), row.get("ttl_delete"), row.get("old_image"),
                     row.get("new_image"), row.get("changed_attributes"), _Images())


def describe_changes(rows: pa.Table) -> pa.Array:
    """``describe_change`` of every row of a history table, as a string array. Reads
    only the columns it needs, and parses each image text once."""
    import pyarrow as pa

    columns = [rows.column(c).to_pylist() if c in rows.column_names else [None] * rows.num_rows
               for c in _DESCRIBED]
    images = _Images()
    return pa.array([_describe(action, ttl, old, new, changed, images)
                     for action, ttl, old, new, changed in zip(*columns, strict=True)],
                    type=pa.string())


_DESCRIBED: Final = ("action", "ttl_delete", "old_image", "new_image", "changed_attributes")


def _describe(action: str | None, ttl_delete: bool | None, old_text: str | None,
              new_text: str | None, changed: list[str] | None, images: _Images) -> str:
    if action == "REMOVE":
        return "deleted by TTL" if ttl_delete else "deleted"
    changed = changed or []
    if action in ("INSERT", "SNAPSHOT") or not old_text or not new_text:
        verb = {"INSERT": "created", "SNAPSHOT": "snapshot"}.get(str(action), "changed")
        return f"{verb}: {', '.join(changed)}" if changed else str(verb)
    old, new, text = images.pair(old_text, new_text, changed)
    parts: list[str] = []
    for name in changed:
        if name not in new:
            parts.append(f"{_path_name(name)} removed")
        elif name not in old:
            parts.append(f"{_path_name(name)} = {_short(text(new[name]))}")
        else:
            _diff(_path_name(name), old[name], new[name], parts, text)
    return "; ".join(parts) or "no attribute changed"
