"""AWS clients, sessions and error lines shared by the commands that talk to AWS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ddbtrail.core.exceptions import DdbtrailError

if TYPE_CHECKING:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint-url", help="AWS endpoint URL (e.g. a local moto server).")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS region.")]


def aws_client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    """A boto3 client from the standard credential chain, built at call time."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint_url, region_name=region)  # type: ignore[call-overload]


def aws_session(region: str | None) -> boto3.Session | None:
    """A boto3 Session pinned to ``region``; None (the library's default) without one."""
    if not region:
        return None
    import boto3

    return boto3.Session(region_name=region)


def aws_failure(action: str, exc: ClientError | BotoCoreError) -> DdbtrailError:
    """One clear line for an AWS error the commands do not handle themselves."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return DdbtrailError(f"{action}: {err.get('Code', 'error')}: {err.get('Message', exc)}")
    return DdbtrailError(f"{action}: {exc}")
