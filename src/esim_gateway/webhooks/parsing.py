"""Provider webhook envelopes -> `StoredEvent` (providers.md sections 1.6 and 2.6).

Both providers retry deliveries, so each event gets a stable key: the provider's event id
(Roamify refunds' `event_id`, SimplifyTrip's `id`) plus a digest of the event's content,
or the digest alone where the provider sends no id. A redelivery maps to the same key;
a new event with a recycled id does not.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from esim_gateway.domain import EsimUsage, ProviderName
from esim_gateway.ledger.events import StoredEvent

__all__ = ["MalformedEvent", "parse_roamify", "parse_simplifytrip", "roamify_usage"]

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


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def roamify_usage(event: StoredEvent) -> EsimUsage | None:
    """The usage reading inside a Roamify `esim`/`usage` event (data in MB; `end` is the
    plan's end in Unix seconds), or None for any other event or a malformed one."""
    if event.provider is not ProviderName.ROAMIFY or event.event_type != "esim/usage":
        return None
    data = event.body.get("data")
    usage = data.get("usage_data") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(usage, dict) or event.iccid is None:
        return None
    unlimited = usage.get("isUnlimited") is True
    allowed, remaining = _decimal(usage.get("allowed_data")), _decimal(usage.get("remaining_data"))
    end = data.get("end")
    used = None if unlimited or allowed is None or remaining is None else allowed - remaining
    return EsimUsage(
        provider=ProviderName.ROAMIFY,
        iccid=event.iccid,
        status=_str(data.get("status")),
        unlimited=unlimited,
        data_allowed_mb=None if unlimited else allowed,
        data_used_mb=used,
        data_remaining_mb=None if unlimited else remaining,
        plan_end=datetime.fromtimestamp(end, UTC) if isinstance(end, int) and end > 0 else None,
    )
