"""Per-table PII redaction, applied to typed images before a row leaves the capture path.

A policy maps table names (or ``*`` for every table) to attributes and a mode:

    {"orders": {"email": "hmac", "ssn": "drop", "/address/street": "drop"},
     "*": {"password": "drop"}}

An attribute is a top-level name, or a JSON pointer (RFC 6901) for a nested map member.
``drop`` removes the attribute; ``hmac`` replaces it with ``{"S": "hmac:<hex>"}``, a keyed
HMAC-SHA256 of its typed value, so equality joins still work and the value cannot be
recovered without the key. A key attribute cannot be dropped (the row needs the key), so
in ``Keys`` a dropped attribute is HMAC'd instead.

The key comes from Secrets Manager or SSM in AWS, and from the environment locally; see
``ddbtrail.capture.redaction_key.load_key`` (core reads nothing itself).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ddbtrail.core import codec
from ddbtrail.core.exceptions import ConfigError

MODES: Final = frozenset({"drop", "hmac"})
HMAC_PREFIX: Final = "hmac:"


@dataclass(frozen=True)
class RedactionPolicy:
    """Attribute paths -> mode, per table. Build with ``from_json`` or ``from_mapping``."""

    tables: Mapping[str, Mapping[tuple[str, ...], str]]
    key: bytes

    @classmethod
    def from_mapping(cls, raw: object, key: bytes | None) -> RedactionPolicy:
        """Validate a policy; ConfigError names the table, attribute or mode at fault."""
        if not isinstance(raw, Mapping):
            raise ConfigError("REDACTION_POLICY must be a JSON object of table -> attributes")
        tables: dict[str, dict[tuple[str, ...], str]] = {}
        for table, attrs in raw.items():
            if not isinstance(attrs, Mapping):
                raise ConfigError(f"REDACTION_POLICY[{table!r}] must map attributes to modes")
            parsed: dict[tuple[str, ...], str] = {}
            for attr, mode in attrs.items():
                if mode not in MODES:
                    raise ConfigError(f"REDACTION_POLICY[{table!r}][{attr!r}]: mode {mode!r} "
                                      "is not drop or hmac")
                parsed[_parse_path(str(table), attr)] = mode
            tables[str(table)] = parsed
        # Even a drop-only policy needs the key: a dropped key attribute is HMAC'd.
        if any(tables.values()) and not key:
            raise ConfigError("a redaction policy needs a key: set REDACTION_KEY locally, or "
                              "REDACTION_KEY_SECRET_ARN / REDACTION_KEY_PARAMETER in AWS")
        return cls(tables=tables, key=key or b"")

    @classmethod
    def from_json(cls, text: str, key: bytes | None) -> RedactionPolicy:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"REDACTION_POLICY is not valid JSON: {exc}") from exc
        return cls.from_mapping(raw, key)

    def rules(self, table_name: str) -> dict[tuple[str, ...], str]:
        """The rules for one table: its own over those of ``*``."""
        return {**self.tables.get("*", {}), **self.tables.get(table_name, {})}

    def redactor(self, table_name: str) -> Redactor | None:
        rules = self.rules(table_name)
        return Redactor(rules, self.key) if rules else None


def _parse_path(table: str, attr: object) -> tuple[str, ...]:
    if not isinstance(attr, str) or not attr:
        raise ConfigError(f"REDACTION_POLICY[{table!r}]: attribute {attr!r} must be a name")
    if not attr.startswith("/"):
        return (attr,)
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in attr[1:].split("/"))
    if not all(parts):
        raise ConfigError(f"REDACTION_POLICY[{table!r}]: {attr!r} is not a valid JSON pointer")
    return parts


class Redactor:
    """Applies one table's rules to typed items. Never mutates its input."""

    def __init__(self, rules: Mapping[tuple[str, ...], str], key: bytes) -> None:
        self.rules = rules
        self.key = key

    def digest(self, value: Any) -> dict[str, str]:
        """The HMAC of a typed value, as an S value. Type-tagged so S "1" != N 1; a number
        is hashed in canonical form, as item_key treats 1 and 1.0 as one key."""
        if isinstance(value, Mapping) and len(value) == 1 and "N" in value:
            value = {"N": codec.canonical_number(codec.number_text(value["N"]))}
        text, hints = codec.encode_item({"v": value})
        material = json.dumps([text, hints], sort_keys=True, separators=(",", ":"))
        mac = hmac.new(self.key, material.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return {"S": HMAC_PREFIX + mac.hexdigest()}

    def item(self, item: Mapping[str, Any] | None, *, is_key: bool = False) -> Any:
        """The item with the rules applied; in keys, ``drop`` becomes ``hmac``."""
        if not item or not isinstance(item, Mapping):
            return item  # not an item: the codec rejects it, naming the record
        out: Any = item
        for path, mode in self.rules.items():
            if is_key and len(path) > 1:
                continue  # key attributes are scalars
            out = self._apply(out, path, "hmac" if is_key else mode)
        return out

    def _apply(self, item: Mapping[str, Any], path: tuple[str, ...], mode: str) -> Any:
        head, rest = path[0], path[1:]
        if head not in item:
            return item
        copy = dict(item)
        if not rest:
            if mode == "drop":
                del copy[head]
            else:
                copy[head] = self.digest(item[head])
            return copy
        value = item[head]
        if isinstance(value, Mapping) and isinstance(value.get("M"), Mapping):
            copy[head] = {"M": self._apply(value["M"], rest, mode)}
        return copy
