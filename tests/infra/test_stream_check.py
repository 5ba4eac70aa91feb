"""The deploy-time stream check (custom resource) against moto's DynamoDB and a local
stand-in for CloudFormation's response URL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest

from infra.functions import stream_check
from infra.functions.stream_check import StreamCheckFailed, check_table

pytestmark = pytest.mark.integration


@pytest.fixture
def ddb(moto_server: Any) -> Any:
    return boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")


def make_table(ddb: Any, view: str | None) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kwargs: dict[str, Any] = {}
    if view:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], **kwargs)
    return name


def test_enabled_stream_returns_its_arn(ddb: Any) -> None:
    table = make_table(ddb, "NEW_AND_OLD_IMAGES")
    got = check_table(ddb, table, require_new_and_old=True)
    assert got == {"StreamArn": ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"],
                   "StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_no_stream_fails_with_the_fix(ddb: Any) -> None:
    table = make_table(ddb, None)
    with pytest.raises(StreamCheckFailed) as err:
        check_table(ddb, table, require_new_and_old=False)
    assert f"table {table}: DynamoDB Streams is not enabled" in str(err.value)
    assert f"update-table --table-name {table} --stream-specification" in str(err.value)


def test_other_views_fail_only_when_images_are_required(ddb: Any) -> None:
    table = make_table(ddb, "KEYS_ONLY")
    with pytest.raises(StreamCheckFailed, match="stream view is KEYS_ONLY"):
        check_table(ddb, table, require_new_and_old=True)
    assert check_table(ddb, table, require_new_and_old=False)["StreamViewType"] == "KEYS_ONLY"


def test_missing_table(ddb: Any) -> None:
    with pytest.raises(StreamCheckFailed, match="table nope-123: not found"):
        check_table(ddb, "nope-123", require_new_and_old=True)


# ----------------------------------------------------------------------------- the handler


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that records the PUT bodies CloudFormation would receive."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/response", bodies
    finally:
        server.shutdown()
        server.server_close()


def event(url: str, request: str, table: str, **extra: Any) -> dict[str, Any]:
    return {"RequestType": request, "ResponseURL": url, "StackId": "stack-1",
            "RequestId": "req-1", "LogicalResourceId": "OrdersStreamCheck",
            "ResourceProperties": {"TableName": table, "RequireNewAndOldImages": "true"},
            **extra}


def test_handler_reports_success_with_the_stream(ddb: Any, response_url: Any) -> None:
    url, bodies = response_url
    table = make_table(ddb, "NEW_AND_OLD_IMAGES")
    stream_check.handler(event(url, "Create", table), None, client=ddb)
    (body,) = bodies
    assert body["Status"] == "SUCCESS"
    assert body["Data"]["StreamArn"].startswith("arn:aws:dynamodb:")
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        "stack-1", "req-1", "OrdersStreamCheck")
    assert body["PhysicalResourceId"] == f"stream-check-{table}"


def test_handler_fails_the_stack_with_one_reason(ddb: Any, response_url: Any) -> None:
    url, bodies = response_url
    table = make_table(ddb, None)
    stream_check.handler(event(url, "Update", table, PhysicalResourceId="keep-me"), None,
                         client=ddb)
    (body,) = bodies
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith(f"table {table}: DynamoDB Streams is not enabled")
    assert body["PhysicalResourceId"] == "keep-me"


def test_handler_answers_even_on_unexpected_errors(response_url: Any) -> None:
    url, bodies = response_url

    class Broken:
        class exceptions:
            ResourceNotFoundException = KeyError

        def describe_table(self, **_: Any) -> Any:
            raise RuntimeError("endpoint unreachable")

    stream_check.handler(event(url, "Create", "orders"), None, client=Broken())
    (body,) = bodies
    assert body["Status"] == "FAILED"
    assert "endpoint unreachable" in body["Reason"]


def test_delete_always_succeeds_without_aws(response_url: Any) -> None:
    url, bodies = response_url
    stream_check.handler(event(url, "Delete", "gone", PhysicalResourceId="p"), None,
                         client=object())
    assert [b["Status"] for b in bodies] == ["SUCCESS"]
