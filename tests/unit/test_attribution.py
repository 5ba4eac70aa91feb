"""Matching changes to CloudTrail write events: examples, then properties over workloads
whose true authors are known."""

from __future__ import annotations

from dataclasses import dataclass

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
              ev("late", 11, CAROL, 1), ev("early", 9, CAROL, 1)]
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


def test_tolerance_pairs_across_a_boundary_when_the_pairing_is_forced() -> None:
    # alice's request arrived at 10.99 and was applied at 11.01; bob wrote at 11, applied 12.
    events = [ev("a", 10, ALICE, 1), ev("b", 11, BOB, 1)]
    changes = [ch(11, 1), ch(12, 1)]
    assert [a.actor_match for a in at.attribute(changes, events, TYPES)] == ["exact", "none"]
    got = at.attribute(changes, events, TYPES, tolerance_s=1)
    assert [(a.actor, a.actor_match) for a in got] == [(ALICE, "exact"), (BOB, "exact")]


def test_a_partiql_write_of_an_unknown_item_keeps_a_match_from_being_exact() -> None:
    insert = ct.WriteEvent(
        event_id="p", event_name="ExecuteStatement", event_time="", second=10, actor=BOB,
        actor_type="IAMUser", source_ip=None, user_agent=None, error_code=None,
        targets=(ct.Target("", "PartiQL", statement=(
            "INSERT INTO Orders VALUE {'Id': ***(Redacted), 'status': ***(Redacted)}")),))
    (a,) = at.attribute([ch(10, 1)], [ev("e1", 10, ALICE, 1), insert], TYPES)
    assert a.actor_match == "ambiguous" and a.candidates == (ALICE, BOB)
    (a,) = at.attribute([ch(11, 1)], [insert], TYPES)
    assert a.actor_match == "none"


def test_a_huge_second_is_called_ambiguous_not_searched_forever() -> None:
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
    crosses: bool  # applied in the next second


@st.composite
def workloads(draw: st.DrawFn, *, kinds: tuple[str, ...], crossing: bool) -> list[Write]:
    return draw(st.lists(st.builds(
        Write, st.sampled_from(PRINCIPALS), st.integers(1, 2), st.integers(0, 4),
        st.sampled_from(kinds), st.booleans() if crossing else st.just(False)),
        max_size=14))


def _materialise(writes: list[Write]) -> tuple[list[at.Change], list[str], list[ct.WriteEvent]]:
    changes, truth, events = [], [], []
    for n, w in enumerate(writes):
        if w.kind != "unlogged":
            events.append(ev(f"e{n:02d}", w.second, w.principal, w.item,
                             error="X" if w.kind == "failed" else None))
        if w.kind in ("changed", "unlogged"):
            changes.append(ch(w.second + (1 if w.crosses else 0), w.item, ms=n))
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


@settings(max_examples=300, deadline=None)
@given(workloads(kinds=("changed", "noop", "failed"), crossing=False))
def test_never_names_the_wrong_principal_with_no_ops(writes: list[Write]) -> None:
    changes, truth, events = _materialise(writes)
    got = _sound(writes, 0)
    ok = [e for e in events if not e.failed]
    for change, who, a in zip(changes, truth, got, strict=True):
        mine = [e for e in ok if e.second == change.second
                and e.targets[0].key == {"Id": int(change.item_key[6:-1])}]
        same_second = [c for c in changes if c.second == change.second
                       and c.item_key == change.item_key]
        if len(mine) == 1 and len(same_second) == 1:  # the Done-when case
            assert (a.actor, a.actor_match) == (who, "exact")
        if not mine:
            assert a.actor_match == "none"


@settings(max_examples=300, deadline=None)
@given(workloads(kinds=("changed", "unlogged", "failed"), crossing=False))
def test_never_names_the_wrong_principal_with_unlogged_changes(writes: list[Write]) -> None:
    _sound(writes, 0)


@settings(max_examples=300, deadline=None)
@given(workloads(kinds=("changed", "noop", "failed"), crossing=True))
def test_tolerance_one_is_sound_when_requests_cross_a_second(writes: list[Write]) -> None:
    _sound(writes, 1)


@settings(max_examples=200, deadline=None)
@given(workloads(kinds=("changed", "failed"), crossing=False))
def test_every_change_of_a_fully_logged_workload_with_one_writer_per_second_is_exact(
        writes: list[Write]) -> None:
    changes, truth, events = _materialise(writes)
    got = at.attribute(changes, events, TYPES)
    for change, who, a in zip(changes, truth, got, strict=True):
        writers = {t for c, t in zip(changes, truth, strict=True)
                   if c.second == change.second and c.item_key == change.item_key}
        if len(writers) == 1:
            assert (a.actor, a.actor_match) == (who, "exact")
        else:
            assert a.actor_match == "ambiguous" and set(a.candidates) >= writers
