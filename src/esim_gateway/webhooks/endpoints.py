"""`POST /webhooks/roamify` and `POST /webhooks/simplifytrip`.

Persist first, process after: a delivery is verified, stored (deduplicated) and answered
200 at once; it is applied in the background, and whatever was stored but not applied
(a crash, a bug) is applied later by the reconciler. Only a bad signature (401), a body
that is not a JSON event (400) or one that is too large (413) gets a 4xx: the providers
do not retry 4xx, so our own failures answer 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from esim_gateway.context import Services
from esim_gateway.ledger.events import StoredEvent
from esim_gateway.signatures import verify_roamify_signature, verify_simplifytrip_signature
from esim_gateway.webhooks.parsing import MalformedEvent, parse_roamify, parse_simplifytrip

__all__ = ["MAX_BODY", "webhook_routes"]

log = logging.getLogger("esim_gateway.webhooks")

#: real event bodies are a few KB; anything this large is abuse
MAX_BODY = 256 * 1024

_ACK = {"code": 200, "status": "success"}  # Roamify's documented reply body


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _TooLarge
    return bytes(body)


async def _body_or_refusal(request: Request) -> bytes | Response:
    try:
        return await _read_body(request)
    except _TooLarge:
        return _error(413, "body too large")
    except ClientDisconnect:
        return _error(400, "incomplete body")


def _error(status: int, message: str) -> Response:
    return JSONResponse({"status": "failed", "message": message}, status_code=status)


async def _accept(services: Services, event: StoredEvent) -> Response:
    processor = services.webhooks
    try:
        fresh = await services.ledger.events.store(event)
    except Exception:  # our database failed: 503 so the provider delivers again
        log.exception("could not store a %s webhook", event.provider.value)
        return _error(503, "temporarily unable to accept the event")
    if not fresh:
        return JSONResponse({**_ACK, "duplicate": True})
    return JSONResponse(_ACK, background=BackgroundTask(processor.process, event))


async def roamify_webhook(request: Request) -> Response:
    services: Services = request.app.state.services
    raw = await _body_or_refusal(request)
    if isinstance(raw, Response):
        return raw
    secret = services.settings.roamify_webhook_secret
    if not secret or not verify_roamify_signature(
        raw, request.headers.get("x-roamify-signature"), secret
    ):
        return _error(401, "invalid signature")
    try:
        event = parse_roamify(orjson.loads(raw))
    except (orjson.JSONDecodeError, MalformedEvent) as exc:
        return _error(400, f"malformed event: {exc}")
    return await _accept(services, event)


async def simplifytrip_webhook(request: Request) -> Response:
    services: Services = request.app.state.services
    raw = await _body_or_refusal(request)
    if isinstance(raw, Response):
        return raw
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error(400, "malformed event: not JSON")
    key = services.settings.simplifytrip_checksum_key
    if (
        not isinstance(body, dict)
        or not key
        or not verify_simplifytrip_signature(
            body, request.headers.get("x-simplify-trip-signature"), key
        )
    ):
        return _error(401, "invalid signature")
    try:
        event = parse_simplifytrip(body)
    except MalformedEvent as exc:
        return _error(400, f"malformed event: {exc}")
    return await _accept(services, event)


def _counted(
    provider: str, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """Count every delivery by provider and the status we answered (Prometheus)."""

    async def endpoint(request: Request) -> Response:
        response = await handler(request)
        services: Services | None = getattr(request.app.state, "services", None)
        metrics = services.metrics if services is not None else None
        if metrics is not None:
            metrics.webhooks.labels(provider, str(response.status_code)).inc()
        return response

    return endpoint


def webhook_routes() -> list[Route]:
    return [
        Route("/webhooks/roamify", _counted("roamify", roamify_webhook), methods=["POST"]),
        Route(
            "/webhooks/simplifytrip",
            _counted("simplifytrip", simplifytrip_webhook),
            methods=["POST"],
        ),
    ]
