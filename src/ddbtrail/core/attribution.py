"""Who made each change: match lake changes to CloudTrail write events. Pure, no I/O.

The rule (docs/cloudtrail.md says it for users):

1. A change and a write event can match only when they name the same table (by name or
   ARN) and the same canonical ``item_key``, and the event did not fail (``errorCode``).
   A PartiQL write whose key cannot be read (CloudTrail redacts INSERT values) may be any
   item's of its table: it stays a candidate for each, so it can make a match ambiguous,
   never vanish.
2. Times are seconds on both sides: DynamoDB Streams rounds ``ApproximateCreationDateTime``
   down to the second, CloudTrail logs ``eventTime`` (when the request arrived) to the
   second, from another clock. An event is a *candidate* of a change when their seconds
   are at most ``reach = 1 + tolerance`` apart, either side: a request logged in the
   second before its change (it arrived just before a boundary) is one.
3. An item's changes and candidate events fall into *runs*: sorted by second, a run
   breaks where two neighbours are more than ``reach`` seconds apart. A change is
   ``exact`` when it has a candidate, every event of its run is one principal's, and the
   run holds at least as many events as changes; ``none`` when it has no candidate;
   ``ambiguous`` otherwise, listing its candidates' principals. Within a run nothing is
   paired by order, which second-precision times cannot give.
4. TTL deletes carry their principal in the stream (``dynamodb.amazonaws.com``): exact,
   and they take no CloudTrail event. Backfill SNAPSHOT rows were written by no one.

Why an exact answer is right, when each change lies within ``reach`` of its write: if
every change's write was logged, the change's own event is a candidate, so in its run,
so the run's one principal is its writer. If instead every logged write that succeeded
changed its item, and the change's write was not logged, each event of its run made
another change of the run, so the run has more changes than events: not exact. A write
that changed nothing (no stream record) next to a change whose write was not logged, in
one run, can still mislead it; that is the limit of second-precision data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ddbtrail.core.cloudtrail import WriteEvent, event_items

EXACT: Final = "exact"
AMBIGUOUS: Final = "ambiguous"
NONE: Final = "none"
TTL_ACTOR: Final = "dynamodb.amazonaws.com"
# Extra seconds, either side, beyond the one second every candidate window has.
DEFAULT_TOLERANCE_S: Final = 0


@dataclass(frozen=True, slots=True)
class Change:
    """What the matcher needs of one lake row."""

    table_name: str
    item_key: str
    timestamp_ms: int
    action: str = "MODIFY"
    ttl_delete: bool = False

    @property
    def second(self) -> int:
        return self.timestamp_ms // 1000


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who made one change, and how sure that is."""

    actor: str | None
    actor_match: str  # exact | ambiguous | none
    source_ip: str | None = None
    user_agent: str | None = None
    event_name: str | None = None
    cloudtrail_event_id: str | None = None
    candidates: tuple[str, ...] = field(default=())  # principals, when ambiguous
    candidate_event_ids: tuple[str, ...] = field(default=())

    def as_fields(self) -> dict[str, object]:
        """The row fields the CLI and the saved query add."""
        return {
            "actor": self.actor,
            "actor_match": self.actor_match,
            "actor_candidates": list(self.candidates),
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "cloudtrail_event": self.event_name,
            "cloudtrail_event_id": self.cloudtrail_event_id,
        }


NO_MATCH: Final = Attribution(actor=None, actor_match=NONE)
TTL: Final = Attribution(actor=TTL_ACTOR, actor_match=EXACT, event_name="TTL")


def window_s(tolerance_s: int = DEFAULT_TOLERANCE_S) -> int:
    """Seconds either side of a change within which an event is its candidate.

    Raises ValueError when ``tolerance_s`` is negative.
    """
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
    return 1 + tolerance_s


