"""Provider webhook envelopes -> `StoredEvent` (providers.md sections 1.6 and 2.6).

Both providers retry deliveries, so each event gets a stable key: the provider's event id
(Roamify refunds' `event_id`, SimplifyTrip's `id`) plus a digest of the event's content,
or the digest alone where the provider sends no id. A redelivery maps to the same key;
a new event with a recycled id does not.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from esim_gateway.ledger.repository import StoredEvent
from esim_gateway.providers.base import ProviderName

__all__ = ["MalformedEvent", "parse_roamify", "parse_simplifytrip"]

#: Roamify's type pages and its overview disagree on the spelling (providers.md 1.6)
ROAMIFY_TYPE_ALIASES = {"esim_status": "status", "esim_usage": "usage"}


class MalformedEvent(ValueError):
    pass


def _digest(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


def parse_roamify(body: Any) -> StoredEvent:
    if not isinstance(body, dict):
        raise MalformedEvent("the body is not a JSON object")
    category = body.get("event_category")
    event_type = body.get("event_type")
    data = body.get("data")
    if (
        not isinstance(category, str)
        or not isinstance(event_type, str)
        or not isinstance(data, dict)
    ):
        raise MalformedEvent("event_category, event_type and data are required")
    event_type = ROAMIFY_TYPE_ALIASES.get(event_type, event_type)
    # content without delivery metadata: a redelivery has the same key
    content = {"c": category, "t": event_type, "d": data}
    event_id = _str(body.get("event_id"))
    key = f"{event_id}:{_digest(content)}" if event_id else _digest(content)
    return StoredEvent(
        provider=ProviderName.ROAMIFY,
        event_key=key,
        event_type=f"{category}/{event_type}",
        reference=_str(data.get("reference_id")),
        iccid=_str(data.get("iccid")),
        body=body,
    )


def parse_simplifytrip(body: Any) -> StoredEvent:
    if not isinstance(body, dict):
        raise MalformedEvent("the body is not a JSON object")
    event_type = body.get("type")
    data = body.get("data")
    if not isinstance(event_type, str) or not isinstance(data, dict):
        raise MalformedEvent("type and data are required")
    event_id = _str(body.get("id"))
    content = {"t": event_type, "d": data}
    key = f"{event_id}:{_digest(content)}" if event_id else _digest(content)
    if event_type == "RETURN_ORDER_UPDATE":
        # new shape: orderTrackId; old shape: trackId
        reference = _str(data.get("orderTrackId")) or _str(data.get("trackId"))
    else:
        reference = _str(data.get("trackId"))
    return StoredEvent(
        provider=ProviderName.SIMPLIFYTRIP,
        event_key=key,
        event_type=event_type,
        reference=reference,
        iccid=None,
        body=body,
    )
