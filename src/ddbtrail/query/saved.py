"""The saved Athena queries: load, list, bind parameters, run on DuckDB or on Athena.

Each ``athena_queries/<name>.sql`` is Athena (Trino) SQL with ``?`` execution parameters
and a header comment::

    -- name: item_history
    -- kind: query                 (query | view | audit)
    -- question: What happened to one item? ...
    -- parameters:
    --   table_name  string     DynamoDB table name          (one line per ?, in order)
    --   at          timestamp  ... [default: ...]           (a name may repeat: same value)
    -- output:
    --   sequence_number  ...

A line holding only ``{{ name }}`` stands for ``athena_queries/fragments/<name>.sql``
(SQL that several queries share, with the same header, ``kind: fragment``): loading puts
the fragment's SQL there, each line indented like the placeholder, so ``Query.sql`` is
what Athena and DuckDB run. The query's header still lists every ``?``, the fragment's
too. A fragment may use fragments; a copy left unexpanded is not SQL and fails to parse.

Locally the SQL is transpiled by sqlglot (athena -> duckdb): each ``?`` becomes a named
DuckDB parameter, so a value given once fills every ``?`` of its name and DuckDB binds
it. On Athena the values go as execution parameters through awswrangler.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import SqlglotError

from ddbtrail.core.cloudtrail import ATHENA_TABLE
from ddbtrail.core.exceptions import InvalidArgument, LakeError, QueryError, QueryUsageError
from ddbtrail.core.timefmt import iso_ms, parse_instant
from ddbtrail.query import receipts_table, trail_table
from ddbtrail.query.duck import connect, sql_string
from ddbtrail.resources import queries_dir

if TYPE_CHECKING:
    from ddbtrail.lake.cloudtrail import TrailLogs
    from ddbtrail.lake.files import Lake
    from ddbtrail.query.trino import TrinoSettings

PARAM_TYPES: Final = ("string", "timestamp", "integer")
KINDS: Final = ("query", "view", "audit")
ENGINES: Final = ("duckdb", "athena", "trino")
_NAME: Final = re.compile(r"[a-z][a-z0-9_]*\Z")
_PARAM_LINE: Final = re.compile(r"(\w+)\s+(\w+)\s*(.*)\Z")
_DEFAULT: Final = re.compile(r"\[default:\s*([^\]]*)\]")
FRAGMENTS_DIR: Final = "fragments"
FRAGMENT_KIND: Final = "fragment"
MAX_FRAGMENT_DEPTH: Final = 4
# A fragment placeholder: a line holding only {{ name }}; its indentation prefixes each line.
_INCLUDE: Final = re.compile(r"([ \t]*)\{\{\s*(\S*?)\s*\}\}[ \t]*\Z")
_BRACES: Final = re.compile(r"\{\{.*\}\}")
# Placeholder names get a prefix so that a parameter named like a keyword (from) parses.
_PREFIX: Final = "p_"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Param:
    """One ``?`` of a query, in order."""

    name: str
    type: str
    description: str
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """A saved query: its header and its Athena SQL."""

    name: str
    kind: str
    question: str
    params: tuple[Param, ...]  # one per ``?``, in the order they occur
    outputs: tuple[tuple[str, str], ...]
    sql: str  # fragments expanded: the text Athena and DuckDB run
    path: Path
    fragments: tuple[str, ...] = ()  # the fragments it uses, theirs included, sorted

    @property
    def parameters(self) -> tuple[Param, ...]:
        """Distinct parameters, first occurrence first: what a user supplies."""
        seen: dict[str, Param] = {}
        for p in self.params:
            seen.setdefault(p.name, p)
        return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class Fragment:
    """SQL that saved queries share: ``fragments/<name>.sql``, not a query of its own."""

    name: str
    question: str
    params: tuple[Param, ...]  # one per ``?`` of ``sql``, in order
    sql: str  # the lines after the header, its own fragments expanded
    path: Path
    fragments: tuple[str, ...] = ()


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class _Header:
    fields: dict[str, str]
    params: tuple[Param, ...]
    outputs: tuple[tuple[str, str], ...]
    body_line: int  # index of the first line after the header comment


def _parse_header(text: str, where: str) -> _Header:
    fields: dict[str, str] = {}
    params: list[Param] = []
    outputs: list[tuple[str, str]] = []
    section = None
    lines = text.splitlines()
    body_line = len(lines)
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            body_line = index
            break
        body = line[2:]
        key, sep, value = body.strip().partition(":")
        if sep and not body.startswith("  ") and key in ("name", "kind", "question",
                                                         "parameters", "output", "note"):
            section = key
            if key in ("parameters", "output"):
                continue
            if key == "note" and "note" in fields:
                fields["note"] += " " + value.strip()
            else:
                fields[key] = value.strip()
            continue
        item = body.strip()
        if section == "parameters" and item:
            m = _PARAM_LINE.match(item)
            if not m or m.group(2) not in PARAM_TYPES:
                raise QueryError(f"{where}: bad parameter line {item!r} "
                                 f"(expected: name {'|'.join(PARAM_TYPES)} description)")
            d = _DEFAULT.search(m.group(3))
            params.append(Param(m.group(1), m.group(2), m.group(3),
                                d.group(1).strip() if d else None))
        elif section == "output" and item:
            col, _, desc = item.partition(" ")
            outputs.append((col, desc.strip()))
        elif section in ("question", "note") and item:
            fields[section] += " " + item
    return _Header(fields, tuple(params), tuple(outputs), body_line)


def _check_name(fields: Mapping[str, str], path: Path, where: str) -> str:
    name = fields.get("name", "")
    if name != path.stem or not _NAME.match(name):
        raise QueryError(f"{where}: header 'name: {name}' must equal the file name")
    if not fields.get("question"):
        raise QueryError(f"{where}: the header has no 'question:'")
    return name


def parse_query(text: str, path: Path) -> Query:
    """Parse a .sql file's header, expand its fragments (``path``'s folder's
    ``fragments/``) and check the header against the SQL. Raises QueryError."""
    header = _parse_header(text, path.name)
    name = _check_name(header.fields, path, path.name)
    kind = header.fields.get("kind", "query")
    if kind not in KINDS:
        hint = f" (a fragment lives in {FRAGMENTS_DIR}/)" if kind == FRAGMENT_KIND else ""
        raise QueryError(f"{path.name}: kind {kind!r} is not one of {', '.join(KINDS)}{hint}")
    sql, used = _expand(text.strip().rstrip(";"), path.name, path.parent / FRAGMENTS_DIR, ())
    _check_params(sql, header.params, used, path.name)
    return Query(name, kind, header.fields["question"], header.params, header.outputs, sql,
                 path, _names(used))


def parse_fragment(text: str, path: Path, chain: tuple[str, ...] = ()) -> Fragment:
    """Parse ``fragments/<name>.sql``: header (``kind: fragment``) and SQL, its own
    fragments expanded (``chain``: the fragments being expanded around it). Raises
    QueryError naming the file."""
    where = f"{FRAGMENTS_DIR}/{path.name}"
    header = _parse_header(text, where)
    name = _check_name(header.fields, path, where)
    if header.fields.get("kind") != FRAGMENT_KIND:
        raise QueryError(f"{where}: a fragment's header says 'kind: {FRAGMENT_KIND}'")
    body = textwrap.dedent("\n".join(text.splitlines()[header.body_line:])).strip()
    if not body or body.endswith(";"):
        raise QueryError(f"{where}: a fragment is SQL to stand inside a query: not empty, "
                         "no ';'")
    sql, used = _expand(body, where, path.parent, (*chain, name))
    _check_params(sql, header.params, used, where)
    return Fragment(name, header.fields["question"], header.params, sql, path, _names(used))


_Used = list[tuple[int, int, Fragment]]  # (start, end) of each expanded fragment's text
_Stamp = tuple[tuple[str, int], ...]


def _stamp(fragments_dir: Path) -> _Stamp:
    """The fragments' names and modification times, as cache keys: an edited fragment
    reloads the fragments and queries that use it."""
    return tuple((p.name, p.stat().st_mtime_ns) for p in sorted(fragments_dir.glob("*.sql")))


def _names(used: _Used) -> tuple[str, ...]:
    return tuple(sorted({n for _, _, f in used for n in (f.name, *f.fragments)}))


def _expand(sql: str, where: str, folder: Path, chain: tuple[str, ...]) -> tuple[str, _Used]:
    """``sql`` with each placeholder line replaced by its fragment's SQL."""
    out: list[str] = []
    used: _Used = []
    offset = 0
    for number, line in enumerate(sql.split("\n"), 1):
        m = _INCLUDE.match(line)
        if m is None:
            if _BRACES.search(line) and not line.lstrip().startswith("--"):
                raise QueryError(f"{where}: line {number}: a fragment placeholder stands "
                                 f"alone on its line: {line.strip()!r}")
            text = line
        else:
            indent, name = m.groups()
            fragment = _load_fragment(name, folder, where, chain)
            text = "\n".join(indent + x if x.strip() else x for x in fragment.sql.split("\n"))
            used.append((offset, offset + len(text), fragment))
        out.append(text)
        offset += len(text) + 1
    return "\n".join(out), used


