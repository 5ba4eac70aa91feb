"""Typed reads of settings: environment variables parsed once at cold start, and the
repeatable ``NAME=VALUE`` options of the CLI.

Every helper raises an error whose message names the variable or the option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ddbtrail.core.exceptions import ConfigError, InvalidArgument

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_required(env: Mapping[str, str], name: str) -> str:
    """The non-empty value of ``name``; ConfigError if it is missing or empty."""
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``name`` as a boolean (1/true/yes/on or 0/false/no/off, any case); ``default`` if
    unset or empty. Raises ConfigError for any other value."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (true or false)")


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """``name`` as a whole number in ``lo..hi`` (inclusive); ``default`` if unset or empty
    (the default is not range-checked). Raises ConfigError otherwise."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is outside {lo}..{hi}")
    return value


def parse_assignments(options: Iterable[str], *, option: str, expected: str,
                      repeated: str = "given more than once") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (names stripped, values kept as given).

    InvalidArgument names ``option`` and the bad one: no ``=`` or no name (``expected`` says
    what was), or a name given twice (``repeated``).
    """
    values: dict[str, str] = {}
    for text in options:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidArgument(option, text, f"expected {expected}")
        if name in values:
            raise InvalidArgument(option, None, repeated, part=name)
        values[name] = value
    return values
