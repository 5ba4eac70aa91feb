"""CloudFormation custom resource: check at deploy time that a table's stream is usable.

CDK synth is offline, so it cannot see whether an existing table has a stream; this runs
DescribeTable during the deployment instead. Create/Update fail the stack with one line
naming the table and the fix; Delete always succeeds. On success it returns the stream's
ARN (the event source mapping reads it) and view type.

Runs on the Lambda Python runtime with only boto3; no ddbtrail import.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)

RECOMMENDED_VIEW = "NEW_AND_OLD_IMAGES"


class StreamCheckFailed(Exception):
    """The table cannot be captured as configured; the message says why and how to fix it."""


def _enable_hint(table: str) -> str:
    return (f"aws dynamodb update-table --table-name {table} --stream-specification "
            f"StreamEnabled=true,StreamViewType={RECOMMENDED_VIEW}")


def check_table(client: Any, table: str, *, require_new_and_old: bool) -> dict[str, str]:
    """``{"StreamArn", "StreamViewType"}`` of ``table``'s enabled stream.

    Raises StreamCheckFailed if the table is missing, has no enabled stream, or (with
    ``require_new_and_old``) its view is not NEW_AND_OLD_IMAGES.
    """
    try:
        desc = client.describe_table(TableName=table)["Table"]
    except client.exceptions.ResourceNotFoundException:
        raise StreamCheckFailed(f"table {table}: not found in this account and region") from None
    spec = desc.get("StreamSpecification") or {}
    arn = desc.get("LatestStreamArn")
    if not spec.get("StreamEnabled") or not arn:
        raise StreamCheckFailed(f"table {table}: DynamoDB Streams is not enabled; enable it "
                                f"with: {_enable_hint(table)}")
    view = spec.get("StreamViewType", "")
    if require_new_and_old and view != RECOMMENDED_VIEW:
        raise StreamCheckFailed(
            f"table {table}: stream view is {view}, not {RECOMMENDED_VIEW}, so rows would miss "
            f"images; switch the view (disable the stream, then {_enable_hint(table)}) or deploy "
            "with -c require_new_and_old_images=false")
    return {"StreamArn": arn, "StreamViewType": view}


def respond(event: dict[str, Any], status: str, reason: str, data: dict[str, str],
            physical_id: str) -> None:
    """PUT the custom resource response to CloudFormation's pre-signed URL."""
    body = json.dumps({
        "Status": status,
        "Reason": reason[:3000],
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }).encode()
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's https response URL
        event["ResponseURL"], data=body, method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def handler(event: dict[str, Any], context: Any, client: Any = None) -> None:
    """Lambda entry point. Always responds, so a failure never hangs the stack."""
    props = event.get("ResourceProperties", {})
    table = str(props.get("TableName", ""))
    physical_id = event.get("PhysicalResourceId") or f"stream-check-{table}"
    if event.get("RequestType") == "Delete":
        respond(event, "SUCCESS", "nothing to delete", {}, physical_id)
        return
    try:
        if client is None:
            import boto3  # the Lambda runtime provides it

            client = boto3.client("dynamodb")
        require = str(props.get("RequireNewAndOldImages", "true")).lower() == "true"
        data = check_table(client, table, require_new_and_old=require)
    except StreamCheckFailed as exc:
        logger.error("%s", exc)
        respond(event, "FAILED", str(exc), {}, physical_id)
        return
    except Exception as exc:  # any other error must still answer CloudFormation
        logger.exception("stream check failed")
        respond(event, "FAILED", f"table {table}: stream check failed: {exc}", {}, physical_id)
        return
    logger.info("table %s: stream %s (%s)", table, data["StreamArn"], data["StreamViewType"])
    respond(event, "SUCCESS", "stream enabled", data, physical_id)