def _load_fragment(name: str, folder: Path, where: str, chain: tuple[str, ...]) -> Fragment:
    if name in chain:
        raise QueryError(f"{where}: fragment {name!r} includes itself: "
                         f"{' -> '.join((*chain, name))}")
    if len(chain) >= MAX_FRAGMENT_DEPTH:
        raise QueryError(f"{where}: fragment {name!r}: fragments nest at most "
                         f"{MAX_FRAGMENT_DEPTH} deep ({' -> '.join((*chain, name))})")
    path = folder / f"{name}.sql"
    if not _NAME.match(name) or not path.is_file():
        known = ", ".join(p.stem for p in sorted(folder.glob("*.sql"))) or "none"
        raise QueryError(f"{where}: unknown fragment {name!r} (no {FRAGMENTS_DIR}/{name}.sql; "
                         f"known: {known})")
    try:
        return _fragment_cached(path, _stamp(folder), chain)
    except QueryError as exc:
        raise QueryError(f"{where}: fragment {name!r}: {exc}") from exc


@cache
def _fragment_cached(path: Path, stamp: _Stamp, chain: tuple[str, ...]) -> Fragment:
    return parse_fragment(path.read_text(encoding="utf-8"), path, chain)


def _check_params(sql: str, params: Sequence[Param], used: _Used, where: str) -> None:
    """The header lists one parameter per ``?``, and each ``?`` a fragment brings has the
    type that fragment's header gives it."""
    spans = _placeholder_spans(sql, where)
    if len(spans) != len(params):
        raise QueryError(f"{where}: the SQL has {len(spans)} '?' but the header lists "
                         f"{len(params)} parameters")
    for start, end, fragment in used:
        inside = [i for i, (s, _) in enumerate(spans) if start <= s < end]
        for index, theirs in zip(inside, fragment.params, strict=True):
            ours = params[index]
            if ours.type != theirs.type:
                raise QueryError(
                    f"{where}: parameter {index + 1} ({ours.name}, {ours.type}) is fragment "
                    f"{fragment.name}'s {theirs.name} ({theirs.type}): check the order")


