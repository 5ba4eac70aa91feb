"""The questions: an item's history, who changed it, items at an instant, saved queries,
a table's schema. Each returns Arrow (``.to_pandas()``, ``polars.from_arrow``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from ddbtrail.api._args import Instant, KeyValue, instant_ms, key_text, not_future, setting
from ddbtrail.api._lake import Lake
from ddbtrail.core.attribution import DEFAULT_TOLERANCE_S
from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.core.timefmt import iso_ms

if TYPE_CHECKING:
    import pyarrow as pa

    from ddbtrail.catalog.schema_infer import TableSchema
    from ddbtrail.lake.cloudtrail import TrailLogs
    from ddbtrail.lake.files import DataFile
    from ddbtrail.query.trino import TrinoSettings

CLOUDTRAIL_ENV = "DDBTRAIL_CLOUDTRAIL"


def _open(lake: Lake | str) -> Lake:
    return Lake.open(lake) if isinstance(lake, str) else lake


def _item_key(lake: Lake, table: str, key: Mapping[str, KeyValue],
              files: list[DataFile] | None = None) -> str:
    """The canonical item_key of ``key``; types from DynamoDB when the lake reaches AWS,
    else from the lake's rows (``files``: the table's, if listed). A typed value
    ({"N": "1"}) keeps its own type."""
    from ddbtrail.query import lookups

    if not isinstance(key, Mapping):
        raise InvalidArgument("key", repr(key), "give the item's key as a dict, e.g. "
                              "{'pk': 'ORDER#1', 'sk': 1}")
    texts: dict[str, str] = {}
    tags: dict[str, str] = {}
    for name, value in key.items():
        texts[name], tag = key_text(name, value)
        if tag is not None:
            tags[name] = tag
    client = None
    if lake.reaches_aws:
        from botocore.exceptions import BotoCoreError

        try:
            client = lake.dynamodb()
        except BotoCoreError:  # no region: the lake's rows still say the types
            client = None
    types = lookups.key_types(lake.files, table, client, files=files)
    types.update({n: t for n, t in tags.items() if n in types})
    return lookups.build_item_key(texts, types, table_name=table)


def _window(table: pa.Table, since: Instant | None, until: Instant | None) -> pa.Table:
    """Rows whose ``timestamp`` (epoch ms) is at or after ``since`` and at or before
    ``until``."""
    import pyarrow.compute as pc

    if since is not None and table.num_rows:
        table = table.filter(pc.greater_equal(table["timestamp"], instant_ms(since, "since")))
    if until is not None and table.num_rows:
        table = table.filter(pc.less_equal(table["timestamp"], instant_ms(until, "until")))
    return table


def _check_window(since: Instant | None, until: Instant | None) -> None:
    # Parse both before any I/O, so a typo fails fast and names its argument.
    for value, param in ((since, "since"), (until, "until")):
        if value is not None:
            instant_ms(value, param)


def _trail(lake: Lake, cloudtrail: str) -> TrailLogs:
    from ddbtrail.lake.cloudtrail import TrailLogs

    region, profile = lake.region_and_profile()
    return TrailLogs.open(cloudtrail, endpoint_url=lake.endpoint_url, region=region,
                          profile=profile)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist(rows)


def history(lake: Lake | str, table: str, key: Mapping[str, KeyValue], *,
            since: Instant | None = None, until: Instant | None = None,
            cloudtrail: str | None = None, tolerance: int = DEFAULT_TOLERANCE_S,
            engine: str = "duckdb", database: str = "ddbtrail",
            workgroup: str | None = None, s3_output: str | None = None,
            on_problem: Callable[[str], None] | None = None) -> pa.Table:
    """Every change of one item, oldest first (sequence number order), deduplicated.

    Columns: those of ``athena_queries/item_history.sql`` (images as plain JSON text)
    plus ``what_changed``, one line per change by attribute path. With ``cloudtrail`` (a
    folder or ``s3://`` prefix of CloudTrail logs [default: $DDBTRAIL_CLOUDTRAIL]) also
    ``actor``, ``actor_match`` (exact | ambiguous | none), ``actor_candidates``,
    ``source_ip``, ``user_agent``, ``cloudtrail_event``, ``cloudtrail_event_id``;
    ``tolerance`` is the seconds a write event may precede its change, and unreadable
    CloudTrail records are told to ``on_problem``.

    ``key``: the item's key, plain or typed values (``{"pk": "ORDER#1", "sk": 1}``,
    ``{"sk": {"N": "1"}}``). ``since``/``until`` bound the changes' time (inclusive):
    ISO-8601 text, a date, ``"now"``, a datetime (naive is UTC) or epoch ms. ``engine``:
    ``"duckdb"`` (the lake's files) or ``"athena"`` (``database``, ``workgroup``,
    ``s3_output``), or any engine ``dt.query`` runs.

    Raises InvalidArgument naming ``key``, ``since``, ``until`` or ``engine``;
    TableNotInLake for a table the lake does not hold; LakeError for an unreadable lake.

    >>> import ddbtrail as dt
    >>> lake = dt.Lake.open("./ddbtrail-lake")
    >>> dt.history(lake, "demo_orders", {"customer_id": "C0001", "order_id": 1}).num_rows
    """
    from ddbtrail.lake.tables import require_table
    from ddbtrail.query import lookups, saved, who

    lake = _open(lake)
    _check_window(since, until)
    cloudtrail = setting(cloudtrail, CLOUDTRAIL_ENV)
    # One listing of the table serves the check, the key's types and the read.
    files = require_table(lake.files, table) if engine == "duckdb" else None
    item_key = _item_key(lake, table, key, files)
    if cloudtrail:
        if engine != "duckdb":
            raise InvalidArgument("engine", engine, "attribution from CloudTrail files runs "
                                  "on duckdb; on Athena run the item_history_with_actor query")
        rows = who.attributed_history(lake.files, table, item_key, _trail(lake, cloudtrail),
                                      tolerance_s=tolerance, on_problem=on_problem)
        return _window(_table(rows), since, until)
    if engine == "duckdb":
        return _window(lookups.item_history_table(lake.files, table, item_key, files=files),
                       since, until)
    found = saved.run("item_history", {"table_name": table, "item_key": item_key},
                      engine=engine, lake=lake.files, database=database, workgroup=workgroup,
                      s3_output=s3_output, boto3_session=lake.boto3_session,
                      endpoint_url=lake.endpoint_url)
    return _window(found.append_column("what_changed", lookups.describe_changes(found)),
                   since, until)


def who(lake: Lake | str, table: str, key: Mapping[str, KeyValue], *,
        cloudtrail: str | None = None, since: Instant | None = None,
        until: Instant | None = None, tolerance: int = DEFAULT_TOLERANCE_S,
        on_problem: Callable[[str], None] | None = None) -> pa.Table:
    """Who changed one item, and how: each change with its principal from CloudTrail.

    Columns ``query.who.WHO_COLUMNS``: event_time, action, actor, actor_match (exact |
    ambiguous | none), actor_candidates, source_ip, user_agent, cloudtrail_event,
    cloudtrail_event_id, what_changed, sequence_number, event_id, timestamp. A principal
    is named only when the match is certain. ``cloudtrail`` [default:
    $DDBTRAIL_CLOUDTRAIL] is required; other arguments as in ``history``.

    >>> dt.who(lake, "demo_orders", {"customer_id": "C0001", "order_id": 1},
    ...        cloudtrail="./trail")
    """
    from ddbtrail.query.who import WHO_COLUMNS

    cloudtrail = setting(cloudtrail, CLOUDTRAIL_ENV)
    if not cloudtrail:
        raise InvalidArgument("cloudtrail", None, "give the CloudTrail log folder or s3:// "
                              f"prefix (or set {CLOUDTRAIL_ENV})")
    found = history(lake, table, key, since=since, until=until, cloudtrail=cloudtrail,
                    tolerance=tolerance, on_problem=on_problem)
    if not found.num_rows:
        import pyarrow as pa

        return pa.table({c: pa.array([], type=pa.null()) for c in WHO_COLUMNS})
    return found.select(list(WHO_COLUMNS))


def as_of(lake: Lake | str, table: str, at: Instant, *,
          key: Mapping[str, KeyValue] | None = None, allow_future: bool = False,
          use_snapshots: bool = True, explain: list[str] | None = None) -> pa.Table:
    """The item (``key`` given) or every live item of ``table`` as it was at ``at``.

    Changes at or before ``at`` count; items deleted by then are absent. Columns those of
    ``item_as_of.sql``/``table_as_of.sql``: ``item_key``, ``item`` (the image as plain
    JSON text), ``type_hints``, ``last_event_time``, ``last_action``, ... Starts from the
    latest usable state snapshot unless ``use_snapshots`` is false; ``explain`` receives
    the snapshot used and the files read.

    An instant in the future is refused (nothing is known of it yet) unless
    ``allow_future``. Raises InvalidArgument naming ``at`` or ``key``.

    >>> dt.as_of(lake, "demo_orders", "2024-05-01T12:00:00Z").to_pandas()
    """
    from ddbtrail.lake.tables import require_table
    from ddbtrail.query import lookups

    lake = _open(lake)
    at_ms = instant_ms(at, "at")
    if not allow_future:
        not_future(at_ms, at, "at")
    files = require_table(lake.files, table)
    if key is not None:
        found = lookups.item_as_of(lake.files, table, _item_key(lake, table, key, files),
                                   at_ms, use_snapshots=use_snapshots, explain=explain,
                                   files=files)
        rows = [found] if found else []
    else:
        rows = lookups.table_as_of(lake.files, table, at_ms, use_snapshots=use_snapshots,
                                   explain=explain, files=files)
    return _table(rows)


def _param_text(name: str, value: object) -> str:
    if isinstance(value, datetime | date | int) and not isinstance(value, bool):
        return iso_ms(instant_ms(value, name)) if isinstance(value, datetime | date) \
            else str(value)
    if isinstance(value, str):
        return value
    raise InvalidArgument(name, repr(value), "a query parameter is text, a number, a date "
                          "or a datetime")


def query(lake: Lake | str | None, name: str, *, engine: str = "duckdb",
          cloudtrail: str | None = None, database: str = "ddbtrail",
          workgroup: str | None = None, s3_output: str | None = None,
          trino: TrinoSettings | None = None,
          boto3_session: Any = None, endpoint_url: str | None = None,
          **params: object) -> pa.Table:
    """Run the saved query ``name`` (``athena_queries/<name>.sql``) with ``params``.

    Any ``.sql`` file with the saved-query header is reachable by its name, with no code
    change. ``params`` are the query's parameters (``dt.queries()`` lists them), as text,
    numbers, dates or datetimes; a parameter named like a Python keyword goes through
    ``**{"from": ...}``. ``engine``: ``"duckdb"`` over ``lake`` (with ``cloudtrail`` logs
    as ``cloudtrail_logs`` [default: $DDBTRAIL_CLOUDTRAIL]), ``"athena"`` (``database``,
    ``workgroup``, ``s3_output``), ``"trino"`` (the server ``trino`` names, a
    ``dt.TrinoSettings``; its defaults otherwise), or any other engine ``query.saved.run``
    knows.
    ``boto3_session``/``endpoint_url`` default to the lake's.

    Raises QueryError naming an unknown query, or a missing or bad parameter.

    >>> dt.query(lake, "table_activity", table_name="demo_orders").to_pandas()
    """
    from ddbtrail.query import saved

    opened = _open(lake) if lake is not None else None
    values = {k: _param_text(k, v) for k, v in params.items()}
    cloudtrail = setting(cloudtrail, CLOUDTRAIL_ENV)
    trail = _trail(opened, cloudtrail) if cloudtrail and opened and engine == "duckdb" \
        else None
    return saved.run(name, values, engine=engine, lake=opened.files if opened else None,
                     database=database, workgroup=workgroup, s3_output=s3_output,
                     boto3_session=boto3_session or (opened.boto3_session if opened else None),
                     endpoint_url=endpoint_url or (opened.endpoint_url if opened else None),
                     cloudtrail=trail, trino=trino)


def queries() -> pa.Table:
    """The saved queries: ``name``, ``kind``, ``parameters`` (names, in order) and the
    ``question`` each answers, sorted by name.

    >>> dt.queries().column("name").to_pylist()
    """
    import pyarrow as pa

    from ddbtrail.query import saved

    found = saved.catalogue()
    return pa.table({
        "name": [q.name for q in found], "kind": [q.kind for q in found],
        "parameters": pa.array([[p.name for p in q.parameters] for q in found],
                               type=pa.list_(pa.string())),
        "question": [q.question for q in found]})


def schema(lake: Lake | str, table: str, *, since: Instant | None = None,
           bucket: Literal["day", "hour"] = "day") -> TableSchema:
    """Every top-level attribute of ``table``'s items learnt from the lake, and drift.

    Returns a ``TableSchema``: ``.attributes`` (types seen, first and last seen, share of
    items, view column), ``.drift`` (attributes that appeared, disappeared or changed type
    between ``bucket``s) and ``.to_json()``. Raises TableNotInLake when the lake has no
    changes of the table since ``since``.

    >>> dt.schema(lake, "demo_orders").to_json()["attributes"][0]["name"]
    """
    from ddbtrail.catalog.schema_infer import learn

    lake = _open(lake)
    since_ms = instant_ms(since, "since") if since is not None else None
    if bucket not in ("day", "hour"):
        raise InvalidArgument("bucket", str(bucket), "must be day or hour")
    return learn(lake.files, table, since_ms=since_ms, bucket=bucket)

