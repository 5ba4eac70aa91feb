"""A stub Firehose client: counts calls and bytes, fails chosen entries, throttles on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ddbtrail.delivery.firehose import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES


@dataclass
class StubFirehose:
    """Enforces PutRecordBatch's limits like the service, and keeps what it accepted.

    ``fail_entry(call_no, index, data)`` returning True makes that entry fail with
    ServiceUnavailableException; ``throttle_calls`` lists call numbers (1-based) that
    raise ThrottlingException for the whole call.
    """

    fail_entry: Callable[[int, int, bytes], bool] = lambda call, i, data: False
    throttle_calls: set[int] = field(default_factory=set)
    calls: int = 0
    accepted: list[bytes] = field(default_factory=list)

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, Any]]) -> dict:
        self.calls += 1
        assert DeliveryStreamName
        if not 1 <= len(Records) <= MAX_BATCH_RECORDS:
            raise _error("InvalidArgumentException", f"{len(Records)} records in one call")
        total = sum(len(r["Data"]) for r in Records)
        if total > MAX_BATCH_BYTES:
            raise _error("InvalidArgumentException", f"{total} bytes in one call")
        if self.calls in self.throttle_calls:
            raise _error("ThrottlingException", "Rate exceeded")
        responses = []
        for i, rec in enumerate(Records):
            data = rec["Data"]
            if len(data) > MAX_RECORD_BYTES:
                raise _error("InvalidArgumentException", f"record of {len(data)} bytes")
            if self.fail_entry(self.calls, i, data):
                responses.append({"ErrorCode": "ServiceUnavailableException",
                                  "ErrorMessage": "Slow down."})
            else:
                self.accepted.append(data)
                responses.append({"RecordId": f"r{self.calls}-{i}"})
        failed = sum(1 for r in responses if "ErrorCode" in r)
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}

    def rows(self) -> list[bytes]:
        """Every row line accepted, packed records split on newlines."""
        return [line + b"\n" for data in self.accepted for line in data.splitlines()]


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutRecordBatch")
