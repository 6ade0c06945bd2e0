"""The events the gateway sends, and the shape of their payloads.

Every body is `{"type": <event>, "timestamp": <ISO 8601 UTC>, "data": {...}}` (the
Standard Webhooks convention); README.md documents each event's `data`.
"""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "ESIM_EXPIRING",
    "ESIM_USAGE_THRESHOLD",
    "EVENT_TYPES",
    "ORDER_COMPLETED",
    "ORDER_EVENTS",
    "ORDER_FAILED",
    "ORDER_REFUNDED",
    "PROVIDER_BALANCE_LOW",
    "envelope",
    "order_global_id",
]

ORDER_COMPLETED = "order.completed"
ORDER_FAILED = "order.failed"
ORDER_REFUNDED = "order.refunded"
ESIM_USAGE_THRESHOLD = "esim.usage_threshold"
ESIM_EXPIRING = "esim.expiring"
PROVIDER_BALANCE_LOW = "provider.balance_low"

EVENT_TYPES = (
    ORDER_COMPLETED,
    ORDER_FAILED,
    ORDER_REFUNDED,
    ESIM_USAGE_THRESHOLD,
    ESIM_EXPIRING,
    PROVIDER_BALANCE_LOW,
)

#: order state (ledger value) -> the event announcing that the order entered it
ORDER_EVENTS = {
    "COMPLETED": ORDER_COMPLETED,
    "FAILED": ORDER_FAILED,
    "REFUNDED": ORDER_REFUNDED,
    "PARTIALLY_REFUNDED": ORDER_REFUNDED,
}


def order_global_id(order_id: str) -> str:
    """The Order's GraphQL id (relay: base64 of `Order:<id>`), what API clients hold."""
    return base64.b64encode(f"Order:{order_id}".encode()).decode()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def envelope(event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": _plain(at),
        "data": {key: _plain(value) for key, value in data.items()},
    }
