"""PII redaction: dropped or HMAC'd before rows leave the capture path, lake and spill alike."""

from __future__ import annotations

import json

import pytest

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.capture.redaction_key import load_key, policy_from_env
from ddbtrail.core.exceptions import ConfigError
from ddbtrail.core.redact import RedactionPolicy
from ddbtrail.delivery.firehose import FirehoseSink
from tests.stubs import StubFirehose
from tests.unit.test_capture_delivery import FakeS3

SECRET_EMAIL = "alice@example.com"
SECRET_SSN = "123-45-6789"
SECRET_STREET = "1 Hidden Lane"


def record(i: int, email: str = SECRET_EMAIL, pad: int = 0) -> dict:
    image = {"email": {"S": email}, "pk": {"S": f"u{i}"}, "ssn": {"S": SECRET_SSN},
             "address": {"M": {"street": {"S": SECRET_STREET}, "city": {"S": "Tartu"}}},
             "pad": {"S": "p" * pad}}
    return {"eventID": f"e{i}", "eventName": "INSERT",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/users/stream/x",
            "dynamodb": {"ApproximateCreationDateTime": 1714564800, "Keys": {"pk": image["pk"]},
                         "NewImage": image, "SequenceNumber": str(100 + i)}}


POLICY = RedactionPolicy.from_mapping(
    {"users": {"email": "hmac", "ssn": "drop", "/address/street": "drop"}}, b"k" * 32)


def capture(records: list[dict], policy: RedactionPolicy = POLICY) -> tuple[StubFirehose, FakeS3]:
    stub, s3 = StubFirehose(), FakeS3()
    settings = CaptureSettings(spill_bucket="spill", redaction=policy)
    result = capture_batch({"Records": records}, sink=FirehoseSink(stub, "s"), settings=settings,
                           s3=s3)
    assert not result.failed
    return stub, s3


def everything_written(stub: StubFirehose, s3: FakeS3) -> bytes:
    return b"".join(stub.accepted) + b"".join(s3.objects.values())


def test_redacted_values_never_reach_the_lake_or_the_spill_bucket() -> None:
    oversize = record(2, pad=1_100_000)  # spilled to S3
    malformed = record(3)
    malformed["dynamodb"]["NewImage"]["bad"] = {"Z": 1}  # quarantined to S3
    stub, s3 = capture([record(1), oversize, malformed])
    written = everything_written(stub, s3)
    for secret in (SECRET_EMAIL, SECRET_SSN, SECRET_STREET):
        assert secret.encode() not in written
    assert len(s3.objects) == 2  # the spilled row and the quarantined record


def test_hmac_keeps_equality_joins_and_drop_removes() -> None:
    stub, _ = capture([record(1), record(2), record(3, email="bob@example.com")])
    images = [json.loads(json.loads(line)["new_image"]) for line in stub.rows()]
    assert all("ssn" not in img for img in images)
    assert all(img["address"] == {"city": "Tartu"} for img in images)
    emails = [img["email"] for img in images]
    assert emails[0] == emails[1] != emails[2]
    assert all(e.startswith("hmac:") and len(e) == 5 + 64 for e in emails)


def test_hmac_depends_on_the_key_and_on_the_type() -> None:
    other = RedactionPolicy.from_mapping({"users": {"email": "hmac"}}, b"another key")
    r1, r2 = POLICY.redactor("users"), other.redactor("users")
    assert r1 and r2
    assert r1.digest({"S": "x"}) != r2.digest({"S": "x"})
    assert r1.digest({"S": "1"}) != r1.digest({"N": "1"})


def test_a_dropped_key_attribute_is_hmaced_in_keys_and_item_key() -> None:
    policy = RedactionPolicy.from_mapping({"*": {"pk": "drop"}}, b"key")
    stub, _ = capture([record(1)], policy)
    row = json.loads(stub.rows()[0])
    assert "u1" not in row["item_key"] and "hmac:" in row["item_key"]
    assert json.loads(row["keys"])["pk"].startswith("hmac:")
    assert "pk" not in json.loads(row["new_image"])


def test_other_tables_are_untouched() -> None:
    rec = record(1)
    rec["eventSourceARN"] = "arn:aws:dynamodb:us-east-1:1:table/orders/stream/x"
    stub, _ = capture([rec])
    assert SECRET_EMAIL in json.loads(stub.rows()[0])["new_image"]


@pytest.mark.parametrize(("policy", "message"), [
    ('{"users": {"email": "mask"}}', "mode 'mask' is not drop or hmac"),
    ('{"users": ["email"]}', "must map attributes to modes"),
    ("[1]", "must be a JSON object"),
    ("{nope", "not valid JSON"),
    ('{"users": {"/a//b": "drop"}}', "not a valid JSON pointer"),
])
def test_bad_policies_name_the_fault(policy: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        policy_from_env({"REDACTION_POLICY": policy, "REDACTION_KEY": "k"})


def test_a_policy_without_a_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a key"):
        policy_from_env({"REDACTION_POLICY": '{"users": {"ssn": "drop"}}'})


def test_key_sources() -> None:
    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict:
            return {"SecretString": f"from {SecretId}"}

    class Params:
        def get_parameter(self, Name: str, WithDecryption: bool) -> dict:
            assert WithDecryption
            return {"Parameter": {"Value": f"param {Name}"}}

    secret = load_key({"REDACTION_KEY_SECRET_ARN": "arn:s"}, secretsmanager=Secrets())
    assert secret == b"from arn:s"
    assert load_key({"REDACTION_KEY_PARAMETER": "/k"}, ssm=Params()) == b"param /k"
    assert load_key({"REDACTION_KEY": "local"}) == b"local"
    assert load_key({}) is None