def _placeholder_spans(sql: str, where: str) -> list[tuple[int, int]]:
    """Character spans of the ``?`` placeholders, in text order (not in strings/comments)."""
    try:
        tokens = sqlglot.Dialect.get_or_raise("athena").tokenize(sql)
    except SqlglotError as exc:
        raise QueryError(f"{where}: cannot tokenize: {exc}") from exc
    return [(t.start, t.end + 1) for t in tokens if t.token_type == TokenType.PLACEHOLDER]


def catalogue(folder: Path | None = None) -> list[Query]:
    """Every saved query (and view), sorted by name. Raises QueryError on a bad file."""
    folder = folder or queries_dir()
    stamp = _stamp(folder / FRAGMENTS_DIR)
    return [_load_path(p, stamp) for p in sorted(folder.glob("*.sql"))]


def fragments(folder: Path | None = None) -> list[Fragment]:
    """Every fragment in ``<folder>/fragments/``, sorted by name. Raises QueryError."""
    folder = (folder or queries_dir()) / FRAGMENTS_DIR
    return [parse_fragment(p.read_text(encoding="utf-8"), p)
            for p in sorted(folder.glob("*.sql"))]


def load(name: str, folder: Path | None = None) -> Query:
    """One saved query by name. Raises QueryError naming the known ones if absent."""
    folder = folder or queries_dir()
    path = folder / f"{name}.sql"
    if not _NAME.match(name) or not path.is_file():
        known = ", ".join(p.stem for p in sorted(folder.glob("*.sql")))
        raise QueryUsageError(f"unknown query {name!r}; known: {known}")
    return _load_path(path, _stamp(folder / FRAGMENTS_DIR))


