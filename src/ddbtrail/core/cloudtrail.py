"""CloudTrail data events for DynamoDB writes: parse records, name the items they wrote.

Pure: no I/O. The record format follows AWS's "Understanding DynamoDB log file entries"
(DynamoDB Developer Guide) and the CloudTrail record contents / ``userIdentity`` pages:

- a log file is ``{"Records": [...]}``; a DynamoDB data event has ``eventSource``
  ``dynamodb.amazonaws.com``, ``eventCategory`` ``Data`` and ``readOnly`` false for writes;
- PutItem, UpdateItem and DeleteItem log ``requestParameters.tableName`` and ``.key``
  (the key attributes only: non-key values are never logged);
- TransactWriteItems logs ``requestParameters.requestItems``: one entry per action with
  ``operation`` (Put, Update, Delete, ConditionCheck) and ``tableName``/``key`` - spelled
  ``TableName``/``Key`` in some entries of AWS's own example, so both spellings are read;
- BatchWriteItem has no example on that page: both the TransactWriteItems form and the
  request form (``{table: [{"PutRequest": ...}, {"DeleteRequest": ...}]}``) are read;
- PartiQL writes (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction) log the
  ``statement`` with non-key values redacted; the key comes from simple statements only
  (``parse_partiql``), anything else names no item;
- a call that failed carries ``errorCode`` and changed nothing.

A table may be named by its name or its ARN (``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME``,
which DynamoDB accepts in every write call); ``table_name`` reads both as the name.

Key values may be logged plain (``{"Artist": "No One You Know"}``, as in AWS's examples)
or typed (``{"Id": {"N": "101"}}``); ``resolve_key`` turns either into ``codec.item_key``
with the table's key types, so both forms meet the lake's ``item_key``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ddbtrail.core import codec
from ddbtrail.core.exceptions import InvalidValue, MalformedRecord

EVENT_SOURCE: Final = "dynamodb.amazonaws.com"
WRITE_EVENTS: Final = frozenset({
    "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
    "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction",
})
PARTIQL_EVENTS: Final = frozenset({"ExecuteStatement", "BatchExecuteStatement",
                                   "ExecuteTransaction"})
# TransactWriteItems actions that write; ConditionCheck only reads.
_WRITE_OPERATIONS: Final = frozenset({"Put", "Update", "Delete"})
_KEY_TAGS: Final = frozenset({"S", "N", "B"})
_TABLE_ARN: Final = re.compile(r"arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([^/]+)")


@dataclass(frozen=True, slots=True)
class Target:
    """One item a write event names: a logged key, or a PartiQL statement to parse."""

    table_name: str
    operation: str  # Put | Update | Delete | PartiQL
    key: Mapping[str, Any] | None = None
    statement: str | None = None


@dataclass(frozen=True, slots=True)
class WriteEvent:
    """One DynamoDB write call as CloudTrail logged it."""

    event_id: str
    event_name: str
    event_time: str  # as logged, ISO-8601 UTC to the second
    second: int  # epoch seconds of event_time
    actor: str
    actor_type: str
    source_ip: str | None
    user_agent: str | None
    error_code: str | None
    targets: tuple[Target, ...]

    @property
    def failed(self) -> bool:
        """A failed call (errorCode set) changed nothing."""
        return self.error_code is not None


def actor_of(identity: Mapping[str, Any]) -> tuple[str, str]:
    """(actor, identity type) from a ``userIdentity`` element.

    The principal's ARN when logged; for ``AWSService`` the service (``invokedBy``);
    otherwise the principalId or user name, so that every actor is a stable name.
    """
    kind = str(identity.get("type") or "Unknown")
    if kind == "AWSService":
        return str(identity.get("invokedBy") or identity.get("principalId") or kind), kind
    for field in ("arn", "principalId", "userName", "invokedBy"):
        value = identity.get(field)
        if isinstance(value, str) and value:
            return value, kind
    return kind, kind


def table_name(logged: str) -> str:
    """The table a logged ``tableName`` names: the NAME of a table ARN, else as logged."""
    match = _TABLE_ARN.fullmatch(logged)
    return match.group(1) if match else logged


def _epoch_second(text: str, event_id: str) -> int:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRecord(event_id, f"eventTime {text!r} is not ISO-8601") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _get(entry: Mapping[str, Any], *names: str) -> Any:
    """The first of several spellings present (AWS's examples mix tableName/TableName)."""
    for name in names:
        if name in entry:
            return entry[name]
    return None


def _targets(event_name: str, params: Mapping[str, Any], event_id: str) -> Iterator[Target]:
    if event_name in ("PutItem", "UpdateItem", "DeleteItem"):
        table, key = _get(params, "tableName", "TableName"), _get(params, "key", "Key")
        if not isinstance(table, str) or not isinstance(key, Mapping):
            raise MalformedRecord(event_id, f"{event_name} without requestParameters "
                                  "tableName and key")
        yield Target(table_name(table), event_name.removesuffix("Item"), key=key)
    elif event_name == "ExecuteStatement":
        statement = params.get("statement")
        if isinstance(statement, str):
            yield Target("", "PartiQL", statement=statement)
    elif event_name in ("TransactWriteItems", "BatchWriteItem", "BatchExecuteStatement",
                        "ExecuteTransaction"):
        items = _get(params, "requestItems", "RequestItems", "transactStatements",
                     "TransactStatements")
        if isinstance(items, Mapping):  # BatchWriteItem's request form
            yield from _batch_request_form(items, event_id)
            return
        if not isinstance(items, list):
            raise MalformedRecord(event_id, f"{event_name} without requestParameters "
                                  "requestItems")
        for entry in items:
            if not isinstance(entry, Mapping):
                raise MalformedRecord(event_id, "a requestItems entry is not an object")
            statement = _get(entry, "statement", "Statement")
            if isinstance(statement, str):
                yield Target("", "PartiQL", statement=statement)
                continue
            operation = str(_get(entry, "operation", "Operation") or "")
            if operation not in _WRITE_OPERATIONS:
                continue  # ConditionCheck reads
            table, key = _get(entry, "tableName", "TableName"), _get(entry, "key", "Key")
            if not isinstance(table, str) or not isinstance(key, Mapping):
                raise MalformedRecord(event_id, f"a {operation} entry without tableName "
                                      "and key")
            yield Target(table_name(table), operation, key=key)


def _batch_request_form(items: Mapping[str, Any], event_id: str) -> Iterator[Target]:
    for table, requests in items.items():
        if not isinstance(requests, list):
            raise MalformedRecord(event_id, f"requestItems {table!r} is not a list")
        for request in requests:
            if not isinstance(request, Mapping):
                continue
            delete = _get(request, "DeleteRequest", "deleteRequest")
            put = _get(request, "PutRequest", "putRequest")
            if isinstance(delete, Mapping):
                key = _get(delete, "Key", "key")
                if isinstance(key, Mapping):
                    yield Target(table_name(str(table)), "Delete", key=key)
            elif isinstance(put, Mapping):
                key = _get(put, "Key", "key", "Item", "item")
                if isinstance(key, Mapping):  # non-key values are not logged
                    yield Target(table_name(str(table)), "Put", key=key)


def parse_record(record: Mapping[str, Any]) -> WriteEvent | None:
    """A DynamoDB data write event from one CloudTrail record; None for any other record.

    Raises MalformedRecord naming the eventID when a write event lacks what it must log.
    """
    if (record.get("eventSource") != EVENT_SOURCE or record.get("eventCategory") != "Data"
            or record.get("eventName") not in WRITE_EVENTS):
        return None
    read_only = record.get("readOnly")
    if read_only is True or str(read_only).lower() == "true":
        return None
    event_id = str(record.get("eventID") or "")
    if not event_id:
        raise MalformedRecord(None, "CloudTrail record without eventID")
    event_time = record.get("eventTime")
    if not isinstance(event_time, str):
        raise MalformedRecord(event_id, "CloudTrail record without eventTime")
    identity = record.get("userIdentity")
    actor, actor_type = actor_of(identity if isinstance(identity, Mapping) else {})
    params = record.get("requestParameters")
    error = record.get("errorCode")
    name = str(record["eventName"])
    if isinstance(params, Mapping):
        targets = tuple(_targets(name, params, event_id))
    elif error:
        targets = ()  # a failed call may log no parameters; it matches nothing anyway
    else:
        raise MalformedRecord(event_id, f"{name} without requestParameters")
    ip, agent = record.get("sourceIPAddress"), record.get("userAgent")
    return WriteEvent(
        event_id=event_id, event_name=name, event_time=event_time,
        second=_epoch_second(event_time, event_id), actor=actor, actor_type=actor_type,
        source_ip=ip if isinstance(ip, str) else None,
        user_agent=agent if isinstance(agent, str) else None,
        error_code=str(error) if error else None, targets=targets)


def parse_log(document: Any, *, where: str = "log file") -> tuple[list[WriteEvent], list[str]]:
    """Every DynamoDB write event of one log file (``{"Records": [...]}``, parsed).

    Returns (events, problems): a record that cannot be read is one problem line naming
    the file and the record; the other records still count.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("Records"), list):
        return [], [f"{where}: not a CloudTrail log file (no Records list)"]
    events: list[WriteEvent] = []
    problems: list[str] = []
    for record in document["Records"]:
        if not isinstance(record, Mapping):
            problems.append(f"{where}: a record is not a JSON object")
            continue
        try:
            event = parse_record(record)
        except MalformedRecord as exc:
            problems.append(f"{where}: {exc}")
            continue
        if event is not None:
            events.append(event)
    return events, problems


# --------------------------------------------------------------------------- keys


def _typed(name: str, value: Any, tag: str | None) -> dict[str, Any] | None:
    """One logged key value as a typed value, or None when it cannot be the key's type."""
    if isinstance(value, Mapping):
        if len(value) != 1:
            return None
        ((vtag, raw),) = value.items()
        if vtag not in _KEY_TAGS or (tag is not None and vtag != tag):
            return None
        return {vtag: raw}
    if isinstance(value, bool) or value is None:
        return None
    # A plain value: the table's key type says what it is; without one, the JSON type.
    if tag is None:
        tag = "N" if isinstance(value, codec.JsonNumber | int) else "S"
    if tag == "N":
        return {"N": str(value)} if isinstance(value, str | int) else None
    if tag == "S":
        return {"S": value} if isinstance(value, str) and not isinstance(
            value, codec.JsonNumber) else None
    return {"B": value} if isinstance(value, str) else None


def resolve_key(key: Mapping[str, Any], types: Mapping[str, str] | None = None) -> str | None:
    """``codec.item_key`` of a logged key (plain or typed values); None if it does not fit.

    ``types`` (attribute -> S|N|B, the table's key schema) must name exactly the logged
    attributes when given; without it a plain string is S and a plain number N.
    """
    if types is not None and set(key) != set(types):
        return None
    typed = {}
    for name, value in key.items():
        one = _typed(name, value, types.get(name) if types is not None else None)
        if one is None:
            return None
        typed[name] = one
    try:
        return codec.item_key(typed)
    except InvalidValue:
        return None


# --------------------------------------------------------------------------- PartiQL

_TOKEN: Final = re.compile(r"""
    (?P<ws>\s+)
  | (?P<redacted>\*\*\*\(Redacted\))
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_\-.]*)
  | (?P<punct><>|!=|<=|>=|[=<>{}\[\](),:;*?.+\-/|])
""", re.VERBOSE)

_Tok = tuple[str, str]  # (kind, text)


def _tokens(statement: str) -> list[_Tok] | None:
    out: list[_Tok] = []
    pos = 0
    while pos < len(statement):
        m = _TOKEN.match(statement, pos)
        if not m:
            return None
        pos = m.end()
        kind = str(m.lastgroup)
        text = m.group()
        if kind == "ws":
            continue
        if kind == "qident":
            kind, text = "ident", text[1:-1].replace('""', '"')
        elif kind == "string":
            text = text[1:-1].replace("''", "'")
        elif kind == "ident" and text.upper() in ("UPDATE", "DELETE", "INSERT", "FROM",
                                                   "INTO", "VALUE", "WHERE", "AND",
                                                   "RETURNING", "SET", "REMOVE", "OR",
                                                   "NOT", "IN", "BETWEEN", "SELECT"):
            kind, text = "kw", text.upper()
        out.append((kind, text))
    while out and out[-1] == ("punct", ";"):
        out.pop()
    return out


def _value(tok: _Tok) -> Any:
    """A literal token as a logged key value: 'text' is S, a number N; else None."""
    kind, text = tok
    if kind == "string":
        return {"S": text}
    if kind == "number":
        return {"N": text}
    return None


def _where(toks: Sequence[_Tok]) -> dict[str, Any] | None:
    """``a = 1 AND "b" = 'x' ...`` -> {a: .., b: ..}; None for anything else (OR, IN, ...).

    Redacted values stay in as None: they are non-key conditions, or the key is unknown.
    """
    found: dict[str, Any] = {}
    i = 0
    while True:
        if i + 3 > len(toks) or toks[i][0] != "ident" or toks[i + 1] != ("punct", "="):
            return None
        name, value_tok = toks[i][1], toks[i + 2]
        if name in found:
            return None
        if value_tok[0] == "redacted":
            found[name] = None
        else:
            value = _value(value_tok)
            if value is None:
                return None
            found[name] = value
        i += 3
        if i == len(toks) or toks[i] == ("kw", "RETURNING"):
            return found
        if toks[i] != ("kw", "AND"):
            return None
        i += 1


def _insert_value(toks: Sequence[_Tok]) -> dict[str, Any] | None:
    """``{'a': 1, 'b': ***(Redacted)}`` -> {a: .., b: None}; None unless that simple shape."""
    if not toks or toks[0] != ("punct", "{") or toks[-1] != ("punct", "}"):
        return None
    found: dict[str, Any] = {}
    body = list(toks[1:-1])
    i = 0
    while i < len(body):
        if (i + 3 > len(body) or body[i][0] not in ("string", "ident")
                or body[i + 1] != ("punct", ":")):
            return None
        name, value_tok = body[i][1], body[i + 2]
        if name in found:
            return None
        found[name] = None if value_tok[0] == "redacted" else _value(value_tok)
        if value_tok[0] not in ("redacted", "string", "number"):
            found[name] = None  # a nested value: not a key, and keys cannot be nested
        i += 3
        if i < len(body):
            if body[i] != ("punct", ","):
                return None
            i += 1
    return found


def parse_partiql(statement: str) -> tuple[str, str, dict[str, Any]] | None:
    """(table, operation, conditions) of a simple PartiQL write; None for anything else.

    Sound shapes only: ``UPDATE t SET|REMOVE ... WHERE k = v [AND ...]``,
    ``DELETE FROM t WHERE k = v [AND ...]`` and ``INSERT INTO t VALUE {'k': v, ...}``.
    Values are typed ({"S": ..} / {"N": ..}), or None where CloudTrail redacted them.
    """
    toks = _tokens(statement)
    if not toks or toks[0][0] != "kw":
        return None
    head = toks[0][1]
    if head == "DELETE":
        if len(toks) < 4 or toks[1] != ("kw", "FROM") or toks[2][0] != "ident" \
                or toks[3] != ("kw", "WHERE"):
            return None
        conds = _where(toks[4:])
        return (table_name(toks[2][1]), "Delete", conds) if conds is not None else None
    if head == "UPDATE":
        if len(toks) < 2 or toks[1][0] != "ident":
            return None
        wheres = [i for i, t in enumerate(toks) if t == ("kw", "WHERE")]
        if len(wheres) != 1:
            return None
        conds = _where(toks[wheres[0] + 1:])
        return (table_name(toks[1][1]), "Update", conds) if conds is not None else None
    if head == "INSERT":
        if len(toks) < 4 or toks[1] != ("kw", "INTO") or toks[2][0] != "ident" \
                or toks[3] != ("kw", "VALUE"):
            return None
        values = _insert_value(toks[4:])
        return (table_name(toks[2][1]), "Put", values) if values is not None else None
    return None  # SELECT and the rest write nothing we can name


def partiql_key(statement: str, types: Mapping[str, str]) -> tuple[str, str] | None:
    """(table, item_key) a simple PartiQL write names, given the table's key types.

    None unless every key attribute is given literally (not redacted) with its own type:
    a guess would be worse than no match.
    """
    parsed = parse_partiql(statement)
    if parsed is None:
        return None
    table, _, conds = parsed
    key = {}
    for name, tag in types.items():
        value = conds.get(name)
        if value is None or next(iter(value)) != tag:
            return None
        key[name] = value
    if not key:
        return None
    try:
        return table, codec.item_key(key)
    except InvalidValue:
        return None


def partiql_table(statement: str) -> str | None:
    """The table a PartiQL INSERT, UPDATE or DELETE writes; None for anything else."""
    toks = _tokens(statement)
    if not toks:
        return None
    if toks[0] == ("kw", "UPDATE") and len(toks) > 1 and toks[1][0] == "ident":
        return table_name(toks[1][1])
    if toks[0] in (("kw", "DELETE"), ("kw", "INSERT")) and len(toks) > 2 \
            and toks[1] in (("kw", "FROM"), ("kw", "INTO")) and toks[2][0] == "ident":
        return table_name(toks[2][1])
    return None


def event_items(event: WriteEvent, key_types: Mapping[str, Mapping[str, str]]
                ) -> set[tuple[str, str | None]]:
    """The (table, item_key) pairs a write event names, for the tables in ``key_types``.

    ``key_types`` maps each table of interest to its key types; events of other tables
    name nothing. A PartiQL write whose key cannot be read (redacted, or not a simple
    statement) gives (table, None): some item of the table, which one unknown, so that
    it stays a candidate instead of vanishing. Classic keys that do not fit the schema
    are left out (DynamoDB would have refused the call).
    """
    found: set[tuple[str, str | None]] = set()
    for target in event.targets:
        if target.statement is not None:
            table = partiql_table(target.statement)
            if table is None or table not in key_types:
                continue
            named = partiql_key(target.statement, key_types[table])
            found.add(named if named is not None else (table, None))
        elif target.key is not None and target.table_name in key_types:
            item = resolve_key(target.key, key_types[target.table_name])
            if item is not None:
                found.add((target.table_name, item))
    return found


# --------------------------------------------------------------------------- writing
# Records in the shape of AWS's documented PutItem example (tests/events/), for the demo
# and for tests that need CloudTrail files of their own writes.


def assumed_role_identity(account: str, role: str, session: str) -> dict[str, Any]:
    """``userIdentity`` of a role session, as CloudTrail logs an AssumedRole call."""
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{role.upper()[:12]}EXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLEKEY000000",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": f"AROA{role.upper()[:12]}",
                              "arn": f"arn:aws:iam::{account}:role/{role}",
                              "accountId": account, "userName": role},
            "attributes": {"creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def iam_user_identity(account: str, user: str) -> dict[str, Any]:
    """``userIdentity`` of an IAM user."""
    return {"type": "IAMUser", "principalId": f"AIDA{user.upper()[:12]}EXAMPLE",
            "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
            "accessKeyId": "AKIAEXAMPLEKEY000000", "userName": user}


def write_record(*, event_name: str, event_time: str, event_id: str,
                 identity: Mapping[str, Any], account: str, region: str,
                 items: Sequence[tuple[str, str, Mapping[str, Any]]],
                 source_ip: str = "192.0.2.0", user_agent: str = "ddbtrail-demo",
                 error_code: str | None = None) -> dict[str, Any]:
    """One CloudTrail data event record of a DynamoDB write.

    ``items`` is (operation, table, plain key) per item: one for PutItem/UpdateItem/
    DeleteItem, several for TransactWriteItems and BatchWriteItem (logged in the
    requestItems list form of AWS's TransactWriteItems example).
    """
    if event_name in ("PutItem", "UpdateItem", "DeleteItem"):
        ((_, table, key),) = items
        params: dict[str, Any] = {"tableName": table, "key": dict(key),
                                  "returnConsumedCapacity": "NONE"}
        tables = [table]
    else:
        params = {"requestItems": [{"operation": op, "tableName": table, "key": dict(key)}
                                   for op, table, key in items],
                  "returnConsumedCapacity": "NONE"}
        tables = sorted({table for _, table, _ in items})
    record: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": dict(identity), "eventTime": event_time,
        "eventSource": EVENT_SOURCE, "eventName": event_name, "awsRegion": region,
        "sourceIPAddress": source_ip, "userAgent": user_agent,
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_code
    record.update({
        "requestParameters": params, "responseElements": None,
        "requestID": event_id.replace("-", "").upper()[:32], "eventID": event_id,
        "readOnly": False,
        "resources": [{"accountId": account, "type": "AWS::DynamoDB::Table",
                       "ARN": f"arn:aws:dynamodb:{region}:{account}:table/{t}"}
                      for t in tables],
        "eventType": "AwsApiCall", "apiVersion": "2012-08-10", "managementEvent": False,
        "recipientAccountId": account, "eventCategory": "Data",
    })
    return record


def log_file_name(account: str, region: str, when: datetime, unique: str) -> str:
    """Relative path CloudTrail gives a log file: ``AWSLogs/<account>/CloudTrail/<region>/
    <yyyy>/<mm>/<dd>/<account>_CloudTrail_<region>_<yyyymmddThhmmZ>_<unique>.json.gz``."""
    when = when.astimezone(UTC)
    return (f"AWSLogs/{account}/CloudTrail/{region}/{when:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%MZ}_{unique}.json.gz")


# --------------------------------------------------------------------------- Athena table
# The CloudTrail table of AWS's "Create the table for CloudTrail logs in Athena using
# partition projection" (Amazon Athena User Guide): its columns, in its order, and its
# partition ``timestamp`` (yyyy/MM/dd). The stack creates it from these; DuckDB gets the
# same columns from the log files (``athena_row``).

ATHENA_TABLE: Final = "cloudtrail_logs"
_ID_SESSION: Final = ("struct<attributes:struct<mfaauthenticated:string,creationdate:string>,"
                      "sessionissuer:struct<type:string,principalid:string,arn:string,"
                      "accountid:string,username:string>,ec2roledelivery:string,"
                      "webidfederationdata:struct<federatedprovider:string,"
                      "attributes:map<string,string>>>")
ATHENA_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("eventversion", "string"),
    ("useridentity", "struct<type:string,principalid:string,arn:string,accountid:string,"
                     "invokedby:string,accesskeyid:string,username:string,"
                     "onbehalfof:struct<userid:string,identitystorearn:string>,"
                     f"sessioncontext:{_ID_SESSION}>"),
    ("eventtime", "string"), ("eventsource", "string"), ("eventname", "string"),
    ("awsregion", "string"), ("sourceipaddress", "string"), ("useragent", "string"),
    ("errorcode", "string"), ("errormessage", "string"), ("requestparameters", "string"),
    ("responseelements", "string"), ("additionaleventdata", "string"),
    ("requestid", "string"), ("eventid", "string"), ("readonly", "string"),
    ("resources", "array<struct<arn:string,accountid:string,type:string>>"),
    ("eventtype", "string"), ("apiversion", "string"), ("recipientaccountid", "string"),
    ("serviceeventdetails", "string"), ("sharedeventid", "string"),
    ("vpcendpointid", "string"), ("vpcendpointaccountid", "string"),
    ("eventcategory", "string"),
    ("addendum", "struct<reason:string,updatedfields:string,originalrequestid:string,"
                 "originaleventid:string>"),
    ("sessioncredentialfromconsole", "string"), ("edgedevicedetails", "string"),
    ("tlsdetails", "struct<tlsversion:string,ciphersuite:string,"
                   "clientprovidedhostheader:string>"),
)
ATHENA_PARTITION: Final = "timestamp"  # yyyy/MM/dd, the day folder


