"""Expected failures as schema types, the handlers that turn exceptions into them, and
the codes of every other error a client can receive.

Resolvers raise `esim_gateway.errors` exceptions; the `ExceptionHandler`s registered on
the schema convert the expected ones into members of the field's result union. Anything
else is a top-level error (`errors[]`) whose `extensions.code` is an `ErrorCode`, as is
every refusal of the HTTP edge; unexpected errors are INTERNAL_SERVER_ERROR, masked in
live mode. docs/errors.md says what each code means and what a client should do.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError, VariableDefinitionNode
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from esim_gateway import errors
from esim_gateway.schema.enums import (
    CancellationRefusal,
    OrderKind,
    OrderStatus,
    ProductKind,
    Provider,
)


class ErrorCode(StrEnum):
    """`extensions.code` of every top-level error and every refusal of the HTTP edge:
    the one list (docs/errors.md), in the words Apollo's and other client libraries use."""

    # the document and its inputs
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    # who asks, and how often
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    # persisted queries (APQ) and trusted documents
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_VERSION_NOT_SUPPORTED = "PERSISTED_QUERY_VERSION_NOT_SUPPORTED"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_DOCUMENT_NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
    TRUSTED_DOCUMENT_REQUIRED = "TRUSTED_DOCUMENT_REQUIRED"
    # the HTTP request around the document
    BAD_REQUEST = "BAD_REQUEST"
    CSRF_HEADER_REQUIRED = "CSRF_HEADER_REQUIRED"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    BAD_IF_NONE_MATCH = "BAD_IF_NONE_MATCH"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    BATCH_TOO_EXPENSIVE = "BATCH_TOO_EXPENSIVE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    # not the client's doing
    PROVIDER_ERROR = "PROVIDER_ERROR"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


#: the exceptions of ours that may end a field outside a result union, by their code;
#: any other exception there is the server's fault
_EXCEPTION_CODES: tuple[tuple[type[errors.GatewayError], ErrorCode], ...] = (
    (errors.InvalidInput, ErrorCode.BAD_USER_INPUT),
    (errors.ResourceNotFound, ErrorCode.NOT_FOUND),
    (errors.Forbidden, ErrorCode.FORBIDDEN),
    (errors.Unauthenticated, ErrorCode.UNAUTHENTICATED),
    (errors.ProviderFailure, ErrorCode.PROVIDER_ERROR),
)


def error_code(error: GraphQLError) -> ErrorCode:
    """The code of a GraphQL error, from where it came from: the one it carries (a
    refusal, a validation error of `DocumentGate`), a syntax error, a variable that
    failed coercion (located at its definition, before anything ran), or the exception
    that ended its field."""
    carried = (error.extensions or {}).get("code")
    if isinstance(carried, str) and carried in ErrorCode.__members__:
        return ErrorCode(carried)
    if isinstance(error, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if error.path is None and _at_variables(error):
        return ErrorCode.BAD_USER_INPUT
    original = error.original_error
    for kind, code in _EXCEPTION_CODES:
        if isinstance(original, kind):
            return code
    if original is None and error.path is None:
        # graphql-core's refusal of the request as a whole (no such operation)
        return ErrorCode.BAD_REQUEST
    return ErrorCode.INTERNAL_SERVER_ERROR


def _at_variables(error: GraphQLError) -> bool:
    nodes = error.nodes or ()
    return bool(nodes) and all(isinstance(node, VariableDefinitionNode) for node in nodes)


def with_code(error: GraphQLError) -> ErrorCode:
    """Sets `error`'s `extensions.code`, and for BAD_USER_INPUT what was at fault: the
    argument's path (`extensions.argument`, e.g. `filter.country`) or the variable's
    name (`extensions.variable`); returns the code."""
    code = error_code(error)
    extensions = error.extensions if error.extensions is not None else {}
    extensions["code"] = code
    original = error.original_error
    if isinstance(original, errors.InvalidInput) and original.field is not None:
        extensions["argument"] = original.field
    elif code is ErrorCode.BAD_USER_INPUT and _at_variables(error):
        for node in error.nodes or ():
            if isinstance(node, VariableDefinitionNode):
                extensions["variable"] = node.variable.name.value
    error.extensions = extensions
    return code


@strawberry.interface(description="Implemented by every expected failure.")
class Error:
    message: str


@strawberry.type(description="The input was rejected; nothing was changed.")
class ValidationError(Error):
    field: str | None = strawberry.field(
        description="The input path at fault, e.g. `items[0].quantity`."
    )


@strawberry.type(description="No such object, or not one the caller may see.")
class NotFoundError(Error):
    pass


@strawberry.type(description="The caller is authenticated but may not do this.")
class ForbiddenError(Error):
    pass


@strawberry.type(description="The provider cannot do this at all.")
class UnsupportedOperationError(Error):
    provider: Provider
    operation: str


@strawberry.type(
    description=(
        "The provider cancels orders, but its rule leaves this one out (SimplifyTrip:"
        " physical-SIM orders still NEW only): refused without calling it where the"
        " gateway's record of the order shows it, else after the provider refused (a"
        " record behind it); nothing was changed. `reason` says which part of the rule,"
        " `productKind` and `status` what the order is."
    )
)
class CancellationNotAllowedError(Error):
    provider: Provider
    order_kind: OrderKind
    product_kind: ProductKind | None = strawberry.field(
        description="Null when the order's package is no longer listed."
    )
    status: OrderStatus
    provider_status: str | None
    reason: CancellationRefusal


@strawberry.type(description="This idempotency key was used before with another payload.")
class IdempotencyConflictError(Error):
    idempotency_key: str


@strawberry.type(
    description=(
        "The provider failed or refused. `errorCode` and `message` are what the provider sent;"
        " `statusCode` is its HTTP status (null when no answer came back). `retryable` says"
        " whether repeating the same request (same idempotency key) may succeed."
    )
)
class ProviderError(Error):
    provider: Provider
    error_code: str
    status_code: int | None
    retryable: bool
    order_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The gateway order this failure belongs to, when one was recorded.",
    )


