"""What several commands parse the same way: ``--key`` options, the CloudTrail options,
and the lake with its AWS session, as the API takes them."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Final

import typer

from ddbtrail.cli._aws import aws_session
from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.core.settings import parse_assignments

if TYPE_CHECKING:
    import ddbtrail.api as dt

CloudTrailOption = Annotated[str | None, typer.Option(
    "--cloudtrail", envvar="DDBTRAIL_CLOUDTRAIL",
    help="CloudTrail logs: a folder or s3://bucket/prefix in CloudTrail's AWSLogs/ layout "
         "[env: DDBTRAIL_CLOUDTRAIL].")]
ToleranceOption = Annotated[int, typer.Option(
    min=0, max=60,
    help="Seconds a write event may precede its change (0: the change's own second).")]
SHOWN_PROBLEMS: Final = 10


class Bucket(enum.StrEnum):
    """Time buckets (UTC) between which drift is found."""

    day = "day"
    hour = "hour"


BucketOption = Annotated[Bucket, typer.Option(
    help="Drift is found between these time buckets (UTC).")]


def parse_key_options(options: Sequence[str]) -> dict[str, str]:
    """``["pk=a", "sk=b"]`` -> ``{"pk": "a", "sk": "b"}``; InvalidArgument naming --key."""
    values = parse_assignments(options, option="--key",
                               expected="ATTR=VALUE, e.g. --key Id=101", repeated="given twice")
    if not values:
        raise InvalidArgument("--key", None, "give the item's key, e.g. --key Id=101")
    return values


def open_lake(lake: str | None, endpoint_url: str | None, region: str | None,
              profile: str | None) -> dt.Lake:
    """The API's lake for ``--lake``, ``--endpoint-url``, ``--region`` and ``--profile``."""
    from ddbtrail.api import Lake

    return Lake.open(lake, boto3_session=aws_session(region, profile), endpoint_url=endpoint_url)


class Problems:
    """Collects the CloudTrail records a reader could not read; ``say`` prints the first
    few as warnings and how many more there were."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def say(self) -> None:
        from ddbtrail.cli._app import err_console

        for line in self.lines[:SHOWN_PROBLEMS]:
            err_console.print(f"warning: {line}", markup=False, highlight=False)
        if len(self.lines) > SHOWN_PROBLEMS:
            err_console.print(f"warning: {len(self.lines) - SHOWN_PROBLEMS} more CloudTrail "
                              "records could not be read", markup=False)
