"""Capture path vs the naive design, on the same 10,000-record event (issue 2, bench a).

Naive design (as in the seed articles): boto3's TypeDeserializer + json.dumps, one
put_record per change. ddbtrail: capture_batch (lossless codec, packing, PutRecordBatch).
Both send through a real boto3 Firehose client whose HTTP send is answered locally
(a botocore before-send hook) and which counts calls, bytes and billed 5 KB units: the
figures are the compute Lambda bills, SDK work included, without network time (which
would only widen the gap: 10,000 round trips against 4). Runs are interleaved so both
designs see the same machine load.

    python -m bench.capture_bench [--records N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.awsrequest import AWSResponse

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.delivery.firehose import billed_units


class CountingFirehose:
    """A real boto3 Firehose client whose HTTP send is answered locally.

    Request building, validation, serialisation and signing run as in Lambda; only the
    network is skipped. It counts calls, records, bytes and billed units.
    """

    def __init__(self) -> None:
        self.calls = self.records = self.bytes = self.units = 0
        self._pending = 0
        self.client = boto3.client("firehose", region_name="us-east-1",
                                   aws_access_key_id="bench", aws_secret_access_key="bench")
        events = self.client.meta.events
        events.register("provide-client-params.firehose.*", self._count)
        events.register("before-send.firehose.*", self._answer)

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls += 1
        records = params.get("Records") or [params["Record"]]
        self._pending = len(records)
        for r in records:
            self._take(r["Data"])

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        if self._pending > 1 or b"PutRecordBatch" in request.headers.get("X-Amz-Target", b""):
            body = {"FailedPutCount": 0, "Encrypted": False,
                    "RequestResponses": [{"RecordId": "r"}] * self._pending}
        else:
            body = {"RecordId": "r", "Encrypted": False}
        return AWSResponse(request.url, 200, {}, _Raw(json.dumps(body).encode()))

    def _take(self, data: bytes) -> None:
        self.records += 1
        self.bytes += len(data)
        self.units += billed_units(len(data))



class _Raw:
    """The raw body botocore reads from a response."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def make_event(n: int, seed: int = 7) -> dict[str, Any]:
    """A realistic mixed batch: orders with nested lines, sets, numbers; no binary
    (TypeDeserializer in the naive design cannot take base64 text)."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        order = {
            "pk": {"S": f"CUSTOMER#{rng.randrange(5000)}"},
            "sk": {"S": f"ORDER#{i:08d}"},
            "status": {"S": rng.choice(["NEW", "PAID", "SHIPPED", "CANCELLED"])},
            "total": {"N": f"{rng.randrange(1, 10**6)}.{rng.randrange(100):02d}"},
            "items": {"N": str(rng.randrange(1, 20))},
            "tags": {"SS": rng.sample(["gift", "priority", "fragile", "bulk", "eu"], 2)},
            "paid": {"BOOL": rng.random() < 0.5},
            "note": {"NULL": True},
            "lines": {"L": [{"M": {"sku": {"S": f"SKU-{rng.randrange(999)}"},
                                   "qty": {"N": str(rng.randrange(1, 5))},
                                   "price": {"N": f"{rng.randrange(1, 500)}.99"}}}
                            for _ in range(rng.randrange(1, 4))]},
            "address": {"M": {"city": {"S": "Tallinn"}, "zip": {"S": "10111"}}},
        }
        old = dict(order, status={"S": "NEW"})
        action = "MODIFY" if i % 3 else "INSERT"
        ddb: dict[str, Any] = {
            "ApproximateCreationDateTime": 1714564800 + i // 100,
            "Keys": {"pk": order["pk"], "sk": order["sk"]},
            "NewImage": order,
            "SequenceNumber": str(10**20 + i), "SizeBytes": 400,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if action == "MODIFY":
            ddb["OldImage"] = old
        records.append({
            "eventID": f"ev-{i}", "eventName": action, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": ddb,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/x",
        })
    return {"Records": records}


def naive(event: dict[str, Any], firehose: CountingFirehose) -> None:
    """The seed articles' design: deserialize, dump, one put_record per change."""
    deser = TypeDeserializer()
    for record in event["Records"]:
        ddb = record["dynamodb"]
        row = {
            "event_id": record["eventID"],
            "action": record["eventName"],
            "keys": {k: deser.deserialize(v) for k, v in ddb["Keys"].items()},
            "new_image": {k: deser.deserialize(v) for k, v in ddb.get("NewImage", {}).items()},
            "old_image": {k: deser.deserialize(v) for k, v in ddb.get("OldImage", {}).items()},
            "timestamp": ddb["ApproximateCreationDateTime"],
        }
        data = json.dumps(row, default=str).encode() + b"\n"
        firehose.client.put_record(DeliveryStreamName="naive", Record={"Data": data})


def ddbtrail(event: dict[str, Any], firehose: CountingFirehose) -> None:
    result = capture_batch(event, firehose=firehose.client,
                           settings=CaptureSettings(delivery_stream="ddbtrail"))
    assert not result.failed


def measure(fn: Any, event: dict[str, Any]) -> tuple[float, CountingFirehose]:
    firehose = CountingFirehose()
    start = time.process_time()
    fn(event, firehose)
    return time.process_time() - start, firehose


def main(records: int = 10_000, runs: int = 5) -> dict[str, Any]:
    """Run both designs ``runs`` times, interleaved; return medians and ratios."""
    event = make_event(records)
    times: dict[str, list[float]] = {"naive": [], "ddbtrail": []}
    counts: dict[str, CountingFirehose] = {}
    for _ in range(runs):
        for name, fn in (("naive", naive), ("ddbtrail", ddbtrail)):
            seconds, fh = measure(fn, event)
            times[name].append(seconds)
            counts[name] = fh
    med = {k: statistics.median(v) for k, v in times.items()}
    out: dict[str, Any] = {"records": records, "runs": runs}
    for name in ("naive", "ddbtrail"):
        fh = counts[name]
        out[name] = {"cpu_s": med[name], "records_per_s": records / med[name],
                     "firehose_calls": fh.calls, "firehose_records": fh.records,
                     "bytes": fh.bytes, "billed_5kb_units": fh.units}
    out["speedup"] = med["naive"] / med["ddbtrail"]
    out["calls_ratio"] = counts["naive"].calls / counts["ddbtrail"].calls
    out["billed_units_ratio"] = counts["naive"].units / counts["ddbtrail"].units
    return out


def markdown(result: dict[str, Any]) -> str:
    n, d = result["naive"], result["ddbtrail"]
    return "\n".join([
        f"Same {result['records']:,}-record event, median of {result['runs']} interleaved runs "
        "(CPU time).",
        "",
        "| design | records/s | Firehose calls | Firehose records | billed 5 KB units | bytes |",
        "|---|---:|---:|---:|---:|---:|",
        f"| naive (TypeDeserializer + put_record) | {n['records_per_s']:,.0f} | "
        f"{n['firehose_calls']:,} | {n['firehose_records']:,} | {n['billed_5kb_units']:,} | "
        f"{n['bytes']:,} |",
        f"| ddbtrail capture_batch | {d['records_per_s']:,.0f} | {d['firehose_calls']:,} | "
        f"{d['firehose_records']:,} | {d['billed_5kb_units']:,} | {d['bytes']:,} |",
        f"| **ratio (naive / ddbtrail)** | **{result['speedup']:.1f}x faster** | "
        f"**{result['calls_ratio']:,.0f}x fewer** | | "
        f"**{result['billed_units_ratio']:.1f}x fewer** | |",
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(markdown(main(args.records, args.runs)))
