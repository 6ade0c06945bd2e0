"""Standard Webhooks signatures, checked against the reference library's test vectors
(standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io

import httpx
import orjson
import pytest

from esim_gateway.domain import new_secret
from esim_gateway.outbound.receiver import create_receiver
from esim_gateway.outbound.signing import SignatureInvalid, sign, signature_header, verify

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str, timestamp: int = VECTOR_TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_signing_the_spec_vector_gives_the_spec_signature() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_a_secret_without_its_whsec_prefix_signs_the_same() -> None:
    bare = VECTOR_SECRET.removeprefix("whsec_")
    assert sign(bare, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_spec_vector_verifies_within_the_tolerance() -> None:
    found = verify(
        VECTOR_SECRET, headers(VECTOR_SIGNATURE), VECTOR_BODY, now=VECTOR_TIMESTAMP + 299
    )
    assert found == VECTOR_ID


def test_the_reference_librarys_invalid_signature_is_refused() -> None:
    # the library's "invalid signature" case: one character off the valid one
    bad = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
    with pytest.raises(SignatureInvalid):
        verify(VECTOR_SECRET, headers(bad), VECTOR_BODY, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_five_minutes_is_refused(offset: int) -> None:
    with pytest.raises(SignatureInvalid, match="too old or too new"):
        verify(VECTOR_SECRET, headers(VECTOR_SIGNATURE), VECTOR_BODY, now=VECTOR_TIMESTAMP + offset)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    sent = headers(VECTOR_SIGNATURE)
    del sent[missing]
    with pytest.raises(SignatureInvalid, match="missing"):
        verify(VECTOR_SECRET, sent, VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_a_header_with_several_signatures_verifies_when_one_matches() -> None:
    other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    several = " ".join([other, "v2," + other[3:], VECTOR_SIGNATURE, other])
    assert verify(VECTOR_SECRET, headers(several), VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="no matching"):
        verify(VECTOR_SECRET, headers(VECTOR_SIGNATURE), b'{"test": 1}', now=VECTOR_TIMESTAMP)


def test_a_rotation_header_carries_one_signature_per_secret() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([new, old], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    for secret in (old, new):
        assert verify(secret, headers(header), VECTOR_BODY, now=VECTOR_TIMESTAMP) == VECTOR_ID


def test_new_secrets_are_24_random_bytes_in_the_whsec_format() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    content = f"{VECTOR_ID}.{VECTOR_TIMESTAMP}.".encode() + VECTOR_BODY
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert "v1," + expected == VECTOR_SIGNATURE


async def test_the_sandbox_receiver_prints_verified_deliveries_and_refuses_the_rest() -> None:
    out = io.StringIO()
    app = create_receiver(VECTOR_SECRET, out=out, clock=lambda: VECTOR_TIMESTAMP)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://receiver"
    ) as client:
        good = await client.post("/hooks", content=VECTOR_BODY, headers=headers(VECTOR_SIGNATURE))
        forged = await client.post(
            "/hooks", content=VECTOR_BODY, headers=headers("v1,AAAA" + VECTOR_SIGNATURE[7:])
        )
    assert good.status_code == 204
    assert forged.status_code == 401
    lines = out.getvalue().splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {"webhook-id": VECTOR_ID, "body": {"test": 2432232314}}
    ]