@cache
def _load_cached(path: Path, mtime_ns: int, fragments_stamp: _Stamp) -> Query:
    return parse_query(path.read_text(encoding="utf-8"), path)


def _load_path(path: Path, fragments_stamp: _Stamp) -> Query:
    return _load_cached(path, path.stat().st_mtime_ns, fragments_stamp)


# --------------------------------------------------------------------------- binding


def bind(query: Query, values: Mapping[str, str]) -> dict[str, str | int]:
    """Validate user values (strings) by parameter type; fill defaults.

    Timestamps become ISO-8601 UTC with milliseconds, integers become int. Raises
    QueryError naming the unknown, missing or bad parameter.
    """
    known = {p.name: p for p in query.parameters}
    for name in values:
        if name not in known:
            raise QueryUsageError(f"query {query.name}: unknown parameter {name!r}; it takes "
                             f"{', '.join(known) or 'none'}")
    bound: dict[str, str | int] = {}
    for name, param in known.items():
        raw = values.get(name, param.default)
        if raw is None:
            raise QueryUsageError(f"query {query.name}: missing parameter {name!r} "
                             f"({param.type}: {param.description})")
        what = f"query {query.name}: parameter {name}"
        if param.type == "timestamp":
            try:
                bound[name] = iso_ms(parse_instant(raw, what=what))
            except InvalidArgument as exc:
                raise QueryUsageError(str(exc)) from exc
        elif param.type == "integer":
            try:
                bound[name] = int(raw)
            except ValueError as exc:
                raise QueryUsageError(f"{what}: {raw!r} is not an integer") from exc
        else:
            bound[name] = raw
    return bound


def positional(query: Query, bound: Mapping[str, str | int]) -> list[str | int]:
    """The values in ``?`` order (a repeated name repeats its value)."""
    return [bound[p.name] for p in query.params]


def athena_literal(value: str | int) -> str:
    """An Athena execution parameter: SQL literal text (strings quoted, quotes doubled)."""
    if isinstance(value, int):
        return str(value)
    return sql_string(value)


# --------------------------------------------------------------------------- transpile

# Rewrites for what sqlglot's athena -> duckdb translation gets wrong; each takes and
# returns an expression tree.
Rewrite = Callable[[exp.Expr], exp.Expr]


def unnest_rows(tree: exp.Expr) -> exp.Expr:
    """``UNNEST(array_of_rows) AS t (a, b)``: Trino gives each row field its own column;
    DuckDB's UNNEST gives one struct column. As DuckDB: a lateral subquery unnesting the
    structs one level deeper (``max_depth := 2``), its columns renamed by the alias."""
    for node in list(tree.find_all(exp.Unnest)):
        alias = node.args.get("alias")
        if len(node.expressions) != 1 or alias is None or len(alias.columns) < 2:
            continue
        explode = exp.Explode(this=node.expressions[0].copy(), expressions=[
            exp.PropertyEQ(this=exp.to_identifier("max_depth"),
                           expression=exp.Literal.number(2))])
        node.replace(exp.Lateral(this=exp.Subquery(this=exp.Select(expressions=[explode])),
                                 alias=alias.copy()))
    return tree


REWRITES: list[Rewrite] = [unnest_rows]


