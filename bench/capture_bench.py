"""Capture path vs the naive design, side by side in one run (issue 16).

Designs, all on the same events:

* **naive, batched** (the headline baseline): boto3's TypeDeserializer + ``json.dumps``
  per change, then PutRecordBatch of 500: the obvious design with the obvious batching.
* **naive, one put_record per change**, as in the seed articles.
* **ddbtrail** ``capture_batch``: lossless codec, validation, packing, PutRecordBatch.

Each runs two ways: *SDK included* (a real boto3 Firehose client whose HTTP send is
answered locally by a botocore before-send hook, so request building, validation,
serialisation and signing count, as in Lambda, without network time) and *own compute*
(a free client that accepts every record, so only the design's own work counts).

Two event sizes: the 10,000-record event, and the largest batch of the same records
whose event JSON fits Lambda's 6 MB invocation payload (what a real invocation gets).
Both are parsed from their JSON text, as Lambda's runtime delivers an event.
Every design is warmed once before timing; runs are interleaved so all designs see the
same machine load; figures are medians of process CPU time, in ms per 10,000 records.
Peak memory (tracemalloc) is measured in a separate, untimed run of each design.

    python -m bench.capture_bench [--records N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import tracemalloc
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.awsrequest import AWSResponse

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.delivery.firehose import FirehoseSink, billed_units


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
    (TypeDeserializer in the naive design cannot take base64 text).

    Returned as a handler receives it: parsed from its JSON text (Lambda's Python runtime
    hands the handler ``simplejson.loads`` of the invocation payload), so every value is
    its own object and each record's objects lie together in memory. The dicts built
    below share objects between the old and new images instead, which no handler sees.
    """
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
    return json.loads(json.dumps({"Records": records}))


LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's invocation payload limit, 6 MB
BATCH = 500  # PutRecordBatch's most records per call


def naive_rows(event: dict[str, Any]) -> list[bytes]:
    """The seed articles' row: deserialize each image, dump it as JSON."""
    deser = TypeDeserializer()
    out = []
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
        out.append(json.dumps(row, default=str).encode() + b"\n")
    return out


def naive_batched(event: dict[str, Any], firehose: Any) -> None:
    """Naive rows, sent with PutRecordBatch of 500 (no retry of failed entries)."""
    rows = naive_rows(event)
    for i in range(0, len(rows), BATCH):
        firehose.put_record_batch(DeliveryStreamName="naive",
                                  Records=[{"Data": d} for d in rows[i:i + BATCH]])


def naive_per_record(event: dict[str, Any], firehose: Any) -> None:
    """Naive rows, one put_record per change."""
    for data in naive_rows(event):
        firehose.put_record(DeliveryStreamName="naive", Record={"Data": data})


def ddbtrail(event: dict[str, Any], firehose: Any) -> None:
    result = capture_batch(event, sink=FirehoseSink(firehose, "ddbtrail"),
                           settings=CaptureSettings())
    assert not result.failed


