"""Schema inference: attribute stats, the SQL type rule, identifiers and drift (pure)."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddbtrail.catalog.schema_infer import (
    SchemaBuilder,
    TableSchema,
    column_names,
    column_type,
    parse_since,
    sanitize_identifier,
)
from ddbtrail.core.exceptions import InvalidArgument, InvalidValue
from ddbtrail.core.flatten import flatten_record

DAY_S = 86_400
T0 = 1_714_557_600  # 2024-05-01T10:00:00Z, seconds


def change(n: int, action: str, key: int, new: dict[str, Any] | None = None,
           old: dict[str, Any] | None = None, *, at: int = T0, table: str = "Orders",
           seq: str | None = None) -> dict[str, Any]:
    """A DynamoDB Streams record (as Lambda gets it) -> its schema-v1 row."""
    ddb: dict[str, Any] = {"Keys": {"Id": {"N": str(key)}},
                           "SequenceNumber": seq or str(10**20 + n),
                           "ApproximateCreationDateTime": at,
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        ddb["NewImage"] = {"Id": {"N": str(key)}, **new}
    if old is not None:
        ddb["OldImage"] = {"Id": {"N": str(key)}, **old}
    record = {"eventID": f"ev-{n}", "eventName": action, "eventSource": "aws:dynamodb",
              "awsRegion": "us-east-1", "dynamodb": ddb,
              "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/x"}
    return flatten_record(record, ingested_at_ms=(at + 5) * 1000)


def build(rows: list[dict[str, Any]], **kw: Any) -> TableSchema:
    return SchemaBuilder("Orders", **kw).add_all(rows).build()


def drift_rows() -> list[dict[str, Any]]:
    """Three days: 'promo' added on day 2, 'legacy' gone after day 1, 'qty' N -> S on day 3."""
    return [
        change(1, "INSERT", 1, {"qty": {"N": "1"}, "legacy": {"S": "x"}, "name": {"S": "a"}}),
        change(2, "INSERT", 2, {"qty": {"N": "2"}, "legacy": {"S": "y"}, "name": {"S": "b"}},
               at=T0 + 60),
        change(3, "MODIFY", 1, {"qty": {"N": "5"}, "name": {"S": "a"}, "promo": {"BOOL": True}},
               {"qty": {"N": "1"}, "legacy": {"S": "x"}, "name": {"S": "a"}}, at=T0 + DAY_S),
        change(4, "MODIFY", 2, {"qty": {"N": "7"}, "name": {"S": "b"}},
               {"qty": {"N": "2"}, "legacy": {"S": "y"}, "name": {"S": "b"}},
               at=T0 + DAY_S + 60),
        change(5, "MODIFY", 1, {"qty": {"S": "five"}, "name": {"S": "a"}, "promo": {"BOOL": False}},
               {"qty": {"N": "5"}, "name": {"S": "a"}, "promo": {"BOOL": True}},
               at=T0 + 2 * DAY_S + 30),
        # A REMOVE on day 3 still carries 'legacy' in its old image: not a write.
        change(6, "REMOVE", 3, None, {"legacy": {"S": "z"}}, at=T0 + 2 * DAY_S + 40),
    ]


# --------------------------------------------------------------------------- drift


def test_drift_finds_added_removed_and_changed_type() -> None:
    schema = build(drift_rows())
    kinds = {(d.kind, d.attribute): d for d in schema.drift}
    assert set(kinds) == {("added", "promo"), ("removed", "legacy"), ("type_changed", "qty")}

    added = kinds["added", "promo"]
    assert added.at_ms == (T0 + DAY_S) * 1000
    assert added.after == ("BOOL",)

    removed = kinds["removed", "legacy"]
    assert removed.at_ms == (T0 + 60) * 1000  # its last write, not the later REMOVE
    assert removed.before == ("S",)

    changed = kinds["type_changed", "qty"]
    assert (changed.before, changed.after) == (("N",), ("S",))
    assert changed.at_ms == (T0 + 2 * DAY_S + 30) * 1000
    assert "qty" in changed.describe()
    assert "N -> S" in changed.describe()
    # In time order.
    assert [d.at_ms for d in schema.drift] == sorted(d.at_ms for d in schema.drift)


def test_attribute_on_every_day_and_gaps_are_not_drift() -> None:
    rows = [
        change(1, "INSERT", 1, {"a": {"S": "x"}, "gappy": {"N": "1"}}),
        change(2, "MODIFY", 1, {"a": {"S": "y"}}, at=T0 + DAY_S),
        change(3, "MODIFY", 1, {"a": {"S": "z"}, "gappy": {"N": "2"}}, at=T0 + 2 * DAY_S),
    ]
    assert build(rows).drift == ()


def test_mixed_types_every_day_are_a_conflict_not_drift() -> None:
    rows = [change(i, "INSERT", i, {"v": {"N": "1"} if i % 2 else {"S": "one"}},
                   at=T0 + (i // 2) * DAY_S) for i in range(6)]
    schema = build(rows)
    assert [d for d in schema.drift if d.attribute == "v"] == []
    ctype = column_type(schema.attribute("v"))
    assert ctype.sql_type == "varchar"
    assert ctype.warning is not None
    assert "'v'" in ctype.warning
    assert "N/S" in ctype.warning


def test_hour_buckets_see_drift_within_a_day() -> None:
    rows = [change(1, "INSERT", 1, {"v": {"N": "1"}}),
            change(2, "MODIFY", 1, {"v": {"S": "x"}}, at=T0 + 3600)]
    assert build(rows).drift == ()
    (drift,) = build(rows, bucket="hour").drift
    assert (drift.kind, drift.before, drift.after) == ("type_changed", ("N",), ("S",))


def test_row_order_does_not_matter() -> None:
    rows = drift_rows()
    expected = build(rows).to_json()
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert build(shuffled).to_json() == expected


# --------------------------------------------------------------------------- statistics


def test_types_counts_first_last_and_item_shares() -> None:
    schema = build(drift_rows())
    report = {a["name"]: a for a in schema.to_json()["attributes"]}
    assert schema.items == 3
    assert schema.live_items == 2  # item 3 was removed
    assert report["qty"]["types"] == {"N": 4, "S": 1}
    assert report["qty"]["first_seen"] == "2024-05-01T10:00:00.000Z"
    assert report["qty"]["last_seen"] == "2024-05-03T10:00:30.000Z"
    assert report["legacy"]["items"] == 3  # items 1, 2 and (in its REMOVE) 3
    assert report["legacy"]["item_share"] == 1.0
    assert report["legacy"]["live_share"] == 0.0  # no live item carries it any more
    assert report["promo"]["item_share"] == round(1 / 3, 4)
    assert report["promo"]["live_share"] == 0.5


def test_hinted_types_are_recognised() -> None:
    rows = [change(1, "INSERT", 1, {"b": {"B": "AAEC"}, "ss": {"SS": ["x"]}, "ns": {"NS": ["1"]},
                                    "bs": {"BS": ["AA=="]}, "l": {"L": [{"S": "x"}]},
                                    "m": {"M": {"k": {"N": "1"}}}, "z": {"NULL": True}})]
    types = {a.name: set(a.types) for a in build(rows).attributes}
    assert types == {"Id": {"N"}, "b": {"B"}, "ss": {"SS"}, "ns": {"NS"}, "bs": {"BS"},
                     "l": {"L"}, "m": {"M"}, "z": {"NULL"}}


def test_bad_image_names_the_event() -> None:
    row = change(1, "INSERT", 1, {"a": {"S": "x"}})
    row["new_image"] = "{not json"
    with pytest.raises(InvalidValue, match="event ev-1"):
        build([row])
    row = change(2, "INSERT", 2, {"b": {"B": "AAEC"}})
    row["type_hints"] = "{oops"
    with pytest.raises(InvalidValue, match="event ev-2: type_hints"):
        build([row])


# --------------------------------------------------------------------------- the type rule


def typed(*values: dict[str, Any], binary: str = "base64") -> tuple[str, str | None]:
    rows = [change(i, "INSERT", i, {"v": v}) for i, v in enumerate(values)]
    ctype = column_type(build(rows).attribute("v"), binary=binary)
    return ctype.sql_type, ctype.warning


@pytest.mark.parametrize(("values", "sql_type"), [
    ([{"S": "x"}], "varchar"),
    ([{"N": "1"}, {"N": "-9223372036854775808"}, {"N": "9223372036854775807"}], "bigint"),
    ([{"N": "9223372036854775808"}], "decimal(38, 0)"),
    ([{"N": "1"}, {"N": "1.0"}], "decimal(38, 1)"),  # "1.0" is not a bigint literal
    ([{"N": "1.5"}, {"N": "-0.125"}, {"N": "7"}], "decimal(38, 3)"),
    ([{"N": "12345678901234567890123456789012345678"}], "decimal(38, 0)"),
    ([{"N": "0.12345678901234567890123456789012345678"}], "decimal(38, 38)"),
    ([{"N": "1234567890123456789012345678.0123456789"}], "decimal(38, 10)"),
    ([{"BOOL": True}, {"NULL": True}], "boolean"),
    ([{"NULL": True}], "varchar"),
    ([{"N": "3"}, {"NULL": True}], "bigint"),
    ([{"B": "AAEC"}], "varchar"),
    ([{"SS": ["a"]}], "varchar"),
    ([{"M": {"k": {"S": "v"}}}], "varchar"),
])
def test_type_rule(values: list[dict[str, Any]], sql_type: str) -> None:
    assert typed(*values) == (sql_type, None)


def test_binary_can_be_varbinary() -> None:
    assert typed({"B": "AAEC"}, binary="varbinary") == ("varbinary", None)


def test_numbers_beyond_38_digits_become_varchar_with_a_warning_never_double() -> None:
    # 1.5 needs one integer digit; with 38 fraction digits that is 39 in all.
    sql_type, warning = typed({"N": "1.5"}, {"N": "0.12345678901234567890123456789012345678"})
    assert sql_type == "varchar"
    assert warning is not None
    assert "'v'" in warning
    assert "39 digits" in warning
    sql_type, warning = typed({"N": "1E+100"})
    assert sql_type == "varchar"
    assert warning is not None
    assert "'v'" in warning


def test_conflicts_with_a_set_list_or_map_read_as_json_text() -> None:
    rows = [change(1, "INSERT", 1, {"v": {"S": "x"}}), change(2, "INSERT", 2, {"v": {"L": []}})]
    ctype = column_type(build(rows).attribute("v"))
    assert (ctype.kind, ctype.sql_type) == ("json", "varchar")
    assert ctype.warning is not None
    assert "L/S" in ctype.warning
    assert "JSON text" in ctype.warning


def test_wide_fractions_in_json_text_are_warned_about() -> None:
    sql_type, warning = typed({"L": [{"N": "0.1234567890123456789"}]})
    assert sql_type == "varchar"
    assert warning is not None
    assert "'v'" in warning
    assert typed({"L": [{"N": "12345678901234567890123"}, {"N": "0.5"}]}) == ("varchar", None)


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(("name", "identifier"), [
    ("customerId", "customer_id"),
    ("userID", "user_id"),
    ("Order Total ($)", "order_total"),
    ("ünïcode", "unicode"),
    ("2fa", "a_2fa"),
    ("__", "attr"),
    ('we"ird.na-me', "we_ird_na_me"),
    ("日本", "attr"),
])
def test_sanitize_identifier(name: str, identifier: str) -> None:
    assert sanitize_identifier(name) == identifier


def test_column_names_dedupe_deterministically_and_avoid_reserved() -> None:
    names = column_names(["a", "A", "action", "a_2"], reserved={"action"})
    assert names == {"A": "a", "a": "a_2", "a_2": "a_2_2", "action": "action_2"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), max_size=20, unique=True))
def test_column_names_are_unique_valid_identifiers(attrs: list[str]) -> None:
    names = column_names(attrs, reserved={"event_id", "item_key"})
    assert set(names) == set(attrs)
    values = list(names.values())
    assert len(set(values)) == len(values)
    assert not {"event_id", "item_key"} & set(values)
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]{0,119}", v) for v in values)


# --------------------------------------------------------------------------- options


def test_parse_since() -> None:
    assert parse_since(None) is None
    assert parse_since("2024-05-01") == 1_714_521_600_000
    assert parse_since("2024-05-01T10:00:00Z") == T0 * 1000
    assert parse_since("2024-05-01T12:00:00+02:00") == T0 * 1000
    with pytest.raises(InvalidArgument, match=r"^since "):
        parse_since("yesterday")


def test_bucket_must_be_day_or_hour() -> None:
    with pytest.raises(InvalidArgument, match=r"^bucket "):
        SchemaBuilder("Orders", bucket="week")  # type: ignore[arg-type]
