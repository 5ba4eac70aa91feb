"""One change row's codec columns: keys, both images and their hints, and the changed
attributes; the fast path first, the exact one when it gives up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ddbtrail.core.codec._compare import changed_attributes
from ddbtrail.core.codec._encode import _encode_into
from ddbtrail.core.codec._fast import _fast_keys, _fast_pair
from ddbtrail.core.codec._json import orjson
from ddbtrail.core.codec._keys import hints_json, item_key
from ddbtrail.core.codec._numbers import Hints


class EncodedChange(NamedTuple):
    """The codec's columns of one change row, and its changed attributes."""

    keys: str
    item_key: str
    old_image: str | None
    new_image: str | None
    type_hints: str | None
    # Top-level attributes added, removed or changed (sorted) when both images are given.
    changed: list[str] | None


def encode_change(keys: Mapping[str, Any], old: Mapping[str, Any] | None,
                  new: Mapping[str, Any] | None) -> EncodedChange:
    """Keys and both images with their hints under ``/keys``, ``/old_image`` and
    ``/new_image``, and the changed attributes. Raises InvalidValue naming the first
    bad path.

    With both images, the new one is walked and the old one's attributes that are
    exactly equal to the new ones reuse their plain values: each value is read once,
    and the comparison is the changed-attribute set.
    """
    hints: Hints = {}
    fast_keys = _fast_keys(keys, hints) if orjson is not None else None
    if fast_keys is not None:
        keys_text, key = fast_keys
    else:
        keys_text = _encode_into(keys, "/keys", hints)
        key = item_key(keys)
    changed = None
    old_text: str | None
    new_text: str | None
    if old is not None and new is not None:
        pair = _fast_pair(old, new) if orjson is not None else None
        if pair is not None:
            old_text, new_text, pair_hints, changed = pair
            hints.update(pair_hints)
        else:
            old_text = _encode_into(old, "/old_image", hints)
            new_text = _encode_into(new, "/new_image", hints)
            changed = changed_attributes(old, new)
    else:
        old_text = None if old is None else _encode_into(old, "/old_image", hints)
        new_text = None if new is None else _encode_into(new, "/new_image", hints)
    return EncodedChange(keys_text, key, old_text, new_text, hints_json(hints), changed)



# --------------------------------------------------------------------------- compare
