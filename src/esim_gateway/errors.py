"""Domain exceptions shared by every layer.

This module imports neither strawberry nor httpx: providers raise these, resolvers let
them through, and the schema turns the expected ones into union members.

    GatewayError
    +-- ProviderFailure                 something went wrong talking to a provider
    |   +-- ProviderError               the provider answered with an error body
    |   |   +-- NotFound                ... and that error was a 404
    |   +-- ProviderUnavailable         no usable answer: timeout, refused, reset, bad JSON
    +-- UnsupportedOperation            the provider cannot do this at all
    +-- CancellationNotAllowed          the provider cancels orders, but not this one
    +-- InvalidInput                    the caller's input is wrong; nothing was changed
    +-- IdempotencyConflict             same idempotency key, different payload
    +-- QuoteExpired                    an order named a quote past its validity
    +-- PriceChanged                    an order named a quote whose price has moved
    +-- QuoteUsed                       an order named a quote another order already uses
    +-- ResourceNotFound                no such order / eSIM / package *for this caller*
    +-- Forbidden                       authenticated, but not allowed
    +-- Unauthenticated                 no or bad credentials
    +-- UnknownEvent                    a webhook event name we do not send
    +-- UrlNotAllowed                   a webhook receiver URL we will not call

Messages never carry secrets: tokens, checksum keys, activation codes, LPA strings,
PIN or PUK. Provider messages are passed through `redact()` before they are stored.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from decimal import Decimal

__all__ = [
    "CancelRefusal",
    "CancellationNotAllowed",
    "DuplicateReference",
    "Forbidden",
    "GatewayError",
    "IdempotencyConflict",
    "InvalidInput",
    "NotFound",
    "PriceChanged",
    "ProviderError",
    "ProviderFailure",
    "ProviderUnavailable",
    "QuoteExpired",
    "QuoteUsed",
    "ResourceNotFound",
    "Unauthenticated",
    "UnknownEvent",
    "UnsupportedOperation",
    "UrlNotAllowed",
    "redact",
]

# LPA strings, bearer tokens and provider key formats. Activation codes are long hex or
# base32 strings; anything that looks like one inside an LPA string is covered by the
# LPA pattern, and a bare 24+ character hex/upper-alnum run by its own; PIN and PUK
# values by their key.
_SECRET_PATTERNS = (
    # an install page's capability token, in a path or a URL (first: whole, not in pieces)
    re.compile(r"(?<=/install/)[A-Za-z0-9_-]{8,}"),
    re.compile(r"LPA:1\$[^\s\"',}]*", re.IGNORECASE),
    re.compile(r"bearer\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"\b(?:sk|pk|ck)_(?:test|live)_[A-Za-z0-9]+"),
    re.compile(r"\broamify_[A-Za-z0-9]+"),
    re.compile(r"\b[A-F0-9]{24,}\b"),
    # `pin: "8642"`, `"puk": "12345678"`, `PIN2=1234`: the key goes with its value
    re.compile(
        r"\b(?:pin|puk)[12]?\b[\"']?\s*[:=]\s*(?:\"[^\"]*\"?|'[^']*'?|[^\s,;)}\]]*)",
        re.IGNORECASE,
    ),
)


#: one scan saying whether any pattern matches anywhere: most text (every log line goes
#: through here) has nothing to redact, and one search costs less than five subs
_ANY_SECRET = re.compile(
    "|".join(f"(?{'i' if p.flags & re.IGNORECASE else ''}:{p.pattern})" for p in _SECRET_PATTERNS)
)


#: a literal every pattern but the hex run needs (lower case): a text holding none of
#: them and no 24-character upper-case hex run cannot match, and these checks cost a
#: fraction of the combined pattern's scan (~2-10 us a value; every log line's values go
#: through here: issue 12, 'logging and metrics')
_MARKERS = ("/install/", "lpa:1$", "bearer", "_test_", "_live_", "roamify_", "pin", "puk")
_HEX_RUN = re.compile(r"[A-F0-9]{24}")


def _may_hold_secret(text: str) -> bool:
    # a plain loop: a generator under any() cost more than the eight checks themselves
    lowered = text.lower()
    for marker in _MARKERS:
        if marker in lowered:
            return True
    return len(text) >= 24 and _HEX_RUN.search(text) is not None


def redact(text: str) -> str:
    """Replace anything that looks like a credential with a fixed marker."""
    if not _may_hold_secret(text) or _ANY_SECRET.search(text) is None:
        return text
    # pattern by pattern, in order: an LPA string goes whole before a later pattern
    # could match a piece of it
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class GatewayError(Exception):
    """Base of every exception this package raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderFailure(GatewayError):
    """A call to a provider did not succeed."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(message)
        self.provider = provider


class ProviderError(ProviderFailure):
    """The provider answered with an error status.

    `error_code` and `message` are what the provider sent (SimplifyTrip `errorCode`;
    Roamify `code`, else `error`, else `message`), redacted of credentials.
    """

    def __init__(
        self,
        provider: str,
        status: int,
        error_code: str,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(provider, redact(message))
        self.status = status
        self.error_code = error_code
        self.retryable = retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, status={self.status}, "
            f"error_code={self.error_code!r}, message={self.message!r}, "
            f"retryable={self.retryable})"
        )


class DuplicateReference(ProviderError):
    """The provider refused a purchase because it already has one with this reference:
    an earlier send of the same purchase was placed. Never a rejection."""


class NotFound(ProviderError):
    """The provider answered 404."""


class ProviderUnavailable(ProviderFailure):
    """No usable answer from the provider: timeout, connection failure, garbage body.

    For a purchase this means the outcome is *unknown*: the order may exist upstream.
    `sent` tells whether the request may have reached the provider.
    """

    def __init__(self, provider: str, message: str, *, sent: bool = True) -> None:
        super().__init__(provider, message)
        self.sent = sent


class UnsupportedOperation(GatewayError):
    def __init__(self, provider: str, operation: str, message: str | None = None) -> None:
        super().__init__(message or f"{provider} does not support {operation}")
        self.provider = provider
        self.operation = operation


class CancelRefusal(enum.StrEnum):
    """Why the provider's cancellation rule leaves an order out."""

    #: it cancels no order of this kind (SimplifyTrip: eSIM orders, recharges)
    ORDER_KIND = "ORDER_KIND"
    #: it cancels this kind, but the order has moved past the status where it still does
    ORDER_STATUS = "ORDER_STATUS"


