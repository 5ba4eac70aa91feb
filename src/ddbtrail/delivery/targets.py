"""Which delivery target rows go to: the one choice of a sink, for the Lambda handlers,
the CLI's jobs and the local stream runner alike."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, overload

from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.delivery.sink import Sink

if TYPE_CHECKING:
    from ddbtrail.delivery.firehose import FirehoseSink
    from ddbtrail.delivery.local import LocalDeliveryStream
    from ddbtrail.lake.files import Lake

KINDS: Final = ("firehose", "local")


@overload
def open_sink(kind: Literal["local"], *, lake: Lake | None = ..., fmt: str = ...,
              name: str = ..., buffer_seconds: float | None = ...,
              delivery_stream: str | None = ..., client: Callable[[str], Any] | None = ...,
              env: Mapping[str, str] | None = ...) -> LocalDeliveryStream: ...


@overload
def open_sink(kind: Literal["firehose"], *, lake: Lake | None = ..., fmt: str = ...,
              name: str = ..., buffer_seconds: float | None = ...,
              delivery_stream: str | None = ..., client: Callable[[str], Any] | None = ...,
              env: Mapping[str, str] | None = ...) -> FirehoseSink: ...


@overload
def open_sink(kind: str, *, lake: Lake | None = ..., fmt: str = ..., name: str = ...,
              buffer_seconds: float | None = ..., delivery_stream: str | None = ...,
              client: Callable[[str], Any] | None = ...,
              env: Mapping[str, str] | None = ...) -> Sink: ...


def open_sink(kind: str, *, lake: Lake | None = None, fmt: str = "parquet",
              name: str = "ddbtrail-local", buffer_seconds: float | None = None,
              delivery_stream: str | None = None, client: Callable[[str], Any] | None = None,
              env: Mapping[str, str] | None = None) -> Sink:
    """The delivery target ``kind`` names; the one place a sink is chosen and built.

    ``"firehose"``: the Firehose stream ``delivery_stream``, else the one the environment
    names (DELIVERY_STREAM_NAME, see ``FirehoseSink.from_env``); ``client(service)``
    makes its AWS client. ``"local"``: the local delivery stream into ``lake``, files in
    ``fmt``, named ``name``, buffering up to ``buffer_seconds``. Raises InvalidArgument
    naming ``kind``, ``client`` or ``lake`` when one is missing or unknown; ConfigError
    for a bad setting.
    """
    # Each target loads when chosen: the runner needs no Firehose, the Lambda no pyarrow.
    if kind == "firehose":
        from ddbtrail.delivery.firehose import FirehoseSink

        if client is None:
            raise InvalidArgument("client", None, "a Firehose sink needs an AWS client factory")
        if delivery_stream:
            return FirehoseSink(client("firehose"), delivery_stream)
        return FirehoseSink.from_env(client("firehose"), os.environ if env is None else env)
    if kind == "local":
        if lake is None:
            raise InvalidArgument("lake", None, "a local sink writes into a lake; give one")
        from ddbtrail.delivery.local import DEFAULT_BUFFER_SECONDS, LocalDeliveryStream

        return LocalDeliveryStream(lake, name=name, fmt=fmt, buffer_seconds=(
            DEFAULT_BUFFER_SECONDS if buffer_seconds is None else buffer_seconds))
    raise InvalidArgument("kind", kind, f"one of {', '.join(KINDS)}")


def sink_from_env(env: Mapping[str, str] | None = None, *,
                  client: Callable[[str], Any]) -> Sink:
    """The delivery target the environment names, for the Lambda handlers: Firehose,
    named by DELIVERY_STREAM_NAME (``open_sink("firehose")``). Raises ConfigError naming
    the variable that is missing or wrong."""
    return open_sink("firehose", client=client, env=env)