def athena_table_properties(location: str, start_day: str) -> dict[str, str]:
    """TBLPROPERTIES of the table over ``location`` (``s3://b/[p/]AWSLogs/<acct>/CloudTrail/
    <region>``): date projection on ``timestamp`` from ``start_day`` (yyyy/MM/dd) to NOW."""
    return {
        "projection.enabled": "true",
        "projection.timestamp.type": "date",
        "projection.timestamp.format": "yyyy/MM/dd",
        "projection.timestamp.interval": "1",
        "projection.timestamp.interval.unit": "DAYS",
        "projection.timestamp.range": f"{start_day},NOW",
        "storage.location.template": location.rstrip("/") + "/${timestamp}",
    }


def split_type(body: str) -> list[str]:
    """Top-level comma-separated parts of a Hive type body (``a:string,b:struct<..>``)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts


def _text(value: Any) -> str | None:
    """A JSON value in a string column, as the SerDe gives it: objects as JSON text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)  # a JsonNumber's digits, too
    if isinstance(value, int | float):
        return str(value)
    return _json_text(value)


def _json_text(value: Any) -> str:
    if isinstance(value, codec.JsonNumber):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + _json_text(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _shaped(value: Any, hive_type: str) -> Any:
    """A record's value in the shape of a Hive column type (names matched case-insensitively)."""
    if hive_type == "string":
        return _text(value)
    if hive_type.startswith("struct<"):
        if not isinstance(value, Mapping):
            return None
        lowered = {str(k).lower(): v for k, v in value.items()}
        out = {}
        for part in split_type(hive_type[7:-1]):
            name, _, sub = part.partition(":")
            out[name] = _shaped(lowered.get(name), sub)
        return out
    if hive_type.startswith("array<"):
        if not isinstance(value, list):
            return None
        return [_shaped(v, hive_type[6:-1]) for v in value]
    if hive_type.startswith("map<"):
        if not isinstance(value, Mapping):
            return None
        return {str(k): _text(v) for k, v in value.items()}
    return value


def athena_row(record: Mapping[str, Any], day: str) -> dict[str, Any]:
    """One record as a row of the CloudTrail table (``day``: yyyy/MM/dd of its folder)."""
    lowered = {str(k).lower(): v for k, v in record.items()}
    row = {name: _shaped(lowered.get(name), hive) for name, hive in ATHENA_COLUMNS}
    row[ATHENA_PARTITION] = day
    return row
