"""Logs never carry credentials; overhead = request time minus time waiting on providers."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import structlog
from hypothesis import example, given, settings
from hypothesis import strategies as st

from esim_gateway.errors import _SECRET_PATTERNS, redact
from esim_gateway.ops.logging import redact_event
from esim_gateway.ops.metrics import Metrics, RequestStats, endpoint_label
from esim_gateway.ops.requests import RequestAccounting
from esim_gateway.providers.instrumented import InstrumentedTransport
from tests.conftest import written_lines

LPA = "LPA:1$lpa.sandbox.roamify.example$A1B2C3D4E5F60718293A4B5C"


def test_credential_keys_and_credential_looking_text_are_redacted() -> None:
    event = redact_event(
        None,
        "info",
        {
            "event": f"bought {LPA} with Bearer roamify_abcdef123 and sk_live_123456",
            "activationCode": "A1B2C3D4E5F60718293A4B5C",
            "pin": "1234",
            "headers": {"Authorization": "Bearer x", "X-Api-Key": "pk_live_1", "accept": "json"},
            "esims": [{"lpa": LPA, "iccid": "8940000000000000001", "puk": "99999999"}],
            "iccid": "8940000000000000001",
        },
    )
    text = json.dumps(event)
    for secret in (
        LPA,
        "roamify_abcdef123",
        "sk_live_123456",
        "A1B2C3D4E5F60718293A4B5C",
        '1234"',
        "pk_live_1",
        "99999999",
    ):
        assert secret not in text, secret
    assert event["iccid"] == "8940000000000000001"
    assert event["headers"]["accept"] == "json"


def test_stdlib_and_structlog_lines_are_json_and_redacted() -> None:
    with written_lines() as stream:
        logging.getLogger("esim_gateway.test").warning("failed for token sk_test_abcdef")
        structlog.get_logger("esim_gateway.test").info("bought", lpa=LPA, order="o-1")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["warning", "info"]
    assert "sk_test_abcdef" not in stream.getvalue() and LPA not in stream.getvalue()
    assert lines[1]["order"] == "o-1"


SECRETISH = st.sampled_from(
    [
        "LPA:1$",
        "lpa:1$",
        "Bearer ",
        "bearer\t",
        "sk_live_",
        "pk_test_",
        "ck_",
        "roamify_",
        "A1B2C3D4E5F60718293A4B5C",
        "0123456789ABCDEF",
        "abc",
        "$",
        "'",
        " ",
        "-",
        "x",
    ]
)


@settings(max_examples=500)
@given(st.lists(SECRETISH | st.text(max_size=6), max_size=14).map("".join))
@example("code A1B2C3D4E5F60718293A4B5C.")
@example("Bearer LPA:1$smdp.example$ACT")
@example("ROAMIFY_abc pk_live_1 CK_TEST_2")
@example("nothing to see")
def test_redact_answers_as_every_pattern_applied_in_turn(text: str) -> None:
    # its quick "nothing to redact" check must never skip what the patterns would catch
    expected = text
    for pattern in _SECRET_PATTERNS:
        expected = pattern.sub("[redacted]", expected)
    assert redact(text) == expected


def test_a_log_line_orjson_cannot_encode_is_still_written() -> None:
    with written_lines() as stream:
        log = structlog.get_logger("esim_gateway.test")
        log.info("counts", by_id={1: "a"}, big=2**70, thing=object())
    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["by_id"] == {"1": "a"} and line["big"] == 2**70
    assert line["thing"].startswith("<object object")


def account(accounting: RequestAccounting, path: str) -> None:
    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"x-request-id", b"r-1")]}
    _, stats, token = accounting.begin(scope)
    structlog.contextvars.bind_contextvars(operation="Bearer abc.def", principal="p-1")
    accounting.end(scope, stats, token, 200)


def test_the_access_line_is_what_structlog_writes_for_it() -> None:
    """Written straight to the handler while the configuration is configure_logging's
    own; through structlog and stdlib logging once anything else is on the way."""
    accounting = RequestAccounting(Metrics())
    with written_lines() as stream:
        account(accounting, "/install/abcdefgh12345678")  # the short way
        root = logging.getLogger()
        other = logging.NullHandler()
        root.addHandler(other)  # the configuration changed: the stdlib way
        try:
            account(accounting, "/install/abcdefgh12345678")
        finally:
            root.removeHandler(other)
    short, stdlib = (json.loads(line) for line in stream.getvalue().splitlines())
    for line in (short, stdlib):
        del line["timestamp"], line["ms"], line["provider_ms"]
    assert list(short.items()) == list(stdlib.items())  # same fields, same order
    assert short["path"] == "/install/[redacted]" and short["operation"] == "[redacted]"
    assert short["request_id"] == "r-1" and short["logger"] == "esim_gateway.access"


def test_a_filter_on_the_way_still_applies_to_the_access_line() -> None:
    accounting = RequestAccounting(Metrics())
    with written_lines() as stream:
        handler = logging.getLogger().handlers[0]
        dropped = logging.Filter("nothing.of.ours")
        handler.addFilter(dropped)
        try:
            account(accounting, "/graphql")
        finally:
            handler.removeFilter(dropped)
        account(accounting, "/graphql")
    assert len(stream.getvalue().splitlines()) == 1


def test_endpoint_labels_drop_ids() -> None:
    assert endpoint_label("/api/v1/orders/658441501843542") == "/api/v1/orders/:id"
    assert endpoint_label("/api/v1/products/esim/89812003916820397854") == (
        "/api/v1/products/esim/:id"
    )
    assert endpoint_label("/api/esim/order") == "/api/esim/order"


async def test_overlapping_provider_calls_count_once_in_the_waiting_time() -> None:
    stats = RequestStats()

    async def call(seconds: float) -> None:
        stats.call_started()
        await asyncio.sleep(seconds)
        stats.call_ended()

    await asyncio.gather(call(0.05), call(0.05), call(0.05))
    assert stats.calls == 3
    assert 0.045 <= stats.waiting < 0.1  # three overlapping 50 ms calls: ~50 ms waited
    await asyncio.sleep(0.02)
    assert stats.overhead() >= 0.015


async def test_the_instrumented_transport_counts_calls_by_provider_endpoint_and_status() -> None:
    metrics = Metrics()
    inner = httpx.MockTransport(lambda request: httpx.Response(503))
    async with httpx.AsyncClient(
        transport=InstrumentedTransport(inner, "roamify", metrics), base_url="http://x"
    ) as client:
        await client.get("/api/esim/order", params={"orderId": "1"})
        await client.get("/api/esim/order")
    value = metrics.registry.get_sample_value(
        "provider_calls_total",
        {"provider": "roamify", "endpoint": "/api/esim/order", "status": "503"},
    )
    assert value == 2
