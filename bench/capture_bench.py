"""Capture path vs the naive design, side by side in one run (issues 16 and 28).

Designs, all on the same events:

* **naive, batched** (the headline baseline): boto3's TypeDeserializer + ``json.dumps``
  per change, then PutRecordBatch of 500: the obvious design with the obvious batching.
* **naive, one put_record per change**, as in the seed articles.
* **ddbtrail** ``capture_batch``: lossless codec, validation, packing, PutRecordBatch.
* **the floor**: orjson parse of the event text and orjson write of each change's
  ``dynamodb`` section, nothing else (garbage collector paused): no design can do less.

Each runs two ways: *SDK included* (a real boto3 Firehose client whose HTTP send is
answered locally by a botocore before-send hook, so request building, validation,
serialisation and signing count, as in Lambda, without network time) and *own compute*
(a free client that accepts every record, so only the design's own work counts).

Workload shapes (``SHAPES``), typed as DynamoDB Streams sends them (N as text, B as
base64 text, sets as lists), 20% INSERT, 70% MODIFY (one to three attributes changed),
10% REMOVE (OldImage only), fixed seeds: flat small items, user records with mixed types,
wide items (200 attributes), binary- and set-heavy items, documents nested 8 levels, and
orders with nested lines; the user records again under each of the four view types.
Each shape's event is what one invocation carries: the largest prefix of ``records``
changes (the batch size; DynamoDB's largest is 10,000) whose event JSON fits Lambda's
6 MB payload. The orders shape is also timed in detail at ``records`` changes.
Events are parsed from their JSON text, as Lambda's runtime delivers them.
Every design is warmed once before timing; runs are interleaved so all designs see the
same machine load; figures are medians of process CPU time.
Peak memory (tracemalloc) is measured in a separate, untimed run of each design.

    python -m bench.capture_bench [--records N] [--runs N]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import random
import statistics
import string
import time
import tracemalloc
from typing import Any

import boto3
import orjson
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


# ---------------------------------------------------------------------------- shapes
# Each shape makes (keys, new image) for change i; a MODIFY's old image is the new one
# with a few attributes changed, as an update writes it. Values are typed exactly as
# DynamoDB Streams send them: N as text, B as base64 text, sets as lists.

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
          "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa")


def _s(rng: random.Random, lo: int = 4, hi: int = 24) -> dict[str, Any]:
    return {"S": "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(lo, hi)))}


def _n(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"N": str(rng.randrange(-10**6, 10**9))}
    return {"N": f"{rng.randrange(10**6)}.{rng.randrange(1, 10**4)}"}


def _b(rng: random.Random, lo: int = 16, hi: int = 256) -> str:
    return base64.b64encode(rng.randbytes(rng.randint(lo, hi))).decode()


def _orders(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    item = {
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
    return {"pk": item["pk"], "sk": item["sk"]}, item


def _flat(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """5 to 10 attributes of S, N and BOOL: counters, sessions, device readings."""
    item: dict[str, Any] = {"pk": {"S": f"DEVICE#{rng.randrange(20_000):05d}"},
                            "ts": {"N": str(1714564800000 + i)}}
    extra = [("state", lambda: {"S": rng.choice(["ok", "warn", "fail"])}),
             ("temp", lambda: {"N": f"{rng.randrange(-40, 90)}.{rng.randrange(10)}"}),
             ("online", lambda: {"BOOL": rng.random() < 0.9}),
             ("reads", lambda: {"N": str(rng.randrange(10**7))}),
             ("fw", lambda: {"S": f"v{rng.randrange(5)}.{rng.randrange(20)}"}),
             ("site", lambda: _s(rng, 6, 12)),
             ("alarm", lambda: {"BOOL": rng.random() < 0.05}),
             ("battery", lambda: {"N": str(rng.randrange(101))})]
    for name, make in extra[:rng.randint(3, 8)]:
        item[name] = make()
    return {"pk": item["pk"], "ts": item["ts"]}, item


def _users(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plain user records: strings, numbers, booleans, nulls, a small map and a list."""
    first, last = rng.choice(_WORDS).title(), rng.choice(_WORDS).title()
    item = {
        "user_id": {"S": f"u-{rng.getrandbits(64):016x}"},
        "email": {"S": f"{first.lower()}.{last.lower()}{i}@example.com"},
        "name": {"S": f"{first} {last}"},
        "age": {"N": str(rng.randrange(18, 90))},
        "balance": {"N": f"{rng.randrange(10**5)}.{rng.randrange(100):02d}"},
        "verified": {"BOOL": rng.random() < 0.7},
        "admin": {"BOOL": rng.random() < 0.02},
        "deleted_at": {"NULL": True},
        "phone": ({"NULL": True} if rng.random() < 0.3
                  else {"S": f"+372{rng.randrange(10**7):07d}"}),
        "created": {"S": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00Z"},
        "address": {"M": {"street": {"S": f"{rng.randrange(1, 200)} {rng.choice(_WORDS)} St"},
                          "city": {"S": rng.choice(["Tallinn", "Tartu", "Riga", "Oslo"])},
                          "zip": {"S": f"{rng.randrange(10**5):05d}"},
                          "primary": {"BOOL": True}}},
        "roles": {"L": [{"S": r} for r in rng.sample(["reader", "writer", "owner", "billing"],
                                                      rng.randint(1, 3))]},
        "logins": {"N": str(rng.randrange(5000))},
    }
    return {"user_id": item["user_id"]}, item


def _wide(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """200 attributes: a denormalised record (one of S, N or BOOL per column)."""
    item: dict[str, Any] = {"id": {"S": f"ROW#{i:08d}"}}
    for c in range(199):
        kind = c % 3
        item[f"col_{c:03d}"] = (_s(rng, 3, 12) if kind == 0 else _n(rng) if kind == 1
                                else {"BOOL": rng.random() < 0.5})
    return {"id": item["id"]}, item


def _binary(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """Binary values and sets: blobs, a binary sort key, thumbnails, tags, scores."""
    item = {
        "bucket": {"S": f"B#{rng.randrange(1000)}"},
        "digest": {"B": _b(rng, 32, 32)},
        "blob": {"B": _b(rng, 64, 512)},
        "thumbs": {"BS": list(dict.fromkeys(_b(rng, 24, 96) for _ in range(rng.randint(2, 5))))},
        "tags": {"SS": rng.sample(_WORDS, rng.randint(3, 10))},
        "scores": {"NS": list(dict.fromkeys(str(rng.randrange(10**6)) + (
            f".{rng.randrange(1, 100)}" if rng.random() < 0.3 else "")
            for _ in range(rng.randint(3, 10))))},
        "sizes": {"NS": [str(s) for s in rng.sample(range(1, 10**5), rng.randint(2, 6))]},
        "owners": {"SS": [f"u-{rng.getrandbits(32):08x}" for _ in range(rng.randint(1, 4))]},
        "sealed": {"BOOL": rng.random() < 0.5},
    }
    return {"bucket": item["bucket"], "digest": item["digest"]}, item


def _nested_value(rng: random.Random, depth: int) -> dict[str, Any]:
    if depth <= 0:
        leaf = rng.random()
        return (_s(rng, 3, 10) if leaf < 0.4 else _n(rng) if leaf < 0.75
                else {"BOOL": rng.random() < 0.5} if leaf < 0.9 else {"NULL": True})
    if rng.random() < 0.6:
        return {"M": {rng.choice(_WORDS) + str(k): _nested_value(rng, depth - 1)
                      for k in range(rng.randint(1, 2))}}
    return {"L": [_nested_value(rng, depth - 1) for _ in range(rng.randint(1, 2))]}


def _nested(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """Documents: maps and lists nested 8 levels deep (DynamoDB allows 32)."""
    item = {"doc_id": {"S": f"DOC#{i:08d}"},
            "version": {"N": str(rng.randrange(1, 100))},
            "body": _nested_value(rng, 8),
            "meta": {"M": {"source": {"S": "import"},
                           "tree": _nested_value(rng, 5)}}}
    return {"doc_id": item["doc_id"]}, item


def _mutate(value: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The value as it was before an update changed it (same type, other content)."""
    ((tag, raw),) = value.items()
    if tag == "S":
        return {"S": raw + "-was"}
    if tag == "N":
        return {"N": str(rng.randrange(10**4))}
    if tag == "BOOL":
        return {"BOOL": not raw}
    if tag == "NULL":
        return {"S": "pending"}
    if tag == "B":
        return {"B": _b(rng, 8, 64)}
    if tag in ("SS", "NS", "BS"):
        if len(raw) > 1:
            return {tag: raw[:-1]}
        extra = {"SS": ("was", "was-1"), "NS": ("-1", "-2"), "BS": ("d2Fz", "d2FzMQ==")}[tag]
        return {tag: [*raw, extra[0] if extra[0] not in raw else extra[1]]}
    if tag == "M":
        if not raw:
            return {"M": {"was": {"NULL": True}}}
        name = rng.choice(list(raw))
        return {"M": {**raw, name: _mutate(raw[name], rng)}}
    return {"L": [_mutate(raw[0], rng), *raw[1:]] if raw else [{"NULL": True}]}


SHAPES: dict[str, Any] = {
    "flat": _flat, "users": _users, "wide": _wide, "binary": _binary, "nested": _nested,
    "orders": _orders,
}
SHAPE_LABELS = {
    "flat": "flat small items (5-10 S, N, BOOL)",
    "users": "user records, mixed types",
    "wide": "wide items (200 attributes)",
    "binary": "binary and sets (B, BS, SS, NS)",
    "nested": "documents nested 8 levels (M, L)",
    "orders": "orders with nested lines",
}
VIEW_TYPES = ("NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY")


def make_event(n: int, seed: int = 7, *, shape: str = "orders",
               view: str = "NEW_AND_OLD_IMAGES") -> dict[str, Any]:
    """``n`` stream records of one table, as DynamoDB Streams sends them with ``view``:
    20% INSERT (NewImage), 70% MODIFY (both images, one to three attributes changed),
    10% REMOVE (OldImage only), each keeping only the images ``view`` carries.

    Returned as a handler receives it: parsed from its JSON text (Lambda's Python runtime
    hands the handler ``simplejson.loads`` of the invocation payload), so every value is
    its own object and each record's objects lie together in memory.
    """
    rng = random.Random(f"{seed}-{shape}")
    make = SHAPES[shape]
    records = []
    for i in range(n):
        keys, new = make(i, rng)
        roll = rng.random()
        action = "INSERT" if roll < 0.2 else "MODIFY" if roll < 0.9 else "REMOVE"
        old: dict[str, Any] | None = None
        if action != "INSERT":
            old = dict(new)
            others = [k for k in new if k not in keys]
            for name in rng.sample(others, min(len(others), rng.randint(1, 3))):
                old[name] = _mutate(new[name], rng)
        if action == "REMOVE":
            new = None
        images = {"NewImage": new, "OldImage": old}
        ddb: dict[str, Any] = {"ApproximateCreationDateTime": 1714564800 + i // 100,
                               "Keys": keys}
        wanted = {"NEW_AND_OLD_IMAGES": ("NewImage", "OldImage"), "NEW_IMAGE": ("NewImage",),
                  "OLD_IMAGE": ("OldImage",), "KEYS_ONLY": ()}[view]
        for name in wanted:
            if images[name] is not None:
                ddb[name] = images[name]
        ddb["SequenceNumber"] = str(10**20 + i)
        ddb["SizeBytes"] = len(json.dumps(ddb, separators=(",", ":"))) // 2
        ddb["StreamViewType"] = view
        records.append({
            "eventID": f"ev-{shape}-{i}", "eventName": action, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": ddb,
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{shape}/stream/x",
        })
    return json.loads(json.dumps({"Records": records}))


LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's invocation payload limit, 6 MB
BATCH = 500  # PutRecordBatch's most records per call


class NaiveDeserializer(TypeDeserializer):
    """boto3's TypeDeserializer, taking B as the base64 text a stream event carries.

    TypeDeserializer's Binary refuses text, so a user whose table holds binary writes
    this override; passing the text through is the cheapest fix (no decode, and
    ``json.dumps`` writes the same base64 back)."""

    def _deserialize_b(self, value: Any) -> Any:
        return value


def naive_rows(event: dict[str, Any]) -> list[bytes]:
    """The seed articles' row: deserialize each image, dump it as JSON."""
    deser = NaiveDeserializer()
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
    gc.collect()  # no design pays for the garbage of the one before
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


def floor(text: str) -> bytes:
    """The floor: parse the event's JSON and write each change's ``dynamodb`` section back
    with orjson, newline-separated; no logic at all."""
    records = orjson.loads(text)["Records"]
    return b"\n".join([orjson.dumps(r["dynamodb"]) for r in records])


def _floor_seconds(text: str) -> float:
    """CPU time of ``floor`` with the garbage collector paused: the parse allocates an
    object per value, and collections over them would otherwise be most of its time
    (800 ms against 160 ms on the nested shape), which is no floor."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        floor(text)
        return time.process_time() - start
    finally:
        gc.enable()


def measure(event: dict[str, Any], runs: int, designs: tuple[str, ...] = tuple(DESIGNS), *,
            with_floor: bool = False, memory: bool = True) -> dict[str, Any]:
    """``designs`` x (SDK included, own compute), and the floor when asked, warmed,
    interleaved, medians."""
    n = len(event["Records"])
    text = json.dumps(event, separators=(",", ":"))
    keys = [(name, sdk) for name in designs for sdk in (True, False)]
    times: dict[tuple[str, bool], list[float]] = {k: [] for k in keys}
    floors: list[float] = []
    counts: dict[tuple[str, bool], Any] = {}
    for name, sdk in keys:  # warm-up: imports, caches, botocore's model loading
        _run(DESIGNS[name], event, sdk)
    floor(text)
    for _ in range(runs):
        for key in keys:
            seconds, counter = _run(DESIGNS[key[0]], event, key[1])
            times[key].append(seconds)
            counts[key] = counter
        if with_floor:
            floors.append(_floor_seconds(text))
    out: dict[str, Any] = {"records": n, "event_bytes": len(text), "designs": {}}
    for name in designs:
        sdk, own = statistics.median(times[(name, True)]), statistics.median(times[(name, False)])
        c = counts[(name, True)]
        out["designs"][name] = {
            "sdk_s": sdk, "own_s": own,
            "sdk_ms_per_10k": 1000 * sdk * 10_000 / n, "own_ms_per_10k": 1000 * own * 10_000 / n,
            "firehose_calls": c.calls, "firehose_records": c.records, "bytes": c.bytes,
            "billed_5kb_units": c.units,
            "peak_mib": peak_memory(DESIGNS[name], event) / 2**20 if memory else None,
        }
    d = out["designs"]
    out["speedup_sdk_vs_batched"] = d["naive_batched"]["sdk_s"] / d["ddbtrail"]["sdk_s"]
    out["speedup_own_vs_batched"] = d["naive_batched"]["own_s"] / d["ddbtrail"]["own_s"]
    if "naive_per_record" in d:
        out["speedup_sdk_vs_per_record"] = d["naive_per_record"]["sdk_s"] / d["ddbtrail"]["sdk_s"]
    if "ddbtrail_receipts" in d:  # what a receipt adds to one invocation
        out["receipt_added_ms"] = 1000 * (d["ddbtrail_receipts"]["sdk_s"] - d["ddbtrail"]["sdk_s"])
    if with_floor:
        out["floor_s"] = statistics.median(floors)
        out["floor_distance_own"] = d["ddbtrail"]["own_s"] / out["floor_s"]
        out["floor_distance_sdk"] = d["ddbtrail"]["sdk_s"] / out["floor_s"]
    return out


def shape_event(shape: str, records: int, view: str = "NEW_AND_OLD_IMAGES") -> dict[str, Any]:
    """What one invocation carries: the largest prefix of ``records`` changes whose event
    JSON fits Lambda's 6 MB payload (``records`` is the batch size, at most 10,000)."""
    n = min(records, 64)
    while True:  # a prefix of make_event(records), without making all of it (wide: 100 MB)
        event = lambda_sized(make_event(n, shape=shape, view=view))
        if len(event["Records"]) < n or n == records:
            return event
        n = min(records, n * 4)


# The view types are measured on the user records (a stream has one view type).
VIEW_SHAPE = "users"


def main(records: int = 10_000, runs: int = 5) -> dict[str, Any]:
    """Every shape (and the user records under each view type) at one invocation's size,
    and the orders shape in detail at ``records`` and at one invocation's size.
    ``result["ddbtrail"]``/``["naive"]`` keep the orders 10k SDK figures (naive: one
    put_record per change, as the cost model prices it)."""
    event = make_event(records)
    full = measure(event, runs)
    small = measure(lambda_sized(event), runs)
    summary = ("naive_batched", "ddbtrail")
    shapes = {shape: measure(shape_event(shape, records), runs, summary, with_floor=True,
                             memory=False) for shape in SHAPES}
    views = {view: measure(shape_event(VIEW_SHAPE, records, view), runs, summary,
                           with_floor=True, memory=False) for view in VIEW_TYPES[1:]}
    views[VIEW_TYPES[0]] = shapes[VIEW_SHAPE]
    fd = full["designs"]
    return {
        "records": records, "runs": runs, "load_average": os.getloadavg(),
        "full": full, "lambda_sized": small, "shapes": shapes, "views": views,
        "ddbtrail": {"cpu_s": fd["ddbtrail"]["sdk_s"]},
        "naive": {"cpu_s": fd["naive_per_record"]["sdk_s"]},
    }


def _summary_row(label: str, m: dict[str, Any]) -> str:
    d = m["designs"]
    nb, dd = d["naive_batched"], d["ddbtrail"]
    return (f"| {label} | {m['records']:,} | {m['event_bytes'] / 1e6:.2f} | "
            f"{1000 * nb['sdk_s']:,.0f} | {1000 * dd['sdk_s']:,.0f} | "
            f"**{m['speedup_sdk_vs_batched']:.2f}x** | {1000 * nb['own_s']:,.0f} | "
            f"{1000 * dd['own_s']:,.0f} | **{m['speedup_own_vs_batched']:.2f}x** | "
            f"{1000 * m['floor_s']:,.0f} | {m['floor_distance_own']:.1f}x |")


_SUMMARY_HEAD = [
    "| shape | records | event MB | naive batched ms, SDK | ddbtrail ms, SDK | "
    "**naive / ddbtrail, SDK** | naive batched ms, own | ddbtrail ms, own | "
    "**naive / ddbtrail, own** | floor ms | ddbtrail own / floor |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


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
    shapes, views = result["shapes"], result["views"]
    return "\n".join([
        f"Median of {result['runs']} interleaved runs after one warm-up run each, process CPU "
        f"time; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) "
        "when the capture bench ended.",
        "",
        "**Every shape**, one invocation each: the largest prefix of "
        f"{result['records']:,} changes (the batch size) whose event JSON fits Lambda's 6 MB "
        "payload; NEW_AND_OLD_IMAGES, 20% INSERT, 70% MODIFY, 10% REMOVE. ms per invocation; "
        "*floor* = orjson parse of the event text plus orjson write of each change's "
        "`dynamodb` section, nothing else:",
        "",
        *_SUMMARY_HEAD,
        *(_summary_row(SHAPE_LABELS[s], m) for s, m in shapes.items()),
        "",
        f"**Each view type**, on the user records ({SHAPE_LABELS[VIEW_SHAPE]}), same mix:",
        "",
        *(row.replace("| shape |", "| view type |", 1) for row in _SUMMARY_HEAD),
        *(_summary_row(v, views[v]) for v in VIEW_TYPES),
        "",
        "**Orders in detail:**",
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
