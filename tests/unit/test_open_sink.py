"""``open_sink``: the one choice of a delivery target, for the Lambda, the CLI's jobs and
the runner."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from ddbtrail.core.exceptions import ConfigError, InvalidArgument
from ddbtrail.core.flatten import row_bytes
from ddbtrail.delivery.firehose import FirehoseSink
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.delivery.targets import open_sink, sink_from_env
from ddbtrail.lake.files import Lake
from tests.unit.test_local_delivery import make_row


def _client(service: str) -> object:
    # Building a client calls nothing; the sinks only keep it.
    return boto3.client(service, region_name="us-east-1",  # type: ignore[call-overload]
                        aws_access_key_id="x", aws_secret_access_key="x")


def test_local_sink_writes_rows_into_the_lake_in_its_format(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    sink = open_sink("local", lake=lake, fmt="jsonl", name="ddbtrail-x", buffer_seconds=0)
    assert isinstance(sink, LocalDeliveryStream)
    sink.put_record_batch(DeliveryStreamName="ddbtrail-x",
                          Records=[{"Data": row_bytes(make_row(i))} for i in range(3)])
    sink.flush()
    files = lake.data_files("orders")
    assert [f.format for f in files] == ["jsonl"] and files[0].path.split("/")[-1].startswith(
        "ddbtrail-x")


def test_firehose_sink_is_the_named_stream_or_the_environments() -> None:
    named = open_sink("firehose", delivery_stream="audit", client=_client)
    assert isinstance(named, FirehoseSink) and named.stream_name == "audit"
    from_env = sink_from_env({"DELIVERY_STREAM_NAME": "from-env"}, client=_client)
    assert isinstance(from_env, FirehoseSink) and from_env.stream_name == "from-env"
    with pytest.raises(ConfigError, match="DELIVERY_STREAM_NAME"):
        open_sink("firehose", client=_client, env={})


@pytest.mark.parametrize(("kind", "kw", "param"), [
    ("kinesis", {}, "kind"),
    ("local", {}, "lake"),
    ("firehose", {"delivery_stream": "audit"}, "client"),
])
def test_a_sink_that_cannot_be_built_names_the_argument(
        kind: str, kw: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        open_sink(kind, **kw)  # type: ignore[arg-type]
    assert caught.value.param == param