def _agreed(values: Iterable[str | None]) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _exact(near: Sequence[WriteEvent]) -> Attribution:
    return Attribution(
        actor=near[0].actor, actor_match=EXACT,
        source_ip=_agreed(e.source_ip for e in near),
        user_agent=_agreed(e.user_agent for e in near),
        event_name=_agreed(e.event_name for e in near),
        cloudtrail_event_id=near[0].event_id if len(near) == 1 else None)


def _ambiguous(near: Sequence[WriteEvent]) -> Attribution:
    return Attribution(
        actor=None, actor_match=AMBIGUOUS,
        candidates=tuple(sorted({e.actor for e in near})),
        candidate_event_ids=tuple(sorted({e.event_id for e in near})))


def _run_starts(seconds: Iterable[int], reach: int) -> dict[int, int]:
    """Each second -> the first second of its run (a run breaks at a gap over ``reach``)."""
    starts: dict[int, int] = {}
    start = previous = 0
    for n, second in enumerate(sorted(set(seconds))):
        if n == 0 or second - previous > reach:
            start = second
        starts[second] = start
        previous = second
    return starts


def _attribute_item(seconds: Sequence[int], events: Sequence[WriteEvent],
                    reach: int) -> list[Attribution]:
    """Attributions of one item's changes (their seconds) from its candidate events."""
    run_of = _run_starts([*seconds, *(e.second for e in events)], reach)
    run_events: dict[int, list[WriteEvent]] = defaultdict(list)
    run_changes: Counter[int] = Counter(run_of[s] for s in seconds)
    by_second: dict[int, list[WriteEvent]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e.second, e.event_id)):
        run_events[run_of[e.second]].append(e)
        by_second[e.second].append(e)
    # A run proves its changes' principal: one principal, at least an event per change.
    proven = {run: len({e.actor for e in found}) == 1 and len(found) >= run_changes[run]
              for run, found in run_events.items()}
    out: list[Attribution] = []
    for second in seconds:
        near = [e for t in range(second - reach, second + reach + 1)
                for e in by_second.get(t, ())]
        if not near:
            out.append(NO_MATCH)
        elif proven.get(run_of[second], False):
            out.append(_exact(near))
        else:
            out.append(_ambiguous(near))
    return out


def attribute(changes: Sequence[Change], events: Iterable[WriteEvent],
              key_types: Mapping[str, Mapping[str, str]], *,
              tolerance_s: int = DEFAULT_TOLERANCE_S) -> list[Attribution]:
    """One Attribution per change, in the order given.

    ``key_types`` maps each table to its key types (attribute -> S|N|B); it decides how
    logged keys become item keys. ``tolerance_s`` widens the candidate window beyond one
    second either side (``window_s``). Failed events and events repeated under one
    eventID (CloudTrail may deliver an event twice) count once or not at all. Raises
    ValueError when ``tolerance_s`` is negative.
    """
    reach = window_s(tolerance_s)
    by_item: dict[tuple[str, str], dict[str, WriteEvent]] = defaultdict(dict)
    some_item: dict[str, dict[str, WriteEvent]] = defaultdict(dict)  # PartiQL, key unread
    for event in events:
        if event.failed:
            continue
        for table, item_key in event_items(event, key_types):
            if item_key is None:
                some_item[table].setdefault(event.event_id, event)
            else:
                by_item[(table, item_key)].setdefault(event.event_id, event)
    result: list[Attribution] = [NO_MATCH] * len(changes)
    changes_by_item: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, change in enumerate(changes):
        if change.ttl_delete:
            result[i] = TTL
        elif change.action != "SNAPSHOT":
            changes_by_item[(change.table_name, change.item_key)].append(i)
    for item, idxs in changes_by_item.items():
        candidates = {**some_item.get(item[0], {}), **by_item.get(item, {})}
        if not candidates:
            continue
        found = _attribute_item([changes[i].second for i in idxs],
                                list(candidates.values()), reach)
        for i, attribution in zip(idxs, found, strict=True):
            result[i] = attribution
    return result
