"""Who made each change: match lake changes to CloudTrail write events. Pure, no I/O.

The rule (docs/cloudtrail.md says it for users):

1. A change and a write event can match only when they name the same table and the same
   canonical ``item_key``, and the event did not fail (``errorCode``). A PartiQL write
   whose key cannot be read (CloudTrail redacts INSERT values) may be any item's of its
   table: it stays a candidate for each, so it can make a match ambiguous, never vanish.
2. Times are seconds on both sides: DynamoDB Streams rounds ``ApproximateCreationDateTime``
   down to the second, CloudTrail logs ``eventTime`` (when the request arrived) to the
   second. A change may be an event's when the event's second is the change's second or
   up to ``tolerance`` seconds before it. The default, 0, is the change's own second.
   ``tolerance=1`` also covers a request that arrived just before a second boundary and
   was applied after it, at a price: a change whose write was not logged, one second
   after a write that changed nothing, is then ambiguous rather than ``none``.
3. Within one second CloudTrail cannot order events, so events are never paired by
   their order there. Every pairing of the item's changes and events in which each
   event makes at most one change, each within its window, and as many changes as
   possible find their event is considered. A change gets ``exact`` only when all those
   pairings give it the same principal; otherwise ``ambiguous``, with the candidate
   principals listed; ``none`` when no event can be its. So a change alone with one
   event in its window is exact, and so is one whose other candidates are all claimed
   by other changes.
4. TTL deletes carry their principal in the stream (``dynamodb.amazonaws.com``): exact,
   and they take no CloudTrail event. Backfill SNAPSHOT rows were written by no one.

Why an exact answer is right: the true pairing (each change with its own write) is one
of the largest pairings whenever every logged write that succeeded changed its item, or
every change's write was logged, and each change lies within ``tolerance`` of its write.
A write that changed nothing (DynamoDB emits no stream record for it) next to a change
whose write was not logged, in one window of one item, can mislead it; that is the limit
of second-precision data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ddbtrail.core.cloudtrail import WriteEvent, event_items

EXACT: Final = "exact"
AMBIGUOUS: Final = "ambiguous"
NONE: Final = "none"
TTL_ACTOR: Final = "dynamodb.amazonaws.com"
DEFAULT_TOLERANCE_S: Final = 0
# Past this many pairings a component is called ambiguous rather than searched further.
_SEARCH_LIMIT: Final = 50_000


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


def _agreed(values: Iterable[str | None]) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _decide(events: Sequence[WriteEvent], outcomes: set[int | None],
            candidates: Sequence[int]) -> Attribution:
    """One change's attribution from the events it takes across all maximum pairings."""
    if not candidates:
        return NO_MATCH
    actors = {events[i].actor if i is not None else None for i in outcomes}
    if len(actors) == 1 and None not in actors:
        chosen = [events[i] for i in outcomes if i is not None]
        return Attribution(
            actor=chosen[0].actor, actor_match=EXACT,
            source_ip=_agreed(e.source_ip for e in chosen),
            user_agent=_agreed(e.user_agent for e in chosen),
            event_name=_agreed(e.event_name for e in chosen),
            cloudtrail_event_id=chosen[0].event_id if len(chosen) == 1 else None)
    cands = [events[i] for i in candidates]
    return Attribution(
        actor=None, actor_match=AMBIGUOUS,
        candidates=tuple(sorted({e.actor for e in cands})),
        candidate_event_ids=tuple(sorted({e.event_id for e in cands})))


def _max_pairings(edges: Sequence[Sequence[int]]) -> list[set[int | None]] | None:
    """For each change, the events it takes over all maximum pairings (None: no event).

    ``edges[c]`` lists change c's candidate events. None when the search is too large.
    """
    n = len(edges)
    outcomes: list[set[int | None]] = [set() for _ in range(n)]
    best = -1
    chosen: list[int | None] = [None] * n
    used: set[int] = set()
    steps = 0
    upper = [0] * (n + 1)  # most pairs changes c.. can still add
    for c in range(n - 1, -1, -1):
        upper[c] = upper[c + 1] + (1 if edges[c] else 0)

    def walk(c: int, size: int) -> bool:
        nonlocal best, steps
        steps += 1
        if steps > _SEARCH_LIMIT:
            return False
        if size + upper[c] < best:
            return True
        if c == n:
            if size > best:
                best = size
                for s in outcomes:
                    s.clear()
            for i, e in enumerate(chosen):
                outcomes[i].add(e)
            return True
        for e in edges[c]:
            if e not in used:
                used.add(e)
                chosen[c] = e
                if not walk(c + 1, size + 1):
                    return False
                used.discard(e)
        chosen[c] = None
        return walk(c + 1, size)

    return outcomes if walk(0, 0) else None


def _components(edges: Sequence[Sequence[int]]) -> list[list[int]]:
    """Changes that share candidate events, grouped (each group is searched alone)."""
    parent = list(range(len(edges)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[int, int] = {}
    for c, es in enumerate(edges):
        for e in es:
            if e in owner:
                parent[find(c)] = find(owner[e])
            else:
                owner[e] = c
    groups: dict[int, list[int]] = defaultdict(list)
    for c in range(len(edges)):
        groups[find(c)].append(c)
    return list(groups.values())


def _resolve(events: Sequence[WriteEvent], edges: Sequence[Sequence[int]]
             ) -> list[Attribution]:
    result: list[Attribution] = [NO_MATCH] * len(edges)
    for group in _components(edges):
        local_events = sorted({e for c in group for e in edges[c]})
        index = {e: i for i, e in enumerate(local_events)}
        local_edges = [[index[e] for e in edges[c]] for c in group]
        group_events = [events[e] for e in local_events]
        found = _max_pairings(local_edges)
        for pos, c in enumerate(group):
            if found is None:  # too many to search: never guess
                result[c] = _decide(group_events, {None}, local_edges[pos])
            else:
                result[c] = _decide(group_events, found[pos], local_edges[pos])
    return result


def attribute(changes: Sequence[Change], events: Iterable[WriteEvent],
              key_types: Mapping[str, Mapping[str, str]], *,
              tolerance_s: int = DEFAULT_TOLERANCE_S) -> list[Attribution]:
    """One Attribution per change, in the order given.

    ``key_types`` maps each table to its key types (attribute -> S|N|B); it decides how
    logged keys become item keys. Failed events and events repeated under one eventID
    (CloudTrail may deliver an event twice) count once or not at all.
    """
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
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
        item_events = sorted(candidates.values(), key=lambda e: (e.second, e.event_id))
        if not item_events:
            continue
        by_second: dict[int, list[int]] = defaultdict(list)
        for j, e in enumerate(item_events):
            by_second[e.second].append(j)
        edges = [[j for t in range(changes[i].second - tolerance_s, changes[i].second + 1)
                  for j in by_second.get(t, [])] for i in idxs]
        for i, attribution in zip(idxs, _resolve(item_events, edges), strict=True):
            result[i] = attribution
    return result
