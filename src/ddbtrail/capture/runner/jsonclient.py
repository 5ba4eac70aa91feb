"""A DynamoDB Streams client that keeps responses as the service's JSON.

boto3 parses every typed attribute value of a GetRecords page through its shape model
(and decodes B/BS to bytes, timestamps to datetime), only for the runner to turn them back
into Lambda's JSON. On pages of 1,000 records that parsing costs more than everything else
the runner does. This client speaks the same JSON protocol (SigV4-signed when credentials
are given) and returns the JSON as it came: B/BS stay base64 text and
ApproximateCreationDateTime stays epoch seconds, which is already Lambda's shape.

It has the three calls the runner uses (``describe_stream``, ``get_shard_iterator``,
``get_records``) and raises botocore's ClientError with the service's error code, so the
runner handles ExpiredIterator, TrimmedDataAccess and the rest the same way.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Final

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError

from ddbtrail.core.backoff import RetryPolicy

try:
    import orjson
except ImportError:  # pragma: no cover - json reads the same responses
    orjson = None  # type: ignore[assignment]

_TARGET: Final = "DynamoDBStreams_20120810."
# Full jitter, 50 ms doubling to 2 s; one generator per process is enough for jitter.
_BACKOFF: Final = RetryPolicy(base_delay=0.05, max_delay=2.0)
_RNG: Final = random.Random()
_RETRYABLE: Final = frozenset({"InternalServerError", "LimitExceededException",
                               "ThrottlingException", "ProvisionedThroughputExceededException",
                               "ServiceUnavailable", "InternalFailure"})


def loads(raw: bytes) -> Any:
    """Parse a response: orjson when installed (pages of 1,000 records are most of the
    runner's reading cost), else json. What orjson refuses but json reads (a lone
    surrogate escape in a string value) goes to json, so the record reaches the codec,
    which names it, instead of failing the page."""
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


class JsonStreamsClient:
    """DynamoDB Streams over its JSON protocol, responses left as JSON (see module doc)."""

    # The runner builds Lambda events from these records without converting values.
    returns_lambda_json: Final = True

    def __init__(self, endpoint_url: str, region: str, *,
                 credentials: Credentials | None = None, max_attempts: int = 4,
                 timeout: float = 60.0) -> None:
        self.url = endpoint_url.rstrip("/") + "/"
        self.region = region
        self.credentials = credentials
        self.max_attempts = max_attempts
        self._http = urllib3.PoolManager(maxsize=2, timeout=urllib3.Timeout(total=timeout))

    @classmethod
    def like(cls, client: Any, credentials: Credentials | None = None) -> JsonStreamsClient:
        """Same endpoint and region as a boto3 ``dynamodbstreams`` client; credentials from
        the standard chain unless given."""
        if credentials is None:
            import boto3

            credentials = boto3.Session().get_credentials()
        return cls(client.meta.endpoint_url, client.meta.region_name, credentials=credentials)

    def describe_stream(self, **params: Any) -> dict[str, Any]:
        return self._call("DescribeStream", params)

    def get_shard_iterator(self, **params: Any) -> dict[str, Any]:
        return self._call("GetShardIterator", params)

    def get_records(self, **params: Any) -> dict[str, Any]:
        return self._call("GetRecords", params)

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": _TARGET + operation}
        if self.credentials is not None:
            request = AWSRequest(method="POST", url=self.url, data=body, headers=headers)
            SigV4Auth(self.credentials, "dynamodb", self.region).add_auth(request)
            headers = dict(request.headers.items())
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._http.request("POST", self.url, body=body, headers=headers,
                                          retries=False)
            except urllib3.exceptions.HTTPError as exc:
                if attempt >= self.max_attempts:
                    raise EndpointConnectionError(endpoint_url=self.url, error=exc) from exc
                self._backoff(attempt)
                continue
            if resp.status < 400:
                data: dict[str, Any] = loads(resp.data)
                return data
            error = _client_error(operation, resp.status, resp.data)
            code = error.response["Error"]["Code"]
            if (code in _RETRYABLE or resp.status >= 500) and attempt < self.max_attempts:
                self._backoff(attempt)
                continue
            raise error

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(_BACKOFF.delay(attempt, _RNG))


def _client_error(operation: str, status: int, raw: bytes) -> ClientError:
    try:
        data = json.loads(raw)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    code = str(data.get("__type", "")).rsplit("#", 1)[-1] or (
        "InternalServerError" if status >= 500 else "BadRequest")
    message = str(data.get("message") or data.get("Message") or raw[:200].decode(
        "utf-8", "replace"))
    response: Any = {"Error": {"Code": code, "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)