def to_duckdb(query: Query) -> str:
    """The query as DuckDB SQL; each ``?`` becomes ``$p_<parameter name>``."""
    return _to_duckdb(query.sql, tuple(p.name for p in query.params), query.name)


@cache
def _to_duckdb(sql: str, names: tuple[str, ...], where: str) -> str:
    # Name the placeholders in the text first: sqlglot's tree walk does not visit them
    # in text order (a LIMIT ? comes first).
    pieces, last = [], 0
    for (start, end), name in zip(_placeholder_spans(sql, where), names, strict=True):
        pieces += [sql[last:start], f":{_PREFIX}{name}"]
        last = end
    pieces.append(sql[last:])
    return transpile("".join(pieces), where)


def transpile(sql: str, where: str, extra_rewrites: Sequence[Rewrite] = ()) -> str:
    """Athena SQL as DuckDB SQL: parse as Athena, apply REWRITES then ``extra_rewrites``
    (each rewrite once), generate DuckDB. The result is for DuckDB to run, never to be
    parsed again by sqlglot. Raises QueryError naming ``where`` when it cannot translate.
    """
    rewrites = list(REWRITES)
    rewrites += [r for r in extra_rewrites if r not in rewrites]
    try:
        tree: exp.Expr = sqlglot.parse_one(sql, read="athena")
        for rewrite in rewrites:
            tree = rewrite(tree)
        return tree.sql(dialect="duckdb")
    except SqlglotError as exc:
        raise QueryError(f"{where}: cannot translate to DuckDB: {exc}") from exc


# --------------------------------------------------------------------------- views


def view_name(query: Query) -> str:
    """The engine's name of a saved view: ``view_changes_ordered`` -> ``changes_ordered``."""
    return query.name.removeprefix("view_")


@cache
def _tables_read(sql: str) -> frozenset[str]:
    """Names of the tables and views a query reads (its own CTE names excluded)."""
    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except SqlglotError:
        return frozenset()
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return frozenset(t.name for t in tree.find_all(exp.Table) if t.name not in ctes)


def install_views(query: Query, con: duckdb.DuckDBPyConnection) -> None:
    """Create on ``con`` the saved views ``query`` selects from (``changes_ordered`` ...),
    and theirs in turn, as DuckDB temporary views, so that the same SQL runs as on Athena
    (where the maintenance state machine creates them). Raises QueryError."""
    install_views_for(query.sql, con, query.path.parent)


def install_views_for(sql: str, con: duckdb.DuckDBPyConnection,
                      folder: Path | None = None) -> None:
    """``install_views`` for any SQL text that reads saved views by name."""
    views = {view_name(q): q for q in catalogue(folder) if q.kind == "view"}
    for name in sorted(_tables_read(sql) & views.keys()):
        # fetchall: a result left unread blocks the connection's next statement.
        present = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                              [name]).fetchall()
        if present[0][0]:
            continue
        install_views(views[name], con)
        try:
            con.execute(f"CREATE TEMP VIEW {name} AS {to_duckdb(views[name])}")
        except duckdb.Error as exc:
            raise QueryError(f"view {name} failed on DuckDB: {_first_line(exc)}") from exc


# --------------------------------------------------------------------------- running