class CancellationNotAllowed(GatewayError):
    """The provider's documented rule leaves this order out: refused by the gateway,
    which says why in its own words (the provider's are a bare 'not found')."""

    def __init__(
        self,
        provider: str,
        *,
        order_kind: str,
        product_type: str | None,
        state: str,
        provider_status: str | None,
        reason: CancelRefusal,
        message: str,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.order_kind = order_kind
        self.product_type = product_type
        #: the gateway's order status (`domain.OrderState`'s value)
        self.state = state
        self.provider_status = provider_status
        self.reason = reason


class InvalidInput(GatewayError):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


class IdempotencyConflict(GatewayError):
    def __init__(self, idempotency_key: str) -> None:
        super().__init__("This idempotency key was already used with a different request payload.")
        self.idempotency_key = idempotency_key


class ResourceNotFound(GatewayError):
    pass


class Forbidden(GatewayError):
    pass


class Unauthenticated(GatewayError):
    pass


class QuoteExpired(GatewayError):
    def __init__(self, quote_id: str, expired_at: datetime) -> None:
        super().__init__("This quote has expired: ask for a new quote.")
        self.quote_id = quote_id
        self.expired_at = expired_at


class PriceChanged(GatewayError):
    """The price of a quoted order moved: nothing was bought (totals in one currency)."""

    def __init__(
        self, quote_id: str, quoted_amount: Decimal, current_amount: Decimal, currency: str
    ) -> None:
        super().__init__(
            f"The price changed since the quote ({quoted_amount} -> {current_amount} {currency});"
            " nothing was bought: ask for a new quote."
        )
        self.quote_id = quote_id
        self.quoted_amount = quoted_amount
        self.current_amount = current_amount
        self.currency = currency


class QuoteUsed(GatewayError):
    """A quote buys once: another order of the same principal was recorded with it and
    has not ended without buying anything (cancelled before it was placed, or failed)."""

    def __init__(self, quote_id: str, order_id: str) -> None:
        super().__init__(
            "This quote was already used by another order; nothing was bought: ask for a"
            " new quote (a retry of that order with its idempotency key returns it)."
        )
        self.quote_id = quote_id
        self.order_id = order_id


class UnknownEvent(GatewayError):
    def __init__(self, event: str, known: tuple[str, ...]) -> None:
        super().__init__(f"Unknown event {event!r}; known events: {', '.join(known)}.")
        self.event = event


class UrlNotAllowed(GatewayError):
    """A receiver URL refused (scheme, host, or an address inside a private network)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"This URL is not allowed: {reason}.")
        self.url = url
        self.reason = reason
