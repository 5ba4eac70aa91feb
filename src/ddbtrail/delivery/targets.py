"""Which delivery target a deployed function writes to, read from its environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ddbtrail.delivery.firehose import FirehoseSink
from ddbtrail.delivery.sink import Sink


def sink_from_env(env: Mapping[str, str] | None = None, *,
                  client: Callable[[str], Any]) -> Sink:
    """The delivery target the environment names, for the Lambda handlers.

    Today: Firehose, named by DELIVERY_STREAM_NAME (see ``FirehoseSink.from_env``).
    ``client(service)`` makes the AWS client the target needs. Raises ConfigError naming
    the variable that is missing or wrong.
    """
    env = os.environ if env is None else env
    return FirehoseSink.from_env(client("firehose"), env)