@strawberry.type(description="The quote named by `quoteId` is no longer valid; nothing was bought.")
class QuoteExpiredError(Error):
    quote_id: strawberry.ID
    expired_at: datetime


@strawberry.type(
    description=(
        "The quote named by `quoteId` already backs another order (`orderId`): a quote"
        " buys once. Nothing was bought; the same idempotency key still returns that order."
    )
)
class QuoteUsedError(Error):
    quote_id: strawberry.ID
    order_id: strawberry.ID


@strawberry.type(description="Not an event the gateway sends; nothing was changed.")
class UnknownEventError(Error):
    event: str


@strawberry.type(
    description=(
        "The price of the quoted order moved since the quote; nothing was bought (the"
        " gateway never charges an amount other than the one quoted). Totals are in"
        " `currency`, the provider's."
    )
)
class PriceChangedError(Error):
    quote_id: strawberry.ID
    quoted_total: Decimal
    current_total: Decimal
    currency: str


@strawberry.type(
    description=(
        "The gateway will not deliver webhooks to this URL (live mode: https only, and"
        " never to a private, loopback or link-local address); nothing was changed."
    )
)
class UrlNotAllowedError(Error):
    url: str
    reason: str


def provider_error_from(exc: errors.ProviderFailure, order_id: str | None = None) -> ProviderError:
    from esim_gateway.schema.ids import order_global_id

    gid = strawberry.ID(order_global_id(order_id)) if order_id else None
    if isinstance(exc, errors.ProviderError):
        return ProviderError(
            message=exc.message,
            provider=Provider(exc.provider),
            error_code=exc.error_code,
            status_code=exc.status,
            retryable=exc.retryable,
            order_id=gid,
        )
    return ProviderError(
        message=exc.message,
        provider=Provider(exc.provider),
        error_code="UNAVAILABLE",
        status_code=None,
        retryable=True,
        order_id=gid,
    )


class ProviderFailureHandler(strawberry.ExceptionHandler[errors.ProviderFailure, ProviderError]):
    def handle(
        self, exception: errors.ProviderFailure, *, field: StrawberryField, info: Info[Any, Any]
    ) -> ProviderError:
        return provider_error_from(exception)


class InvalidInputHandler(strawberry.ExceptionHandler[errors.InvalidInput, ValidationError]):
    def handle(
        self, exception: errors.InvalidInput, *, field: StrawberryField, info: Info[Any, Any]
    ) -> ValidationError:
        return ValidationError(message=exception.message, field=exception.field)


class NotFoundHandler(strawberry.ExceptionHandler[errors.ResourceNotFound, NotFoundError]):
    def handle(
        self,
        exception: errors.ResourceNotFound,
        *,
        field: StrawberryField,
        info: Info[Any, Any],
    ) -> NotFoundError:
        return NotFoundError(message=exception.message)


class ForbiddenHandler(strawberry.ExceptionHandler[errors.Forbidden, ForbiddenError]):
    def handle(
        self, exception: errors.Forbidden, *, field: StrawberryField, info: Info[Any, Any]
    ) -> ForbiddenError:
        return ForbiddenError(message=exception.message)


