"""Standard Webhooks signatures (https://www.standardwebhooks.com), scheme `v1`.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the base64
part of a `whsec_...` secret; `webhook-signature` holds space-separated `v1,<base64>`
entries (several while a rotated secret is still honoured). Verified against the test
vectors of the reference library (tests/unit/test_outbound_signing.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from esim_gateway.domain import SECRET_PREFIX

__all__ = [
    "TOLERANCE_SECONDS",
    "SignatureInvalid",
    "sign",
    "signature_header",
    "verify",
]

#: how far a timestamp may be from the receiver's clock (replay protection)
TOLERANCE_SECONDS = 5 * 60


class SignatureInvalid(ValueError):
    """Missing headers, a stale timestamp or no matching signature."""


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise SignatureInvalid("the secret is not base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_)


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> str:
    """Check a delivery; returns its `webhook-id`, raises `SignatureInvalid` otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    raw_timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not raw_timestamp or not signatures:
        raise SignatureInvalid("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureInvalid("webhook-timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureInvalid("webhook-timestamp is too old or too new")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for entry in signatures.split(" "):
        version, _, _ = entry.partition(",")
        if version == "v1" and hmac.compare_digest(entry.encode(), expected):
            return msg_id
    raise SignatureInvalid("no matching v1 signature")