class LocalS3:
    """A real boto3 S3 client whose HTTP send is answered locally (one PUT per receipt):
    request building, serialisation and signing run as in Lambda."""

    def __init__(self) -> None:
        self.puts = 0
        self.client = boto3.client("s3", region_name="us-east-1",
                                   aws_access_key_id="bench", aws_secret_access_key="bench")
        self.client.meta.events.register("before-send.s3.*", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        self.puts += 1
        return AWSResponse(request.url, 200, {"ETag": '"e"'}, _Raw(b""))


RECEIPTS = LocalS3()


def ddbtrail_receipts(event: dict[str, Any], firehose: Any) -> None:
    """ddbtrail with receipts on (RECEIPTS_BUCKET set): one S3 PUT per batch."""
    result = capture_batch(event, sink=FirehoseSink(firehose, "ddbtrail"),
                           settings=CaptureSettings(receipts_bucket="lake"),
                           s3=RECEIPTS.client)
    assert not result.failed
    assert result.receipts


class FreeFirehose:
    """Accepts everything at no cost: what is left is each design's own compute."""

    def __init__(self) -> None:
        self.calls = self.records = self.bytes = self.units = 0

    def put_record_batch(self, *, DeliveryStreamName: str,
                         Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        for r in Records:
            self._take(r["Data"])
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"}] * len(Records)}

    def put_record(self, *, DeliveryStreamName: str, Record: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        self._take(Record["Data"])
        return {"RecordId": "r"}

    def _take(self, data: bytes) -> None:
        self.records += 1
        self.bytes += len(data)
        self.units += billed_units(len(data))


DESIGNS: dict[str, Any] = {
    "naive_batched": naive_batched,
    "naive_per_record": naive_per_record,
    "ddbtrail": ddbtrail,
    "ddbtrail_receipts": ddbtrail_receipts,
}
LABELS = {
    "naive_batched": "naive, PutRecordBatch of 500",
    "naive_per_record": "naive, one put_record per change",
    "ddbtrail": "ddbtrail capture_batch",
    "ddbtrail_receipts": "ddbtrail capture_batch, with its receipt (one S3 PUT)",
}


def lambda_sized(event: dict[str, Any], limit: int = LAMBDA_PAYLOAD_BYTES) -> dict[str, Any]:
    """The longest prefix of ``event``'s records whose event JSON fits ``limit`` bytes."""
    sizes = [len(json.dumps(r, separators=(",", ":"))) + 1 for r in event["Records"]]
    total, n = len('{"Records":[]}'), 0
    for size in sizes:
        if total + size > limit:
            break
        total, n = total + size, n + 1
    return {"Records": event["Records"][:n]}


def _client(sdk: bool) -> Any:
    return CountingFirehose() if sdk else FreeFirehose()


def _run(fn: Any, event: dict[str, Any], sdk: bool) -> tuple[float, Any]:
    counter = _client(sdk)
    client = counter.client if sdk else counter
    start = time.process_time()
    fn(event, client)
    return time.process_time() - start, counter


def peak_memory(fn: Any, event: dict[str, Any]) -> int:
    """Peak bytes Python allocated during one run (tracemalloc; not timed)."""
    counter = FreeFirehose()
    tracemalloc.start()
    try:
        fn(event, counter)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(event: dict[str, Any], runs: int) -> dict[str, Any]:
    """Every design x (SDK included, own compute), warmed, interleaved, medians."""
    n = len(event["Records"])
    keys = [(name, sdk) for name in DESIGNS for sdk in (True, False)]
    times: dict[tuple[str, bool], list[float]] = {k: [] for k in keys}
    counts: dict[tuple[str, bool], Any] = {}
    for name, sdk in keys:  # warm-up: imports, caches, botocore's model loading
        _run(DESIGNS[name], event, sdk)
    for _ in range(runs):
        for key in keys:
            seconds, counter = _run(DESIGNS[key[0]], event, key[1])
            times[key].append(seconds)
            counts[key] = counter
    payload = len(json.dumps(event, separators=(",", ":")))
    out: dict[str, Any] = {"records": n, "event_bytes": payload, "designs": {}}
    for name, fn in DESIGNS.items():
        sdk, own = statistics.median(times[(name, True)]), statistics.median(times[(name, False)])
        c = counts[(name, True)]
        out["designs"][name] = {
            "sdk_s": sdk, "own_s": own,
            "sdk_ms_per_10k": 1000 * sdk * 10_000 / n, "own_ms_per_10k": 1000 * own * 10_000 / n,
            "firehose_calls": c.calls, "firehose_records": c.records, "bytes": c.bytes,
            "billed_5kb_units": c.units, "peak_mib": peak_memory(fn, event) / 2**20,
        }
    d = out["designs"]
    out["speedup_sdk_vs_batched"] = d["naive_batched"]["sdk_s"] / d["ddbtrail"]["sdk_s"]
    out["speedup_own_vs_batched"] = d["naive_batched"]["own_s"] / d["ddbtrail"]["own_s"]
    out["speedup_sdk_vs_per_record"] = d["naive_per_record"]["sdk_s"] / d["ddbtrail"]["sdk_s"]
    # What a receipt adds to one invocation (this event is one Lambda batch).
    out["receipt_added_ms"] = 1000 * (d["ddbtrail_receipts"]["sdk_s"] - d["ddbtrail"]["sdk_s"])
    return out


def main(records: int = 10_000, runs: int = 5) -> dict[str, Any]:
    """Both event sizes; ``result["ddbtrail"]``/``["naive"]`` keep the 10k SDK figures
    (naive: one put_record per change, as the cost model prices it)."""
    event = make_event(records)
    full = measure(event, runs)
    small = measure(lambda_sized(event), runs)
    fd = full["designs"]
    return {
        "records": records, "runs": runs, "load_average": os.getloadavg(),
        "full": full, "lambda_sized": small,
        "ddbtrail": {"cpu_s": fd["ddbtrail"]["sdk_s"]},
        "naive": {"cpu_s": fd["naive_per_record"]["sdk_s"]},
    }


def _table(m: dict[str, Any]) -> list[str]:
    d = m["designs"]
    rows = [
        "| design | ms per 10k, SDK included | ms per 10k, own compute | Firehose calls | "
        "Firehose records | bytes sent | billed 5 KB units | peak memory |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in DESIGNS:
        x = d[name]
        rows.append(
            f"| {LABELS[name]} | {x['sdk_ms_per_10k']:,.0f} | {x['own_ms_per_10k']:,.0f} | "
            f"{x['firehose_calls']:,} | {x['firehose_records']:,} | {x['bytes']:,} | "
            f"{x['billed_5kb_units']:,} | {x['peak_mib']:,.1f} MiB |")
    rows.append(
        f"| **naive batched / ddbtrail** | **{m['speedup_sdk_vs_batched']:.2f}x** | "
        f"**{m['speedup_own_vs_batched']:.2f}x** | | | "
        f"{d['ddbtrail']['bytes'] / d['naive_batched']['bytes']:.2f}x the bytes | "
        f"{d['naive_batched']['billed_5kb_units'] / d['ddbtrail']['billed_5kb_units']:.1f}x "
        "fewer | |")
    return rows


def markdown(result: dict[str, Any]) -> str:
    full, small = result["full"], result["lambda_sized"]
    load = result["load_average"]
    return "\n".join([
        f"Median of {result['runs']} interleaved runs after one warm-up run each, process CPU "
        f"time; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) "
        "when the capture bench ended.",
        "",
        f"**{full['records']:,} records** ({full['event_bytes'] / 1e6:.1f} MB of event JSON, "
        "over Lambda's 6 MB invocation payload):",
        "",
        *_table(full),
        "",
        f"**{small['records']:,} records**, the largest batch of these records that fits "
        f"Lambda's 6 MB payload ({small['event_bytes'] / 1e6:.2f} MB):",
        "",
        *_table(small),
        "",
        f"ddbtrail against one put_record per change (10k, SDK included): "
        f"{full['speedup_sdk_vs_per_record']:.1f}x faster.",
        "",
        f"A receipt (one S3 PUT naming every change, SDK included) adds "
        f"{small['receipt_added_ms']:,.0f} ms to an invocation of {small['records']:,} records "
        f"({full['receipt_added_ms']:,.0f} ms at {full['records']:,}).",
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(markdown(main(args.records, args.runs)))
