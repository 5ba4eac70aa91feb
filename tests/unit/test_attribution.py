"""Matching changes to CloudTrail write events: examples, then properties over workloads
whose true authors are known."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddbtrail.core import attribution as at
from ddbtrail.core import cloudtrail as ct

TYPES = {"Orders": {"Id": "N"}}
ALICE, BOB, CAROL = (f"arn:aws:sts::123456789012:assumed-role/r/{n}" for n in
                     ("alice", "bob", "carol"))


def ev(eid: str, second: int, actor: str, item: int, *, table: str = "Orders",
       error: str | None = None, ip: str = "192.0.2.1") -> ct.WriteEvent:
    return ct.WriteEvent(
        event_id=eid, event_name="UpdateItem", event_time="", second=second, actor=actor,
        actor_type="AssumedRole", source_ip=ip, user_agent="ua", error_code=error,
        targets=(ct.Target(table, "Update", key={"Id": item}),))


def ch(second: int, item: int, *, ms: int = 0, ttl: bool = False,
       action: str = "MODIFY") -> at.Change:
    return at.Change("Orders", f'{{"Id":{item}}}', second * 1000 + ms, action, ttl)


def test_one_event_in_the_second_is_exact_with_its_details() -> None:
    (a,) = at.attribute([ch(10, 1, ms=999)], [ev("e1", 10, ALICE, 1)], TYPES)
    assert a == at.Attribution(ALICE, "exact", "192.0.2.1", "ua", "UpdateItem", "e1")


def test_no_event_failed_event_other_item_other_table_are_none() -> None:
    events = [ev("f", 10, ALICE, 1, error="ConditionalCheckFailedException"),
              ev("o", 10, BOB, 2), ev("t", 10, CAROL, 1, table="Other"),
              ev("late", 12, CAROL, 1), ev("early", 8, CAROL, 1)]
    (a,) = at.attribute([ch(10, 1)], events, TYPES)
    assert a == at.NO_MATCH


def test_two_principals_in_one_second_are_ambiguous_never_ordered() -> None:
    events = [ev("e1", 10, ALICE, 1), ev("e2", 10, BOB, 1)]
    got = at.attribute([ch(10, 1, ms=1), ch(10, 1, ms=2)], events, TYPES)
    for a in got:
        assert a.actor is None and a.actor_match == "ambiguous"
        assert a.candidates == (ALICE, BOB)
        assert a.candidate_event_ids == ("e1", "e2")


def test_one_principal_twice_in_one_second_is_exact_without_an_event_id() -> None:
    events = [ev("e1", 10, ALICE, 1, ip="192.0.2.1"), ev("e2", 10, ALICE, 1, ip="192.0.2.2")]
    got = at.attribute([ch(10, 1, ms=1), ch(10, 1, ms=2)], events, TYPES)
    assert [(a.actor, a.actor_match, a.cloudtrail_event_id, a.source_ip) for a in got] == [
        (ALICE, "exact", None, None)] * 2


def test_two_changes_one_event_is_ambiguous() -> None:
    got = at.attribute([ch(10, 1, ms=1), ch(10, 1, ms=2)], [ev("e1", 10, ALICE, 1)], TYPES)
    assert [a.actor_match for a in got] == ["ambiguous", "ambiguous"]
    assert got[0].candidates == (ALICE,)


def test_ttl_is_the_service_and_snapshots_are_no_ones() -> None:
    got = at.attribute([ch(10, 1, ttl=True, action="REMOVE"), ch(10, 1, action="SNAPSHOT"),
                        ch(10, 1)], [ev("e1", 10, ALICE, 1)], TYPES)
    assert got[0] == at.TTL and got[0].actor == "dynamodb.amazonaws.com"
    assert got[1] == at.NO_MATCH
    assert got[2].actor == ALICE and got[2].actor_match == "exact"  # TTL took no event


def test_duplicate_deliveries_of_one_event_count_once() -> None:
    (a,) = at.attribute([ch(10, 1)], [ev("e1", 10, ALICE, 1), ev("e1", 10, ALICE, 1)], TYPES)
    assert a.actor_match == "exact" and a.cloudtrail_event_id == "e1"


def test_a_request_logged_the_second_before_its_change_is_its_candidate() -> None:
    # The reported case: alice's request arrived at 9.99 and changed the item at 10.01;
    # bob's write at 10 changed nothing. Bob alone in the change's second is not proof.
    events = [ev("a", 9, ALICE, 1), ev("b", 10, BOB, 1)]
    (a,) = at.attribute([ch(10, 1, ms=10)], events, TYPES)
    assert (a.actor, a.actor_match) == (None, "ambiguous")
    assert a.candidates == (ALICE, BOB) and a.candidate_event_ids == ("a", "b")
    (a,) = at.attribute([ch(10, 1)], [ev("a", 9, ALICE, 1)], TYPES)
    assert (a.actor, a.actor_match, a.cloudtrail_event_id) == (ALICE, "exact", "a")


def test_another_principals_write_the_second_after_is_a_candidate_too() -> None:
    # The two clocks are not one: a write logged a second after the change may be its.
    events = [ev("a", 10, ALICE, 1), ev("b", 11, BOB, 1)]
    (a,) = at.attribute([ch(10, 1)], events, TYPES)
    assert a.actor_match == "ambiguous" and a.candidates == (ALICE, BOB)


def test_writes_two_seconds_apart_are_each_exact() -> None:
    events = [ev("a", 10, ALICE, 1), ev("b", 12, BOB, 1), ev("c", 14, CAROL, 1)]
    got = at.attribute([ch(10, 1), ch(12, 1), ch(14, 1)], events, TYPES)
    assert [(a.actor, a.actor_match, a.cloudtrail_event_id) for a in got] == [
        (ALICE, "exact", "a"), (BOB, "exact", "b"), (CAROL, "exact", "c")]


def test_one_principal_writing_every_second_is_exact_throughout() -> None:
    events = [ev(f"e{n}", 10 + n, ALICE, 1) for n in range(6)]
    got = at.attribute([ch(10 + n, 1, ms=500) for n in range(6)], events, TYPES)
    assert {(a.actor, a.actor_match) for a in got} == {(ALICE, "exact")}


def test_an_unlogged_change_beside_a_logged_one_leaves_both_ambiguous() -> None:
    got = at.attribute([ch(10, 1), ch(11, 1)], [ev("a", 10, ALICE, 1)], TYPES)
    assert [(a.actor_match, a.candidates) for a in got] == [("ambiguous", (ALICE,))] * 2


def test_tolerance_widens_the_window_either_side() -> None:
    events = [ev("a", 10, ALICE, 1)]
    for change_second in (12, 8):
        assert at.attribute([ch(change_second, 1)], events, TYPES)[0] == at.NO_MATCH
        (a,) = at.attribute([ch(change_second, 1)], events, TYPES, tolerance_s=1)
        assert (a.actor, a.actor_match) == (ALICE, "exact")
    with pytest.raises(ValueError, match="tolerance_s"):
        at.attribute([ch(10, 1)], events, TYPES, tolerance_s=-1)


def test_ttl_deletes_and_failed_calls_beside_a_write_leave_it_exact() -> None:
    # TTL deletes take no event and are no change of a run; a failed call is no write.
    events = [ev("a", 10, ALICE, 1), ev("f", 11, BOB, 1, error="ConditionalCheckFailed"),
              ev("g", 9, CAROL, 1, error="ValidationException")]
    got = at.attribute([ch(10, 1), ch(11, 1, ttl=True, action="REMOVE")], events, TYPES)
    assert [(a.actor, a.actor_match) for a in got] == [
        (ALICE, "exact"), (at.TTL_ACTOR, "exact")]


def test_a_transaction_counts_for_each_item_it_writes() -> None:
    def multi(eid: str, second: int, actor: str, name: str, op: str) -> ct.WriteEvent:
        return ct.WriteEvent(
            event_id=eid, event_name=name, event_time="", second=second, actor=actor,
            actor_type="AssumedRole", source_ip=None, user_agent=None, error_code=None,
            targets=(ct.Target("Orders", op, key={"Id": 1}),
                     ct.Target("Orders", op, key={"Id": 2})))
    # Bob's transaction writes items 1 and 2 in second 10; alice writes item 2 in 11.
    events = [multi("t", 10, BOB, "TransactWriteItems", "Update"), ev("a", 11, ALICE, 2)]
    got = at.attribute([ch(10, 1), ch(10, 2), ch(11, 2)], events, TYPES)
    assert [(a.actor, a.actor_match) for a in got] == [
        (BOB, "exact"), (None, "ambiguous"), (None, "ambiguous")]
    assert got[0].cloudtrail_event_id == "t" and got[0].event_name == "TransactWriteItems"
    # The same with a batch two seconds before alice's write: each is exact.
    events = [multi("b", 10, BOB, "BatchWriteItem", "Put"), ev("a", 12, ALICE, 2)]
    got = at.attribute([ch(10, 1), ch(10, 2), ch(12, 2)], events, TYPES)
    assert [(a.actor, a.actor_match) for a in got] == [
        (BOB, "exact"), (BOB, "exact"), (ALICE, "exact")]


def test_a_partiql_write_of_an_unknown_item_keeps_a_match_from_being_exact() -> None:
    insert = ct.WriteEvent(
        event_id="p", event_name="ExecuteStatement", event_time="", second=10, actor=BOB,
        actor_type="IAMUser", source_ip=None, user_agent=None, error_code=None,
        targets=(ct.Target("", "PartiQL", statement=(
            "INSERT INTO Orders VALUE {'Id': ***(Redacted), 'status': ***(Redacted)}")),))
    (a,) = at.attribute([ch(10, 1)], [ev("e1", 10, ALICE, 1), insert], TYPES)
    assert a.actor_match == "ambiguous" and a.candidates == (ALICE, BOB)
    (a,) = at.attribute([ch(12, 1)], [insert], TYPES)
    assert a.actor_match == "none"


def test_a_huge_second_is_called_ambiguous() -> None:
    events = [ev(f"e{i}", 10, ALICE if i % 2 else BOB, 1) for i in range(30)]
    got = at.attribute([ch(10, 1, ms=i) for i in range(30)], events, TYPES)
    assert {a.actor_match for a in got} == {"ambiguous"}


# --------------------------------------------------------------------------- properties

PRINCIPALS = (ALICE, BOB, CAROL)


@dataclass(frozen=True)
class Write:
    principal: str
    item: int
    second: int
    kind: str  # changed | noop | failed | unlogged
    lag: int  # seconds from the logged request to the change (negative: the clocks differ)


@st.composite
def workloads(draw: st.DrawFn, *, kinds: tuple[str, ...], max_lag: int = 1,
              principals: tuple[str, ...] = PRINCIPALS) -> list[Write]:
    return draw(st.lists(st.builds(
        Write, st.sampled_from(principals), st.integers(1, 2), st.integers(0, 6),
        st.sampled_from(kinds), st.integers(-max_lag, max_lag)), max_size=14))


def _materialise(writes: list[Write]) -> tuple[list[at.Change], list[str], list[ct.WriteEvent]]:
    changes, truth, events = [], [], []
    for n, w in enumerate(writes):
        if w.kind != "unlogged":
            events.append(ev(f"e{n:02d}", w.second, w.principal, w.item,
                             error="X" if w.kind == "failed" else None))
        if w.kind in ("changed", "unlogged"):
            changes.append(ch(w.second + w.lag, w.item, ms=n))
            truth.append(w.principal)
    return changes, truth, events


def _sound(writes: list[Write], tolerance: int) -> list[at.Attribution]:
    changes, truth, events = _materialise(writes)
    got = at.attribute(changes, events, TYPES, tolerance_s=tolerance)
    for change, who, a in zip(changes, truth, got, strict=True):
        if a.actor_match == "exact":
            assert a.actor == who, (change, a)
        elif a.actor_match == "ambiguous":
            assert a.actor is None and a.candidates
        else:
            assert a.actor is None
    return got


def _writers_near(change: at.Change, events: list[ct.WriteEvent], reach: int) -> set[str]:
    """Principals of the item's successful events within ``reach`` seconds either side."""
    item = int(change.item_key[6:-1])
    return {e.actor for e in events if not e.failed and e.targets[0].key == {"Id": item}
            and abs(e.second - change.second) <= reach}


