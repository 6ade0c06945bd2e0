"""GraphQL enums, mirrored from the provider-neutral ones."""

from __future__ import annotations

import enum

import strawberry


@strawberry.enum(description="An eSIM provider behind the gateway.")
class Provider(enum.Enum):
    ROAMIFY = "roamify"
    SIMPLIFYTRIP = "simplifytrip"


@strawberry.enum(
    description=(
        "The gateway's order status. Roamify: PENDING, COMPLETED, CANCELLED, REFUNDED,"
        " REQUIRE_ACTION->ACTION_REQUIRED, ARCHIVED. SimplifyTrip: NEW->PENDING,"
        " PROCESSING/CONFIRMED/DELIVERING/REFUNDING->PROCESSING, SUCCESS->COMPLETED,"
        " ERROR->FAILED, CANCELED->CANCELLED, REFUNDED, PARTIALLY_REFUNDED. The provider's"
        " raw value is in `providerStatus`. SCHEDULED: recorded with `scheduledAt`, not"
        " sent to the provider yet."
    )
)
class OrderStatus(enum.Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    ACTION_REQUIRED = "ACTION_REQUIRED"
    ARCHIVED = "ARCHIVED"
    SCHEDULED = "SCHEDULED"


@strawberry.enum(name="DestinationKind", description="Where a plan works.")
class Destination(enum.Enum):
    LOCAL = "local"
    REGIONAL = "regional"
    GLOBAL = "global"


@strawberry.enum(description="A purchase of new eSIMs, or a top-up of an existing one.")
class OrderKind(enum.Enum):
    ORDER = "order"
    TOPUP = "topup"


@strawberry.enum(
    description="How to order packages; ties are broken by USD price, provider and id."
)
class PackageOrderBy(enum.Enum):
    PRICE_USD = "price_usd"
    PRICE_PER_GB = "price_per_gb"
    DAYS = "days"
    DATA = "data"


@strawberry.enum(description="What an order bought.")
class ProductKind(enum.Enum):
    ESIM = "ESIM"
    PHYSICAL_SIM = "SIM"
    SIM_RECHARGE = "SIM_RECHARGE"


@strawberry.enum(description="Why a provider's cancellation rule leaves an order out.")
class CancellationRefusal(enum.Enum):
    ORDER_KIND = strawberry.enum_value(
        "ORDER_KIND",
        description="The provider cancels no order of this kind (SimplifyTrip: eSIM orders"
        " and recharges).",
    )
    ORDER_STATUS = strawberry.enum_value(
        "ORDER_STATUS",
        description="The provider cancels orders of this kind, but this one has moved past"
        " the status where it still does (SimplifyTrip: NEW).",
    )
