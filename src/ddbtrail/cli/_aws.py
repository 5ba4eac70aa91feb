"""AWS clients, sessions and error lines shared by the commands that talk to AWS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from ddbtrail.core.backoff import error_code, fix_hint, is_permanent
from ddbtrail.core.exceptions import ConfigError, DdbtrailError, PermanentAwsError

if TYPE_CHECKING:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint-url", help="AWS endpoint URL (e.g. a local moto server).")]
RegionOpt = Annotated[str | None, typer.Option(
    "--region", help="AWS region [default: AWS_REGION, or the profile's].")]
ProfileOpt = Annotated[str | None, typer.Option(
    "--profile", help="AWS CLI profile (credentials and region) [default: AWS_PROFILE].")]

NO_REGION: Final = ("no AWS region: give --region, set AWS_REGION (or AWS_DEFAULT_REGION), "
                    "or use a --profile that sets one")


def no_profile(profile: str | None) -> ConfigError:
    """The one line for a --profile that names no profile."""
    return ConfigError(f"--profile {profile}: no such profile in ~/.aws/config or "
                       "~/.aws/credentials")


def aws_session(region: str | None, profile: str | None = None) -> boto3.Session | None:
    """A boto3 Session for ``profile`` and ``region``; None (the library's default) without
    either. Raises ConfigError for an unknown profile."""
    if not region and not profile:
        return None
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(region_name=region, profile_name=profile)
    except ProfileNotFound as exc:
        raise no_profile(profile) from exc


def aws_client(service: str, endpoint_url: str | None, region: str | None,
               profile: str | None = None) -> Any:
    """A boto3 client from the standard credential chain (or ``profile``), built at call
    time. Raises ConfigError naming --region or --profile when either is missing."""
    import boto3
    from botocore.exceptions import NoRegionError

    session = aws_session(region, profile) or boto3.Session()
    try:
        return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]
    except NoRegionError as exc:
        raise ConfigError(NO_REGION) from exc


def aws_failure(action: str, exc: ClientError | BotoCoreError, *,
                resource: str | None = None) -> DdbtrailError:
    """One clear line for an AWS error the commands do not handle themselves; for an
    error that retrying cannot fix, it names ``resource`` and the fix."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoRegionError):
        return ConfigError(NO_REGION)
    if isinstance(exc, NoCredentialsError):
        return DdbtrailError(f"{action}: no AWS credentials found: use --profile, set "
                             "AWS_PROFILE, or configure the standard credential chain")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        line = f"{action}: {err.get('Code', 'error')}: {err.get('Message', exc)}"
        if is_permanent(exc):
            return PermanentAwsError(f"{line}; {fix_hint(error_code(exc), resource or action)}")
        return DdbtrailError(line)
    return DdbtrailError(f"{action}: {exc}")
