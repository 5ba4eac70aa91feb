"""``Lake``: a lake opened for the API, with the AWS session and endpoint its calls use."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ddbtrail.api._args import setting
from ddbtrail.lake import files

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Lake:
    """A change lake (a folder or ``s3://bucket/prefix``) and how to reach AWS from it.

    Build it with ``Lake.open``. ``files`` is the storage layer's lake; ``boto3_session``
    and ``endpoint_url`` serve every AWS call made for it (DescribeTable, CloudTrail
    logs on S3, Athena, DynamoDB writes).
    """

    files: files.Lake
    boto3_session: boto3.Session | None = None
    endpoint_url: str | None = None

    @classmethod
    def open(cls, uri: str | None = None, *, boto3_session: boto3.Session | None = None,
             endpoint_url: str | None = None) -> Lake:
        """Open a lake; reads nothing yet.

        ``uri``: a folder or ``s3://bucket/prefix`` [default: $DDBTRAIL_LAKE, else
        ./ddbtrail-lake]. ``boto3_session``: credentials and region for an S3 lake and
        for AWS calls [default: boto3's default chain]. ``endpoint_url``: an AWS endpoint
        such as a local moto server [default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL].

        >>> import ddbtrail as dt
        >>> lake = dt.Lake.open("./ddbtrail-lake")
        """
        endpoint = setting(endpoint_url, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        region = boto3_session.region_name if boto3_session is not None else None
        opened = files.Lake.open(uri, endpoint_url=endpoint, region=region)
        if boto3_session is not None and urlparse(opened.uri).scheme == "s3":
            opened = dataclasses.replace(opened, fs=_s3_fs(boto3_session, endpoint))
        return cls(opened, boto3_session, endpoint_url)

    @property
    def uri(self) -> str:
        """The lake's URI: an absolute folder or ``s3://bucket/prefix``."""
        return self.files.uri

    @property
    def reaches_aws(self) -> bool:
        """True when the caller named AWS (a session or an endpoint): key types then come
        from DynamoDB's DescribeTable, as the table is now, rather than from the lake."""
        return self.boto3_session is not None or self.endpoint_url is not None

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` from the lake's session (or boto3's default)."""
        import boto3

        session = self.boto3_session or boto3.Session()
        return session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def dynamodb(self) -> DynamoDBClient:
        """A DynamoDB client from the lake's session and endpoint."""
        client: DynamoDBClient = self.client("dynamodb")
        return client

    def region_and_profile(self) -> tuple[str | None, str | None]:
        """The session's region and profile, for readers that open storage themselves."""
        if self.boto3_session is None:
            return None, None
        profile = self.boto3_session.profile_name
        return self.boto3_session.region_name, None if profile == "default" else profile


def _s3_fs(session: boto3.Session, endpoint_url: str | None) -> Any:
    """A pyarrow S3 filesystem with ``session``'s credentials (pyarrow knows no sessions)."""
    import pyarrow.fs as pafs

    kwargs: dict[str, Any] = dict(files.s3_arguments(session))
    if endpoint_url:
        ep = urlparse(endpoint_url)
        kwargs.update(endpoint_override=ep.netloc or ep.path, scheme=ep.scheme or "http",
                      force_virtual_addressing=False)
    return pafs.S3FileSystem(**kwargs)