@settings(max_examples=300, deadline=None)
@given(workloads(kinds=("changed", "noop", "failed")))
def test_never_names_the_wrong_principal_with_no_ops(writes: list[Write]) -> None:
    changes, _, events = _materialise(writes)
    got = _sound(writes, 0)
    for change, a in zip(changes, got, strict=True):
        writers = _writers_near(change, events, 1)
        if len(writers) > 1:  # another principal's write either side: never exact
            assert a.actor_match == "ambiguous" and set(a.candidates) == writers
        if not writers:
            assert a.actor_match == "none"


@settings(max_examples=300, deadline=None)
@given(workloads(kinds=("changed", "unlogged", "failed")))
def test_never_names_the_wrong_principal_with_unlogged_changes(writes: list[Write]) -> None:
    _sound(writes, 0)


@settings(max_examples=300, deadline=None)
@given(workloads(kinds=("changed", "noop", "failed"), max_lag=2))
def test_tolerance_one_is_sound_when_requests_are_two_seconds_off(writes: list[Write]) -> None:
    _sound(writes, 1)


@settings(max_examples=300, deadline=None)
@given(workloads(kinds=("changed", "unlogged", "failed"), max_lag=2))
def test_tolerance_one_is_sound_with_unlogged_changes(writes: list[Write]) -> None:
    _sound(writes, 1)


@settings(max_examples=200, deadline=None)
@given(workloads(kinds=("changed", "failed"), principals=(ALICE,)))
def test_every_change_of_a_fully_logged_one_writer_workload_is_exact(
        writes: list[Write]) -> None:
    changes, truth, events = _materialise(writes)
    for who, a in zip(truth, at.attribute(changes, events, TYPES), strict=True):
        assert (a.actor, a.actor_match) == (who, "exact")
