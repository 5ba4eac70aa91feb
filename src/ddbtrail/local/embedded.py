"""Embedded AWS: moto's server on 127.0.0.1, for the demo and tests. No AWS account needed."""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Any

DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from looking for real ones.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class EmbeddedAWS:
    """moto's ThreadedMotoServer on a free loopback port, with quiet request logging.

    Use as a context manager; ``endpoint_url`` and ``client(service)`` point at it.
    """

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._server: Any = None
        self.endpoint_url = ""

    def start(self) -> EmbeddedAWS:
        # Without this, moto answers DynamoDB Streams calls with "404 Not yet implemented".
        os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:  # pragma: no cover - depends on the install
            from ddbtrail.core.exceptions import ConfigError

            raise ConfigError(
                "the embedded backend needs moto: pip install 'ddbtrail[local]'"
            ) from exc
        for name in ("werkzeug", "moto"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str, config: Any = None) -> Any:
        """A boto3 client for ``service`` on this server; ``config`` is a botocore Config."""
        import boto3

        return boto3.client(service, region_name=self.region,  # type: ignore[call-overload]
                            endpoint_url=self.endpoint_url, config=config, **FAKE_CREDENTIALS)

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
