"""pack() groups rows into Firehose records exactly as filling one open record per
partition row by row does (the rule the records' bytes depend on)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ddbtrail.delivery.firehose import EncodedRow, pack


def row_by_row(rows: list[EncodedRow], max_rows: int, max_bytes: int) -> list[Any]:
    """The reference: one open record per partition, closed when the next row would not
    fit; records ordered by their first source."""
    open_records: dict[tuple[str, str], list[Any]] = {}
    out: list[Any] = []
    for data, source, partition in rows:
        current = open_records.get(partition)
        if current is not None and (len(current[0]) >= max_rows
                                    or current[2] + len(data) > max_bytes):
            out.append(open_records.pop(partition))
            current = None
        if current is None:
            open_records[partition] = [[data], [source], len(data)]
        else:
            current[0].append(data)
            current[1].append(source)
            current[2] += len(data)
    out += open_records.values()
    out.sort(key=lambda r: r[1][0])
    return [(b"".join(chunks), sources, len(chunks)) for chunks, sources, _ in out]


rows_strategy = st.lists(
    st.tuples(st.integers(1, 40), st.sampled_from([("t", "d1"), ("t", "d2"), ("u", "d1")])),
    max_size=60)


@settings(max_examples=400, deadline=None)
@given(rows_strategy, st.integers(1, 6), st.integers(40, 120))
def test_records_are_those_of_filling_row_by_row(spec: list, max_rows: int,
                                                 max_bytes: int) -> None:
    rows = [EncodedRow(bytes([65 + i % 26]) * (size - 1) + b"\n", i * 2, part)
            for i, (size, part) in enumerate(spec)]
    got = [(r.data, r.sources, r.rows)
           for r in pack(rows, max_rows=max_rows, max_bytes=max_bytes)]
    assert got == row_by_row(rows, max_rows, max_bytes)


def test_a_row_the_size_of_the_limit_has_a_record_of_its_own() -> None:
    rows = [EncodedRow(b"ab\n", 0, ("t", "d")), EncodedRow(b"x" * 9 + b"\n", 1, ("t", "d")),
            EncodedRow(b"c\n", 2, ("t", "d"))]
    assert [r.sources for r in pack(rows, max_bytes=10)] == [[0], [1], [2]]


def test_without_packing_each_row_is_a_record() -> None:
    rows = [EncodedRow(b"a\n", 3, ("t", "d")), EncodedRow(b"b\n", 5, ("t", "d"))]
    assert [(r.data, r.sources, r.rows) for r in pack(rows, enabled=False)] == [
        (b"a\n", [3], 1), (b"b\n", [5], 1)]
