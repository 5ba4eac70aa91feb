"""Learn a table's attribute schema from its change rows, and report how it drifted.

DynamoDB has no schema beyond the key, so ddbtrail learns one from the images in the
lake: every top-level attribute, the DynamoDB types its values had and how often, when it
was first and last seen, and the share of items that carry it. Then, per attribute, the
one SQL type a BI view can give it (the rule is in ``column_type`` and docs/bi.md) and the
drift over time: attributes added, removed, or changing type.

Pure: ``SchemaBuilder`` takes rows (dicts in the schema-v1 shape) and does no I/O.
``read_rows`` is the one adapter, reading a table's rows from a lake through DuckDB.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Literal

from ddbtrail.core import codec
from ddbtrail.core.exceptions import InvalidArgument, InvalidValue, TableNotInLake
from ddbtrail.core.timefmt import iso_ms, parse_instant

if TYPE_CHECKING:
    from ddbtrail.lake.files import Lake

# One DynamoDB type per top-level value; NULL counts as seen but never decides a type.
SCALAR_TYPES: Final = frozenset({"S", "N", "B", "BOOL"})
JSON_TYPES: Final = frozenset({"SS", "NS", "BS", "L", "M"})
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_DECIMAL_PRECISION: Final = 38
# A double keeps 15 significant digits for sure; beyond that JSON re-serialisation rounds.
DOUBLE_SAFE_DIGITS: Final = 15
MAX_IDENTIFIER: Final = 120

Bucketing = Literal["day", "hour"]
_BUCKET_CHARS: Final[dict[str, int]] = {"day": 10, "hour": 13}
_INTEGER_LITERAL: Final = re.compile(r"-?[0-9]+\Z")
# Cheap pre-check on an image's text: a number with more than 15 digits could be there.
_LONG_NUMBER: Final = re.compile(r"[0-9][0-9.]{15}")


# --------------------------------------------------------------------------- statistics


@dataclass(slots=True)
class NumberStats:
    """What the N values of one attribute need: integer literal or not, digits, scale."""

    count: int = 0
    all_integer_literals: bool = True
    min_int: int | None = None
    max_int: int | None = None
    max_scale: int = 0
    max_int_digits: int = 0

    def add(self, text: str) -> None:
        self.count += 1
        if _INTEGER_LITERAL.match(text):
            value = int(text)
            if self.min_int is None or value < self.min_int:
                self.min_int = value
            if self.max_int is None or value > self.max_int:
                self.max_int = value
            # An integer literal's digits are its integer digits; its scale is 0.
            digits = len(text.lstrip("-").lstrip("0")) or 1
            self.max_int_digits = max(self.max_int_digits, digits)
            return
        self.all_integer_literals = False
        try:
            sign_digits_exp = Decimal(text).as_tuple()
        except InvalidOperation:  # parse_plain only yields JSON number literals
            return
        digits = len(sign_digits_exp.digits)
        exponent = int(sign_digits_exp.exponent)
        self.max_scale = max(self.max_scale, -exponent)
        self.max_int_digits = max(self.max_int_digits, digits + exponent)

    @property
    def fits_bigint(self) -> bool:
        return (self.count > 0 and self.all_integer_literals
                and self.min_int is not None and self.max_int is not None
                and self.min_int >= INT64_MIN and self.max_int <= INT64_MAX)

    @property
    def precision_needed(self) -> int:
        """Digits a DECIMAL needs: integer digits of the largest value plus the max scale."""
        return max(self.max_int_digits, 0) + self.max_scale


@dataclass(slots=True)
class Window:
    """First and last time (epoch ms) something was seen."""

    first_ms: int
    last_ms: int

    def add(self, ms: int) -> None:
        if ms < self.first_ms:
            self.first_ms = ms
        elif ms > self.last_ms:
            self.last_ms = ms


@dataclass(slots=True)
class AttributeStats:
    """Everything learnt about one top-level attribute."""

    name: str
    types: Counter[str] = field(default_factory=Counter)
    seen: Window | None = None
    written: Window | None = None  # new images only: when writes last carried it
    numbers: NumberStats = field(default_factory=NumberStats)
    # Non-integer numbers with more than 15 significant digits inside JSON text (sets,
    # lists, maps) or in a varchar column: engines that re-serialise JSON may round them.
    wide_fractions: bool = False
    items: int = 0
    live_items: int = 0
    # bucket -> DynamoDB type -> window of values of that type written in that bucket
    buckets: dict[str, dict[str, Window]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Drift:
    """One change of the schema over time.

    ``kind`` is ``added`` (first written after the first bucket of the window),
    ``removed`` (no write carried it in the later buckets that had writes) or
    ``type_changed`` (the set of types written changed between buckets it was written in).
    ``at_ms`` is when: first write for added, last write for removed, the first value of
    a new type (or the first write in the bucket, when a type only stopped) for changes.
    """

    kind: str
    attribute: str
    at_ms: int
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "attribute": self.attribute, "at": iso_ms(self.at_ms),
                "before": list(self.before), "after": list(self.after), "detail": self.detail}

    def describe(self) -> str:
        when = iso_ms(self.at_ms)
        if self.kind == "added":
            return f"{self.attribute!r} appeared at {when}{_paren(self.detail)}"
        if self.kind == "removed":
            return f"{self.attribute!r} last written at {when}{_paren(self.detail)}"
        return (f"{self.attribute!r} changed type {'/'.join(self.before)} -> "
                f"{'/'.join(self.after)} at {when}{_paren(self.detail)}")


def _paren(text: str) -> str:
    return f" ({text})" if text else ""


# --------------------------------------------------------------------------- SQL typing


ColumnKind = Literal["varchar", "bigint", "decimal", "boolean", "binary", "json"]


@dataclass(frozen=True, slots=True)
class ColumnType:
    """The SQL type a view gives an attribute, how its value is read, and why not better.

    ``kind`` says how the value is read from the image: ``varchar``/``bigint``/
    ``decimal``/``boolean``/``binary`` from the scalar's text, ``json`` as JSON text.
    """

    kind: ColumnKind
    sql_type: str
    warning: str | None = None


def column_type(stats: AttributeStats, *, binary: str = "base64") -> ColumnType:
    """The view column type of one attribute. The documented rule (docs/bi.md):

    S -> varchar; N -> bigint when every value is an integer literal that fits 64 bits,
    else decimal(38, s) with the max scale seen, or varchar with a warning when the values
    need more than 38 digits; BOOL -> boolean; B -> varchar (base64) or varbinary
    (``binary="varbinary"``); SS/NS/BS/L/M -> varchar holding JSON text. NULL values never
    decide. Two or more types -> varchar with a warning naming the attribute (the scalar's
    text, or JSON text of every value when a set, list or map was among them). Never double.
    """
    typed = sorted(t for t in stats.types if t != "NULL")
    name = stats.name
    if not typed:
        return ColumnType("varchar", "varchar")
    if len(typed) > 1:
        as_json = any(t in JSON_TYPES for t in typed)
        how = "JSON text" if as_json else "text"
        warning = (f"attribute {name!r} has conflicting types {'/'.join(typed)} "
                   f"({_type_counts(stats.types)}); typed as varchar ({how})")
        if stats.wide_fractions:
            warning += "; " + _wide_note()
        return ColumnType("json" if as_json else "varchar", "varchar", warning)
    (only,) = typed
    if only == "S":
        return ColumnType("varchar", "varchar")
    if only == "BOOL":
        return ColumnType("boolean", "boolean")
    if only == "B":
        if binary == "varbinary":
            return ColumnType("binary", "varbinary")
        return ColumnType("varchar", "varchar")
    if only == "N":
        nums = stats.numbers
        if nums.fits_bigint:
            return ColumnType("bigint", "bigint")
        if nums.precision_needed <= MAX_DECIMAL_PRECISION:
            return ColumnType("decimal", f"decimal({MAX_DECIMAL_PRECISION}, {nums.max_scale})")
        warning = (f"attribute {name!r}: N values need {nums.precision_needed} digits "
                   f"({max(nums.max_int_digits, 0)} integer + {nums.max_scale} fraction), more "
                   f"than decimal({MAX_DECIMAL_PRECISION}) holds; typed as varchar (exact text)")
        if stats.wide_fractions:
            warning += "; " + _wide_note()
        return ColumnType("varchar", "varchar", warning)
    note = (f"attribute {name!r} ({only}): " + _wide_note()) if stats.wide_fractions else None
    return ColumnType("json", "varchar", note)


def _wide_note() -> str:
    return ("it holds non-integer numbers with more than 15 significant digits, which JSON "
            "text may round on engines that re-serialise JSON (DuckDB); the row's image keeps "
            "every digit")


def _type_counts(types: Mapping[str, int]) -> str:
    return ", ".join(f"{t} x{n}" for t, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0])))


# --------------------------------------------------------------------------- identifiers


def sanitize_identifier(name: str) -> str:
    """A lowercase SQL identifier ``[a-z_][a-z0-9_]*`` for an attribute or table name.

    camelCase splits on case changes (``customerId`` -> ``customer_id``), accents drop
    (``ü`` -> ``u``), every other run of characters outside ``[a-z0-9]`` becomes ``_``,
    a leading digit gets an ``a_`` prefix, nothing left gives ``attr``; at most 120 chars.
    """
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not text:
        text = "attr"
    if text[0].isdigit():
        text = "a_" + text
    return text[:MAX_IDENTIFIER].rstrip("_") or "attr"


def column_names(attributes: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Attribute name -> unique column name, never one of ``reserved``.

    Attributes are taken in code-point order of their names; a sanitized name already
    taken gets ``_2``, ``_3``... (``A`` -> ``a``, then ``a`` -> ``a_2``). Deterministic.
    """
    taken = set(reserved)
    out: dict[str, str] = {}
    for attr in sorted(set(attributes)):
        base = sanitize_identifier(attr)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base[:MAX_IDENTIFIER - len(str(n)) - 1]}_{n}"
        taken.add(candidate)
        out[attr] = candidate
    return out


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True, slots=True)
class TableSchema:
    """The learnt schema of one table over a window of changes."""

    table: str
    changes: int
    items: int
    live_items: int
    first_ms: int | None
    last_ms: int | None
    since_ms: int | None
    bucket: str
    attributes: tuple[AttributeStats, ...]
    drift: tuple[Drift, ...]

    def attribute(self, name: str) -> AttributeStats:
        for stats in self.attributes:
            if stats.name == name:
                return stats
        raise KeyError(name)

    def warnings(self, *, binary: str = "base64") -> list[str]:
        """One line per attribute whose view column is weaker than its values deserve."""
        return [w for s in self.attributes if (w := column_type(s, binary=binary).warning)]

    def to_json(self, *, binary: str = "base64") -> dict[str, Any]:
        """The report as plain JSON (what ``ddbtrail schema`` prints as json)."""
        cols = column_names(s.name for s in self.attributes)
        return {
            "table": self.table,
            "since": iso_ms(self.since_ms) if self.since_ms is not None else None,
            "first_change": iso_ms(self.first_ms) if self.first_ms is not None else None,
            "last_change": iso_ms(self.last_ms) if self.last_ms is not None else None,
            "changes": self.changes,
            "items": self.items,
            "live_items": self.live_items,
            "bucket": self.bucket,
            "attributes": [
                {
                    "name": s.name,
                    "column": cols[s.name],
                    "sql_type": column_type(s, binary=binary).sql_type,
                    "types": dict(sorted(s.types.items())),
                    "first_seen": iso_ms(s.seen.first_ms) if s.seen else None,
                    "last_seen": iso_ms(s.seen.last_ms) if s.seen else None,
                    "items": s.items,
                    "item_share": _share(s.items, self.items),
                    "live_items": s.live_items,
                    "live_share": _share(s.live_items, self.live_items),
                }
                for s in self.attributes
            ],
            "drift": [d.to_json() for d in self.drift],
            "warnings": self.warnings(binary=binary),
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seq_key(seq: str) -> tuple[int, str]:
    # SequenceNumbers are decimal strings of varying length: compare as numbers.
    return (len(seq), seq)


class SchemaBuilder:
    """Accumulates rows of one table; ``build()`` gives the TableSchema.

    Rows are dicts with the schema-v1 columns (event_id, sequence_number, action,
    item_key, keys, old_image, new_image, type_hints, timestamp). Any order; rows should
    already be deduplicated by event_id (a duplicate only inflates counts).
    The image read from a row is its new image, else its old image (REMOVE, OLD_IMAGE
    streams), else its keys (KEYS_ONLY streams). Drift looks at writes only: rows that
    are not REMOVEs.
    """

    def __init__(self, table: str, *, bucket: Bucketing = "day",
                 since_ms: int | None = None) -> None:
        if bucket not in _BUCKET_CHARS:
            raise InvalidArgument("bucket", bucket, "must be day or hour")
        self.table = table
        self.bucket = bucket
        self.since_ms = since_ms
        # The hot loop only touches these cells: (bucket, is_write) -> (attribute, type)
        # -> [count, first ms, last ms]. build() folds them into AttributeStats.
        self._cells: dict[tuple[str, bool], dict[tuple[str, str], list[int]]] = {}
        self._numbers: dict[str, NumberStats] = {}
        self._wide: set[str] = set()
        self._item_attrs: dict[str, set[str]] = {}
        # item_key -> (sequence key, removed, attributes of the latest image)
        self._latest: dict[str, tuple[tuple[int, str], bool, frozenset[str]]] = {}
        self._write_buckets: dict[str, Window] = {}
        self._bucket_of_hour: dict[int, str] = {}
        self.changes = 0
        self._first: int | None = None
        self._last: int | None = None

    def add(self, row: Mapping[str, Any]) -> None:
        """Account for one change row. Raises InvalidValue naming the event on bad JSON."""
        event_id = row.get("event_id")
        try:
            self._add(row)
        except InvalidValue as exc:
            raise InvalidValue(f"event {event_id}: {exc}") from exc

    def add_all(self, rows: Iterable[Mapping[str, Any]]) -> SchemaBuilder:
        for row in rows:
            self.add(row)
        return self

    def _bucket(self, ts: int) -> str:
        hour = ts // 3_600_000
        bucket = self._bucket_of_hour.get(hour)
        if bucket is None:
            bucket = self._bucket_of_hour[hour] = iso_ms(ts)[: _BUCKET_CHARS[self.bucket]]
        return bucket

    def _add(self, row: Mapping[str, Any]) -> None:
        ts = int(row["timestamp"])
        self.changes += 1
        if self._first is None or self._last is None:
            self._first = self._last = ts
        elif ts < self._first:
            self._first = ts
        elif ts > self._last:
            self._last = ts
        action = row.get("action")
        text, root = _state_image(row)
        image: Mapping[str, Any] = {}
        if text is not None:
            parsed = codec.parse_plain(text)
            if not isinstance(parsed, Mapping):
                raise InvalidValue(f"{root} is not a JSON object")
            image = parsed
        hints: Mapping[str, str] = {}
        if image and row.get("type_hints"):
            try:
                raw_hints = json.loads(row["type_hints"])
            except ValueError as exc:
                raise InvalidValue(f"type_hints is not valid JSON ({exc})") from exc
            if isinstance(raw_hints, Mapping):
                hints = raw_hints
        is_write = action != "REMOVE"
        bucket = self._bucket(ts)
        if is_write:
            win = self._write_buckets.get(bucket)
            if win is None:
                self._write_buckets[bucket] = Window(ts, ts)
            else:
                win.add(ts)
        item_key = str(row.get("item_key"))
        names = frozenset(image)
        if names:
            self._item_attrs.setdefault(item_key, set()).update(names)
        seq = _seq_key(str(row.get("sequence_number") or ""))
        latest = self._latest.get(item_key)
        if latest is None or seq >= latest[0]:
            self._latest[item_key] = (seq, action == "REMOVE", names)
        if not image:
            return
        maybe_wide = text is not None and _LONG_NUMBER.search(text) is not None
        cells = self._cells.get((bucket, is_write))
        if cells is None:
            cells = self._cells[(bucket, is_write)] = {}
        for name, value in image.items():
            hint = hints.get(root + "/" + codec.pointer_token(name)) if hints else None
            kind = _value_type(value, hint)
            cell = cells.get((name, kind))
            if cell is None:
                cells[(name, kind)] = [1, ts, ts]
            else:
                cell[0] += 1
                if ts < cell[1]:
                    cell[1] = ts
                elif ts > cell[2]:
                    cell[2] = ts
            if kind == "N":
                nums = self._numbers.get(name)
                if nums is None:
                    nums = self._numbers[name] = NumberStats()
                nums.add(value)
            if maybe_wide and kind in ("N", "NS", "L", "M") and name not in self._wide \
                    and _has_wide_fraction(value):
                self._wide.add(name)

    def _attribute_stats(self) -> dict[str, AttributeStats]:
        attrs: dict[str, AttributeStats] = {}
        for (bucket, is_write), cells in self._cells.items():
            for (name, kind), (count, first, last) in cells.items():
                stats = attrs.get(name)
                if stats is None:
                    stats = attrs[name] = AttributeStats(
                        name, numbers=self._numbers.get(name, NumberStats()),
                        wide_fractions=name in self._wide)
                stats.types[kind] += count
                stats.seen = _merge(stats.seen, first, last)
                if is_write:
                    stats.written = _merge(stats.written, first, last)
                    stats.buckets.setdefault(bucket, {})[kind] = Window(first, last)
        return attrs

    def build(self) -> TableSchema:
        """The schema so far: attributes in name order, drift in time order."""
        stats = self._attribute_stats()
        for names in self._item_attrs.values():
            for name in names:
                stats[name].items += 1
        live = 0
        for _seq, removed, latest_names in self._latest.values():
            if removed:
                continue
            live += 1
            for name in latest_names:
                stats[name].live_items += 1
        attributes = tuple(stats[n] for n in sorted(stats))
        return TableSchema(
            table=self.table,
            changes=self.changes,
            items=len(self._item_attrs),
            live_items=live,
            first_ms=self._first,
            last_ms=self._last,
            since_ms=self.since_ms,
            bucket=self.bucket,
            attributes=attributes,
            drift=tuple(detect_drift(attributes, self._write_buckets)),
        )


def _merge(window: Window | None, first: int, last: int) -> Window:
    if window is None:
        return Window(first, last)
    window.add(first)
    window.add(last)
    return window


def _state_image(row: Mapping[str, Any]) -> tuple[str | None, str]:
    for column in ("new_image", "old_image", "keys"):
        text = row.get(column)
        if text is not None:
            return str(text), "/" + column
    return None, ""


def _value_type(value: Any, hint: str | None) -> str:
    """The DynamoDB type of a plain JSON value (from ``parse_plain``) and its hint."""
    if hint is not None:
        return hint
    if isinstance(value, codec.JsonNumber):
        return "N"
    if isinstance(value, str):
        return "S"
    if value is True or value is False:
        return "BOOL"
    if value is None:
        return "NULL"
    if isinstance(value, Mapping):
        return "M"
    return "L"


def _has_wide_fraction(value: Any) -> bool:
    """True when ``value`` is or holds a non-integer number of more than 15 digits.

    JSON re-serialisation (DuckDB's JSON functions) may round such a number. A top-level N
    is read exactly as bigint/decimal; it only matters when the column ends up varchar.
    """
    stack = [value]
    while stack:
        cur = stack.pop()
        if isinstance(cur, codec.JsonNumber):
            if not _INTEGER_LITERAL.match(cur):
                digits = len(Decimal(cur).as_tuple().digits)
                if digits > DOUBLE_SAFE_DIGITS:
                    return True
        elif isinstance(cur, Mapping):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


def detect_drift(attributes: Sequence[AttributeStats],
                 write_buckets: Mapping[str, Window]) -> list[Drift]:
    """Drift between time buckets (UTC days or hours) that had writes, in time order.

    An attribute is *added* when the first bucket that wrote it is not the window's first,
    *removed* when later buckets had writes but none carried it, and *type_changed* each
    time the set of non-NULL types written differs from the previous bucket that wrote it.
    A gap (absent for a while, then back) is neither. Rules are in docs/bi.md.
    """
    if not write_buckets:
        return []
    ordered = sorted(write_buckets)
    first_bucket, last_bucket = ordered[0], ordered[-1]
    out: list[Drift] = []
    for stats in attributes:
        if not stats.buckets or stats.written is None:
            continue
        seen = sorted(stats.buckets)
        if seen[0] != first_bucket:
            earlier = sum(1 for b in ordered if b < seen[0])
            out.append(Drift("added", stats.name, stats.written.first_ms,
                             after=_non_null(stats.buckets[seen[0]]),
                             detail=f"absent from writes in {earlier} earlier "
                                    f"{_plural(earlier, 'bucket')}"))
        if seen[-1] != last_bucket:
            later = [b for b in ordered if b > seen[-1]]
            out.append(Drift("removed", stats.name, stats.written.last_ms,
                             before=_non_null(stats.buckets[seen[-1]]),
                             detail=f"no write carried it in {len(later)} later "
                                    f"{_plural(len(later), 'bucket')} with writes, "
                                    f"up to {later[-1]}"))
        previous: tuple[str, ...] | None = None
        for bucket in seen:
            per_type = stats.buckets[bucket]
            current = _non_null(per_type)
            if not current:
                continue
            if previous is not None and current != previous:
                new_types = [t for t in current if t not in previous]
                if new_types:
                    at = min(per_type[t].first_ms for t in new_types)
                else:
                    at = min(w.first_ms for w in per_type.values())
                out.append(Drift("type_changed", stats.name, at, before=previous, after=current,
                                 detail=f"in bucket {bucket}"))
            previous = current
    out.sort(key=lambda d: (d.at_ms, d.attribute, d.kind))
    return out


def _non_null(per_type: Mapping[str, Window]) -> tuple[str, ...]:
    return tuple(sorted(t for t in per_type if t != "NULL"))


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


# --------------------------------------------------------------------------- adapters


def parse_since(text: str | None) -> int | None:
    """``since`` (any instant form, see ``timefmt.parse_instant``) -> epoch milliseconds."""
    if text is None:
        return None
    return parse_instant(text, what="since")


ROW_COLUMNS: Final = ("event_id", "sequence_number", "action", "item_key", "keys",
                      "old_image", "new_image", "type_hints", "timestamp")


def read_rows(lake: Lake, table: str, *, since_ms: int | None = None,
              batch_rows: int = 10_000) -> Iterator[dict[str, Any]]:
    """A table's change rows from the lake, deduplicated by event_id, oldest first.

    Reads through ddbtrail's DuckDB connection (the ``changes`` view), pruned to the
    partitions at or after ``since_ms``. Streams in batches of ``batch_rows``.
    """
    from ddbtrail.query import duck

    dt_from = iso_ms(since_ms)[:10] if since_ms is not None else None
    con = duck.connect(lake, table_name=table, dt_from=dt_from)
    cols = ", ".join(f'"{c}"' for c in ROW_COLUMNS)
    where = ["table_name = ?"]
    params: list[Any] = [table]
    if since_ms is not None:
        where += ["dt >= ?", '"timestamp" >= ?']
        params += [iso_ms(since_ms)[:10], since_ms]
    sql = (f"SELECT {cols} FROM changes WHERE {' AND '.join(where)} "
           "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingested_at) = 1 "
           'ORDER BY "timestamp", length(sequence_number), sequence_number')
    try:
        cur = con.execute(sql, params)
        while batch := cur.fetchmany(batch_rows):
            for values in batch:
                yield dict(zip(ROW_COLUMNS, values, strict=True))
    finally:
        con.close()


def infer_schema(lake: Lake, table: str, *, since_ms: int | None = None,
                 bucket: Bucketing = "day") -> TableSchema:
    """Learn ``table``'s schema from the lake (see SchemaBuilder for what counts)."""
    builder = SchemaBuilder(table, bucket=bucket, since_ms=since_ms)
    return builder.add_all(read_rows(lake, table, since_ms=since_ms)).build()


def learn(lake: Lake, table: str, *, since_ms: int | None = None,
          bucket: Bucketing = "day") -> TableSchema:
    """``table``'s schema learnt from the lake's changes at or after ``since_ms``.

    TableNotInLake when the lake has no changes of the table (in that window), LakeError
    when there is no lake.
    """
    from ddbtrail.lake.tables import require_table

    require_table(lake, table)
    schema = infer_schema(lake, table, since_ms=since_ms, bucket=bucket)
    if not schema.changes:
        raise TableNotInLake(f"table {table}: no changes in lake {lake.uri} since "
                             f"{iso_ms(since_ms or 0)}")
    return schema