def run_duckdb(query: Query, values: Mapping[str, str],
               con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Run on a connection with a ``changes`` view (see ``ddbtrail.query.duck.connect``).

    Raises QueryError for bad parameters, LakeError when a lake file cannot be read.
    """
    bound = bind(query, values)
    sql = to_duckdb(query)
    install_views(query, con)
    if ATHENA_TABLE in _tables_read(query.sql):
        trail_table.ensure(con)  # empty unless the caller registered CloudTrail logs
    if receipts_table.TABLE in _tables_read(query.sql):
        receipts_table.ensure(con)  # empty unless the caller registered the receipts
    try:
        params = {_PREFIX + k: v for k, v in bound.items()}
        return con.sql(sql, params=params).to_arrow_table()
    except (duckdb.IOException, duckdb.InvalidInputException, pa.ArrowException) as exc:
        raise LakeError(f"query {query.name}: cannot read the lake: "
                        f"{_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise QueryError(f"query {query.name} failed on DuckDB: {_first_line(exc)}") from exc


def run_local(query: Query, values: Mapping[str, str], lake: Lake, *,
              cloudtrail: TrailLogs | None = None) -> pa.Table:
    """Run on DuckDB over ``lake``, listing only the table a ``table_name`` value names.

    ``cloudtrail`` fills ``cloudtrail_logs`` for a query that reads it: the days from
    ``from`` to the day after ``to`` when the query takes both, else every day.
    """
    table = values.get("table_name")
    if table is None or table == "*" or not any(p.name == "table_name" for p in query.params):
        table = None
    con = connect(lake, table_name=table)
    try:
        if receipts_table.TABLE in _tables_read(query.sql):
            receipts_table.register(con, lake, table)
        if cloudtrail is not None:
            trail_table.register(con, cloudtrail, trail_table.days_between(
                values.get("from"), values.get("to")))
        return run_duckdb(query, values, con)
    finally:
        con.close()


def run_athena(query: Query, values: Mapping[str, str], *, database: str,
               workgroup: str | None = None, s3_output: str | None = None,
               boto3_session: Any = None, endpoint_url: str | None = None) -> pa.Table:
    """Run the saved SQL on Athena through awswrangler, values as execution parameters.

    awswrangler starts the query and waits for it; values are sent as SQL literals in
    ``?`` order. ``endpoint_url`` overrides the Athena and S3 endpoints.
    """
    try:
        import awswrangler as wr
    except ImportError as exc:
        raise QueryError("the athena engine needs awswrangler: pip install "
                         "'ddbtrail[athena]'") from exc
    bound = bind(query, values)
    params = [athena_literal(v) for v in positional(query, bound)]
    if endpoint_url:
        wr.config.athena_endpoint_url = endpoint_url
        wr.config.s3_endpoint_url = endpoint_url
    try:
        frame = wr.athena.read_sql_query(
            query.sql, database=database, workgroup=workgroup or "primary", s3_output=s3_output,
            params=params or None, paramstyle="qmark", ctas_approach=False,
            boto3_session=boto3_session)
    except Exception as exc:  # awswrangler raises botocore and its own errors alike
        raise QueryError(f"query {query.name} failed on Athena: {_first_line(exc)}") from exc
    return pa.Table.from_pandas(frame, preserve_index=False)


def run_trino(query: Query, values: Mapping[str, str], settings: TrinoSettings | None = None,
              *, con: Any = None) -> pa.Table:
    """Run the saved SQL unchanged on Trino (``ddbtrail.query.trino``), the values bound in
    ``?`` order as Athena binds them. Raises QueryUsageError for bad parameters, QueryError
    naming the query and Trino's error."""
    from ddbtrail.query.trino import run_sql

    bound = bind(query, values)
    return run_sql(query.name, query.sql, positional(query, bound), settings, con=con)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """A result as a list of dicts, in result order."""
    return list(table.to_pylist())


def run(name: str, values: Mapping[str, str] | None = None, *, engine: str = "duckdb",
        lake: Lake | None = None, database: str = "ddbtrail", workgroup: str | None = None,
        s3_output: str | None = None, boto3_session: Any = None,
        endpoint_url: str | None = None, cloudtrail: TrailLogs | None = None,
        trino: TrinoSettings | None = None) -> pa.Table:
    """Load and run a saved query by name on ``engine``: duckdb over ``lake``, athena, or
    trino (the server ``trino`` names; its defaults otherwise)."""
    query = load(name)
    values = dict(values or {})
    if engine == "duckdb":
        if lake is None:
            raise QueryError("the duckdb engine needs a lake")
        return run_local(query, values, lake, cloudtrail=cloudtrail)
    if engine == "athena":
        return run_athena(query, values, database=database, workgroup=workgroup,
                          s3_output=s3_output, boto3_session=boto3_session,
                          endpoint_url=endpoint_url)
    if engine == "trino":
        return run_trino(query, values, trino)
    raise QueryError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
