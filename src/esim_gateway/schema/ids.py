"""Relay global ids: base64 of ``TypeName:local-id``, as strawberry.relay encodes them."""

from __future__ import annotations

import uuid

from strawberry.relay import GlobalID

from esim_gateway.errors import InvalidInput


def order_global_id(order_id: str) -> str:
    return str(GlobalID("Order", order_id))


def parse_order_id(value: str, field: str = "id") -> str:
    """The ledger id inside an Order global id; `InvalidInput` for anything else."""
    try:
        gid = GlobalID.from_id(value)
    except Exception:  # strawberry raises several types for malformed base64/format
        raise InvalidInput(field, "Not a valid Order id.") from None
    if gid.type_name != "Order":
        raise InvalidInput(field, "Not a valid Order id.")
    try:
        return str(uuid.UUID(gid.node_id))
    except ValueError:
        raise InvalidInput(field, "Not a valid Order id.") from None
