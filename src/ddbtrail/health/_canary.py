"""The canary: a marker item written and deleted, then waited for in the lake."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.health._checks import FAIL, OK, Check, aws_error
from ddbtrail.health._deployment import client

if TYPE_CHECKING:
    from ddbtrail.lake.files import Lake

CANARY_ATTRIBUTE: Final = "ddbtrail_canary"
DEFAULT_TIMEOUT_SECONDS: Final = 900.0  # Firehose buffers up to 900 s
DEFAULT_POLL_SECONDS: Final = 15.0
ENGINES: Final = ("duckdb", "athena")


def _marker_key(key_types: dict[str, str], token: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The marker's key, typed for PutItem and plain for ``build_item_key``."""
    typed: dict[str, Any] = {}
    plain: dict[str, str] = {}
    for i, (name, kind) in enumerate(sorted(key_types.items())):
        if kind == "N":
            # A large, unlikely number derived from the token (keys must be unique).
            value = str(int(token[:12], 16) * 10 + i)
            typed[name], plain[name] = {"N": value}, value
        elif kind == "B":
            raw = f"ddbtrail-canary-{token}".encode()
            typed[name], plain[name] = {"B": raw}, base64.b64encode(raw).decode()
        else:
            value = f"ddbtrail-canary-{token}"
            typed[name], plain[name] = {"S": value}, value
    return typed, plain


def canary(table: str, *, lake: Lake | None = None, engine: str = "duckdb",
           database: str = "ddbtrail", workgroup: str | None = None,
           timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
           poll_seconds: float = DEFAULT_POLL_SECONDS,
           on_wait: Callable[[float, int], None] | None = None,
           boto3_session: Any = None, endpoint_url: str | None = None) -> Check:
    """Write a marker item into ``table`` and delete it, then poll until both changes
    (INSERT and REMOVE) are queryable: on DuckDB over ``lake``, or on Athena in
    ``database`` and ``workgroup``. Gives up after ``timeout_seconds``.

    ``on_wait(elapsed_seconds, rows_seen)`` is called before each wait (progress). The
    result is a Check named ``canary TABLE``; AWS failures to write the marker are a
    failed check too.
    """
    from ddbtrail.core.exceptions import DdbtrailError, LakeError
    from ddbtrail.query import saved
    from ddbtrail.query.lookups import build_item_key, key_types_from_description

    name = f"canary {table}"
    if engine not in ENGINES:
        raise DdbtrailError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "duckdb" and lake is None:
        raise DdbtrailError("the duckdb engine needs a lake")
    ddb = client("dynamodb", boto3_session, endpoint_url)
    token = uuid.uuid4().hex
    try:
        description = ddb.describe_table(TableName=table)["Table"]
        key, plain = _marker_key(key_types_from_description(description), token)
        ddb.put_item(TableName=table, Item={**key, CANARY_ATTRIBUTE: {"S": token}})
        ddb.delete_item(TableName=table, Key=key)
    except Exception as exc:  # noqa: BLE001  (a failed write is the check's answer)
        return Check(name, FAIL, f"could not write the marker: {aws_error(exc)}",
                     f"check that {table} exists and the caller may PutItem and DeleteItem")
    item_key = build_item_key(plain, key_types_from_description(description), table_name=table)
    values = {"table_name": table, "item_key": item_key}
    start = time.monotonic()
    seen: set[str] = set()
    waiting_for = ""
    while True:
        try:
            rows = saved.rows(saved.run("item_history", values, engine=engine, lake=lake,
                                        database=database, workgroup=workgroup,
                                        boto3_session=boto3_session,
                                        endpoint_url=endpoint_url))
        except LakeError as exc:
            # A lake folder the first delivery has not created yet: keep waiting.
            rows, waiting_for = [], f" ({exc})"
        except DdbtrailError as exc:
            return Check(name, FAIL, f"marker {item_key} not queryable: {exc}",
                         "check the lake or the Athena workgroup named in the error")
        seen = {str(r.get("action")) for r in rows}
        elapsed = time.monotonic() - start
        if {"INSERT", "REMOVE"} <= seen:
            return Check(name, OK, f"marker {item_key} written, deleted and queryable "
                         f"after {elapsed:,.0f} s ({engine})")
        if elapsed >= timeout_seconds:
            got = ", ".join(sorted(seen)) or "nothing"
            return Check(name, FAIL, f"after {elapsed:,.0f} s the lake holds {got} of marker "
                         f"{item_key}; expected INSERT and REMOVE{waiting_for}",
                         "run the checks without `canary`: the failed check on the capture path "
                         "names the cause")
        if on_wait is not None:
            on_wait(elapsed, len(rows))
        time.sleep(min(poll_seconds, max(timeout_seconds - elapsed, 0.0)))
