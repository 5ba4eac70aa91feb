"""CloudTrail log files for the demo's own writes, as CloudTrail would deliver them.

Each write call the demo makes becomes one data event (``core.cloudtrail.write_record``,
the shape of AWS's documented PutItem example; BatchWriteItem in the requestItems list
form), made by one of a few principals: the order service's role, a support engineer's
role session, an admin user. TTL deletes are DynamoDB's own and log nothing. Files are
gzipped ``{"Records": [...]}``, one per five minutes of event time, under
``AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/`` of the given root.
"""

from __future__ import annotations

import gzip
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from ddbtrail.core import cloudtrail
from ddbtrail.lake.files import Lake

ACCOUNT: Final = "123456789012"  # moto's account
SERVICE: Final = "service"
SUPPORT: Final = "support"
ADMIN: Final = "admin"
# Most writes come from the service; people touch a few.
WEIGHTS: Final = {SERVICE: 0.85, SUPPORT: 0.1, ADMIN: 0.05}
_AGENTS: Final = {SERVICE: "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.12",
                  SUPPORT: "console.amazonaws.com", ADMIN: "aws-cli/2.17.0 md/awscrt#0.20"}
_IPS: Final = {SERVICE: "10.0.12.34", SUPPORT: "198.51.100.23", ADMIN: "203.0.113.9"}


def identities(account: str = ACCOUNT) -> dict[str, dict[str, Any]]:
    """The demo's principals' ``userIdentity`` elements."""
    return {
        SERVICE: cloudtrail.assumed_role_identity(account, "orders-service", "i-0a1b2c3d4e"),
        SUPPORT: cloudtrail.assumed_role_identity(account, "support-engineer",
                                                  "dana@example.com"),
        ADMIN: cloudtrail.iam_user_identity(account, "admin"),
    }


def _plain(value: Mapping[str, Any]) -> Any:
    """A typed key value as CloudTrail logs it: the plain value."""
    ((tag, raw),) = value.items()
    if tag == "N" and str(raw).lstrip("-").isdigit():
        return int(raw)
    return raw


class TrailRecorder:
    """Collects one CloudTrail record per demo write call; ``write`` lays out the files."""

    def __init__(self, region: str, *, seed: int = 7, account: str = ACCOUNT,
                 now: Callable[[], float] = time.time) -> None:
        self.region = region
        self.account = account
        self.rng = random.Random(seed)
        self.now = now
        self.who = identities(account)
        self.records: list[dict[str, Any]] = []

    def pick(self) -> str:
        """A principal for the next call, by WEIGHTS."""
        return self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]

    def record(self, table: str, requests: Sequence[Mapping[str, Any]], when: float,
               key_names: Sequence[str], principal: str | None = None) -> None:
        """One BatchWriteItem call of ``requests`` (PutRequest/DeleteRequest) at ``when``."""
        name = principal or self.pick()
        items = []
        for request in requests:
            if "PutRequest" in request:
                item = request["PutRequest"]["Item"]
                items.append(("Put", table, {k: _plain(item[k]) for k in key_names}))
            else:
                key = request["DeleteRequest"]["Key"]
                items.append(("Delete", table, {k: _plain(key[k]) for k in key_names}))
        self.records.append(cloudtrail.write_record(
            event_name="BatchWriteItem",
            event_time=datetime.fromtimestamp(int(when), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            event_id=str(uuid.UUID(int=self.rng.getrandbits(128))),
            identity=self.who[name], account=self.account, region=self.region, items=items,
            source_ip=_IPS[name], user_agent=_AGENTS[name]))

    def write(self, lake: Lake, root: str) -> list[str]:
        """Gzipped log files under ``root`` (a path on the lake's filesystem); their paths."""
        windows: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
        for rec in self.records:
            at = datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
            windows[at.replace(minute=at.minute - at.minute % 5, second=0)].append(rec)
        written = []
        for delivered, records in sorted(windows.items()):
            rel = cloudtrail.log_file_name(self.account, self.region, delivered,
                                           f"{self.rng.getrandbits(32):08x}")
            path = f"{root.rstrip('/')}/{rel}"
            body = json.dumps({"Records": records}, default=str).encode()
            lake.write_atomic(path, gzip.compress(body, mtime=0))
            written.append(path)
        return written
