"""Putting typed items into a DynamoDB table: the writes a restore makes.

BatchWriteItem, 25 items per call, UnprocessedItems and throttling retried with backoff
and full jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.core import codec
from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.core.exceptions import DeliveryFailed, TableNotFound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_BATCH_WRITE: Final = 25
# BatchWriteItem retries: full jitter, 50 ms doubling to 5 s.
_BACKOFF: Final = RetryPolicy(base_delay=0.05, max_delay=5.0)
_RETRYABLE: Final = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                               "RequestLimitExceeded", "InternalServerError"})


def batch_write(client: DynamoDBClient, table: str, items: Sequence[codec.TypedItem], *,
                max_attempts: int = 10, sleep: Callable[[float], None] = time.sleep,
                rng: random.Random | None = None,
                progress: Callable[[int], None] | None = None) -> int:
    """Put ``items`` with BatchWriteItem, 25 per call, retrying UnprocessedItems with
    backoff and full jitter. Returns the number written.

    Raises TableNotFound, DeliveryFailed (items still unprocessed after ``max_attempts``),
    or ClientError for a request DynamoDB rejects.
    """
    rng = rng or random.Random()
    written = 0
    for start in range(0, len(items), MAX_BATCH_WRITE):
        pending: list[Any] = [{"PutRequest": {"Item": item}}
                              for item in items[start:start + MAX_BATCH_WRITE]]
        attempt = 0
        while pending:
            try:
                response = client.batch_write_item(RequestItems={table: pending})
                unprocessed = response.get("UnprocessedItems", {}).get(table, [])
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "ResourceNotFoundException":
                    raise TableNotFound(f"table {table} does not exist") from exc
                if code not in _RETRYABLE:
                    raise
                unprocessed = pending
            except BotoCoreError:
                unprocessed = pending
            done = len(pending) - len(unprocessed)
            written += done
            if progress is not None and done:
                progress(done)
            if not unprocessed:
                break
            attempt += 1
            if attempt >= max_attempts:
                raise DeliveryFailed(f"BatchWriteItem to {table}: {len(unprocessed)} items "
                                     f"still unprocessed after {attempt} attempts; "
                                     f"{written} written")
            sleep(_BACKOFF.delay(attempt, rng))
            pending = unprocessed
    return written
