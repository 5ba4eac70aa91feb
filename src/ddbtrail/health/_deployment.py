"""Find a deployed trail's resources from its CloudFormation stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ddbtrail.catalog.glue import DATABASE_NAME
from ddbtrail.core.exceptions import PermanentAwsError

# The stack's outputs (infra/stacks/ddbtrail_stack.py) the checks read.
OUTPUT_LAKE: Final = "LakeUri"
OUTPUT_DELIVERY_STREAM: Final = "DeliveryStreamName"
OUTPUT_WORKGROUP: Final = "AthenaWorkGroup"
OUTPUT_DATABASE: Final = "GlueDatabase"
ESM_TYPE: Final = "AWS::Lambda::EventSourceMapping"
STATE_MACHINE_TYPE: Final = "AWS::StepFunctions::StateMachine"


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a ddbtrail stack deployed: the names the checks look at.

    ``mappings`` are the event source mappings' UUIDs (the capture of each table);
    ``state_machines`` the maintenance state machines' ARNs.
    """

    stack: str
    mappings: tuple[str, ...] = ()
    state_machines: tuple[str, ...] = ()
    lake_uri: str | None = None
    delivery_stream: str | None = None
    workgroup: str | None = None
    database: str = DATABASE_NAME


def client(service: str, boto3_session: Any = None, endpoint_url: str | None = None) -> Any:
    """A boto3 client from ``boto3_session`` (default: a fresh Session)."""
    import boto3

    session = boto3_session or boto3.Session()
    return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def discover(stack: str, *, boto3_session: Any = None,
             endpoint_url: str | None = None) -> Deployment:
    """The resources of stack ``stack``: its outputs and the physical ids of its event
    source mappings and state machines.

    Raises PermanentAwsError naming the stack when it does not exist or cannot be read
    (no credentials, access denied).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    cfn = client("cloudformation", boto3_session, endpoint_url)
    try:
        found = cfn.describe_stacks(StackName=stack)["Stacks"]
        resources: list[dict[str, Any]] = []
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
            resources.extend(page["StackResourceSummaries"])
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise PermanentAwsError(
            f"stack {stack}: {err.get('Code', 'error')}: {err.get('Message', exc)}; deploy "
            "it (docs/deploy.md), or check the stack name, region and credentials") from exc
    except BotoCoreError as exc:  # no credentials, no endpoint: nothing else can be checked
        raise PermanentAwsError(f"stack {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in found[0].get("Outputs", [])}

    def ids(kind: str) -> tuple[str, ...]:
        return tuple(r["PhysicalResourceId"] for r in resources
                     if r["ResourceType"] == kind and r.get("PhysicalResourceId"))

    return Deployment(
        stack=stack,
        mappings=ids(ESM_TYPE),
        state_machines=ids(STATE_MACHINE_TYPE),
        lake_uri=outputs.get(OUTPUT_LAKE) or None,
        delivery_stream=outputs.get(OUTPUT_DELIVERY_STREAM) or None,
        workgroup=outputs.get(OUTPUT_WORKGROUP) or None,
        database=outputs.get(OUTPUT_DATABASE) or DATABASE_NAME,
    )
