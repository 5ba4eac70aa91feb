"""Typed values compared as DynamoDB sees them, and the attributes a change touched."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ddbtrail.core.codec._numbers import number_text
from ddbtrail.core.exceptions import InvalidValue


def same_value(a: Any, b: Any) -> bool:
    """Typed values equal as DynamoDB sees them: sets ignore order, numbers compare by value."""
    if a == b:
        return True
    if type(a) is not dict or type(b) is not dict or len(a) != 1 or len(b) != 1:
        return False
    ((ta, va),) = a.items()
    ((tb, vb),) = b.items()
    if ta != tb:
        return False
    try:
        if ta == "N":
            return bool(Decimal(number_text(va)) == Decimal(number_text(vb)))
        if ta in ("SS", "BS"):
            return set(map(str, va)) == set(map(str, vb))
        if ta == "NS":
            return {Decimal(number_text(x)) for x in va} == {Decimal(number_text(x)) for x in vb}
        if ta == "M":
            return va.keys() == vb.keys() and all(same_value(va[k], vb[k]) for k in va)
        if ta == "L":
            return len(va) == len(vb) and all(map(same_value, va, vb))
    except (InvalidValue, InvalidOperation, TypeError, AttributeError):
        return False
    return False


def changed_attributes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Top-level attribute names added, removed or changed, sorted."""
    # Equal typed values (compared in C) are the common case; only unequal ones present in
    # both images need same_value, which ignores set order and number spelling.
    changed = [n for n, v in new.items() if n not in old or (
        old[n] != v and not same_value(old[n], v))]
    changed += [n for n in old if n not in new]
    changed.sort()
    return changed
