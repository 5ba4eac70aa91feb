"""Item keys for the jobs: the table's key schema, keys files, and the client's B-as-bytes form."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ddbtrail.core import codec
from ddbtrail.core.exceptions import InvalidArgument, InvalidValue, TableNotFound


def key_schema(client: Any, table: str) -> dict[str, str]:
    """Key attribute name -> S | N | B, from DescribeTable. Raises TableNotFound."""
    try:
        desc = client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise TableNotFound(f"table {table} does not exist") from exc
        raise
    types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
    return {k["AttributeName"]: types[k["AttributeName"]] for k in desc["KeySchema"]}


def parse_key(line: str, schema: Mapping[str, str], where: str) -> codec.TypedItem:
    """One keys-file line -> a typed key (B as base64 text). Raises InvalidValue naming
    ``where`` (file and line) and the attribute."""
    try:
        value = codec.parse_plain(line)
    except InvalidValue as exc:
        raise InvalidValue(f"{where}: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidValue(f"{where}: expected a JSON object of key attributes")
    if set(value) != set(schema):
        raise InvalidValue(f"{where}: key attributes {sorted(value)} do not match the "
                           f"table's key {sorted(schema)}")
    key: codec.TypedItem = {}
    for name, raw in value.items():
        tag = schema[name]
        if isinstance(raw, dict):  # typed: {"S": ...}
            if set(raw) != {tag}:
                raise InvalidValue(f"{where}: {name} must be typed {tag}, got {sorted(raw)}")
            inner = raw[tag]
        else:
            inner = raw
        if tag == "N":
            if not isinstance(inner, str):
                raise InvalidValue(f"{where}: {name} must be a number")
            key[name] = {"N": codec.number_text(str(inner), f"{where}: {name}")}
        elif isinstance(inner, codec.JsonNumber) or not isinstance(inner, str):
            raise InvalidValue(f"{where}: {name} must be a string "
                               f"({'base64 ' if tag == 'B' else ''}text)")
        elif tag == "B":
            key[name] = {"B": codec.binary_text(inner, f"{where}: {name}")}
        else:
            key[name] = {"S": inner}
    return key


def read_keys_file(path: str, schema: Mapping[str, str]) -> list[codec.TypedItem]:
    """Every key of a keys file, in file order, duplicates removed. Raises InvalidArgument if
    the file cannot be read, InvalidValue naming the first bad line."""
    try:
        text = Path(path).read_text(encoding="utf-8") if path != "-" else _stdin()
    except OSError as exc:
        raise InvalidArgument("keys_file", path, f"cannot read ({exc.strerror})") from exc
    keys: list[codec.TypedItem] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key = parse_key(stripped, schema, f"{path} line {n}")
        canon = codec.item_key(key)
        if canon not in seen:  # BatchGetItem rejects duplicate keys in one request
            seen.add(canon)
            keys.append(key)
    return keys


def _stdin() -> str:
    return sys.stdin.read()


def to_client(item: Mapping[str, Any]) -> codec.TypedItem:
    """Typed item with B as base64 text -> the low-level client's form (B as bytes)."""
    text, hints = codec.encode_item(item)
    return codec.decode_item(text, hints, binary_as_bytes=True)


def to_wire(item: Mapping[str, Any]) -> codec.TypedItem:
    """Typed item from the low-level client (B as bytes) -> JSON-safe typed item."""
    text, hints = codec.encode_item(item)
    return codec.decode_item(text, hints)
