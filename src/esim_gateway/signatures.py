"""Provider signature algorithms, shared by the adapters, the webhooks and the sandbox.

Both sides of each signature live here so that the gateway and the simulators can never
drift apart: the simulators import this module (not `providers/`), and so do the
adapters and the webhook endpoints.

SimplifyTrip (providers.md section 2.2): flatten the JSON body (objects *and* arrays,
``parent_child`` keys, array indices as keys), sort the keys by UTF-16 code units as
JavaScript's default sort does, render values as JavaScript's ``String()`` would (null,
"null" and "undefined" become empty), join ``k=v`` with ``&`` with no URL-encoding, and
take the lowercase hex HMAC-SHA256 with the checksum key.

Roamify webhooks (providers.md section 1.6): lowercase hex HMAC-SHA256 of the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "js_string",
    "roamify_signature",
    "simplifytrip_canonical",
    "simplifytrip_signature",
    "verify_roamify_signature",
    "verify_simplifytrip_signature",
]

_MAX_SAFE_INTEGER = 2**53


def _js_number(value: float) -> str:
    """`String(value)` for a JavaScript number (ECMA-262 Number::toString)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest round-tripping digits, as JavaScript does; only the
    # placement of the decimal point and the exponent thresholds differ.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + (int(exponent) if exponent else 0)
    point -= len(whole + fraction) - len((whole + fraction).lstrip("0"))
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        text = digits + exp if k == 1 else f"{digits[0]}.{digits[1:]}{exp}"
    return sign + text


def js_string(value: Any) -> str:
    """A flattened leaf rendered as the docs' JavaScript generator renders it."""
    if value is None or value in ("null", "undefined"):
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) < _MAX_SAFE_INTEGER:
            return str(value)
        try:
            return _js_number(float(value))
        except OverflowError:  # beyond double range: JavaScript reads it as Infinity
            return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, float):
        return _js_number(value)
    return str(value)


def _is_array_index(key: str) -> bool:
    return key.isdigit() and (key == "0" or not key.startswith("0")) and int(key) < 2**32 - 1


def _js_key_order(mapping: Mapping[str, Any]) -> list[str]:
    """JavaScript visits integer-like keys first (ascending), then the rest in insertion
    order; it matters only when two flattened keys collide (the later one wins)."""
    keys = [str(k) for k in mapping]
    indexes = sorted((k for k in keys if _is_array_index(k)), key=int)
    return indexes + [k for k in keys if not _is_array_index(k)]


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        by_text = {str(k): v for k, v in value.items()}
        for key in _js_key_order(by_text):
            child = by_text[key]
            _flatten(child, f"{prefix}_{key}" if prefix else str(key), out)
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            _flatten(child, f"{prefix}_{index}" if prefix else str(index), out)
    else:
        out[prefix] = value


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", errors="surrogatepass")


def simplifytrip_canonical(body: Mapping[str, Any]) -> str:
    """The exact string SimplifyTrip signs for this JSON body."""
    flat: dict[str, Any] = {}
    _flatten(body, "", flat)
    return "&".join(f"{key}={js_string(flat[key])}" for key in sorted(flat, key=_utf16_key))


def simplifytrip_signature(body: Mapping[str, Any], checksum_key: str) -> str:
    message = simplifytrip_canonical(body).encode("utf-8", errors="surrogatepass")
    return hmac.new(checksum_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _hex_digest_text(signature: str | None) -> str | None:
    """The header as a lowercase hex digest, or None (compare_digest refuses non-ASCII)."""
    if not signature:
        return None
    text = signature.strip().lower()
    return text if text.isascii() else None


def verify_simplifytrip_signature(
    body: Mapping[str, Any], signature: str | None, checksum_key: str
) -> bool:
    signature = _hex_digest_text(signature)
    if signature is None:
        return False
    return hmac.compare_digest(simplifytrip_signature(body, checksum_key), signature)


def roamify_signature(raw_body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def verify_roamify_signature(raw_body: bytes, signature: str | None, secret: str) -> bool:
    signature = _hex_digest_text(signature)
    if signature is None:
        return False
    return hmac.compare_digest(roamify_signature(raw_body, secret), signature)