class UnsupportedHandler(
    strawberry.ExceptionHandler[errors.UnsupportedOperation, UnsupportedOperationError]
):
    def handle(
        self,
        exception: errors.UnsupportedOperation,
        *,
        field: StrawberryField,
        info: Info[Any, Any],
    ) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            message=exception.message,
            provider=Provider(exception.provider),
            operation=exception.operation,
        )


def _product_kind(product_type: str | None) -> ProductKind | None:
    try:
        return ProductKind((product_type or "").upper())
    except ValueError:
        return None


class CancellationHandler(
    strawberry.ExceptionHandler[errors.CancellationNotAllowed, CancellationNotAllowedError]
):
    def handle(
        self,
        exception: errors.CancellationNotAllowed,
        *,
        field: StrawberryField,
        info: Info[Any, Any],
    ) -> CancellationNotAllowedError:
        return CancellationNotAllowedError(
            message=exception.message,
            provider=Provider(exception.provider),
            order_kind=OrderKind(exception.order_kind),
            product_kind=_product_kind(exception.product_type),
            status=OrderStatus(exception.state),
            provider_status=exception.provider_status,
            reason=CancellationRefusal(exception.reason.value),
        )


class IdempotencyHandler(
    strawberry.ExceptionHandler[errors.IdempotencyConflict, IdempotencyConflictError]
):
    def handle(
        self,
        exception: errors.IdempotencyConflict,
        *,
        field: StrawberryField,
        info: Info[Any, Any],
    ) -> IdempotencyConflictError:
        return IdempotencyConflictError(
            message=exception.message, idempotency_key=exception.idempotency_key
        )


class QuoteExpiredHandler(strawberry.ExceptionHandler[errors.QuoteExpired, QuoteExpiredError]):
    def handle(
        self, exception: errors.QuoteExpired, *, field: StrawberryField, info: Info[Any, Any]
    ) -> QuoteExpiredError:
        return QuoteExpiredError(
            message=exception.message,
            quote_id=strawberry.ID(exception.quote_id),
            expired_at=exception.expired_at,
        )


class PriceChangedHandler(strawberry.ExceptionHandler[errors.PriceChanged, PriceChangedError]):
    def handle(
        self, exception: errors.PriceChanged, *, field: StrawberryField, info: Info[Any, Any]
    ) -> PriceChangedError:
        return PriceChangedError(
            message=exception.message,
            quote_id=strawberry.ID(exception.quote_id),
            quoted_total=exception.quoted_amount,
            current_total=exception.current_amount,
            currency=exception.currency,
        )


class QuoteUsedHandler(strawberry.ExceptionHandler[errors.QuoteUsed, QuoteUsedError]):
    def handle(
        self, exception: errors.QuoteUsed, *, field: StrawberryField, info: Info[Any, Any]
    ) -> QuoteUsedError:
        from esim_gateway.schema.ids import order_global_id

        return QuoteUsedError(
            message=exception.message,
            quote_id=strawberry.ID(exception.quote_id),
            order_id=strawberry.ID(order_global_id(exception.order_id)),
        )


class UnknownEventHandler(strawberry.ExceptionHandler[errors.UnknownEvent, UnknownEventError]):
    def handle(
        self, exception: errors.UnknownEvent, *, field: StrawberryField, info: Info[Any, Any]
    ) -> UnknownEventError:
        return UnknownEventError(message=exception.message, event=exception.event)


class UrlNotAllowedHandler(strawberry.ExceptionHandler[errors.UrlNotAllowed, UrlNotAllowedError]):
    def handle(
        self, exception: errors.UrlNotAllowed, *, field: StrawberryField, info: Info[Any, Any]
    ) -> UrlNotAllowedError:
        return UrlNotAllowedError(
            message=exception.message, url=exception.url, reason=exception.reason
        )


EXCEPTION_HANDLERS = (
    ProviderFailureHandler(),
    InvalidInputHandler(),
    NotFoundHandler(),
    ForbiddenHandler(),
    UnsupportedHandler(),
    CancellationHandler(),
    IdempotencyHandler(),
    QuoteExpiredHandler(),
    PriceChangedHandler(),
    QuoteUsedHandler(),
    UnknownEventHandler(),
    UrlNotAllowedHandler(),
)

ERROR_TYPES = (
    ValidationError,
    NotFoundError,
    ForbiddenError,
    UnsupportedOperationError,
    CancellationNotAllowedError,
    IdempotencyConflictError,
    ProviderError,
    QuoteExpiredError,
    PriceChangedError,
    QuoteUsedError,
    UnknownEventError,
    UrlNotAllowedError,
)
