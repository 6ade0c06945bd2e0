"""No secret in a request's document reaches the log, wherever it sits and however the
document is wrapped: graphql-core quotes rejected documents (wrapped across lines) and
their values in its errors, so the log keeps only a hash, locations and masked messages."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from esim_gateway.errors import redact
from esim_gateway.schema import build_schema
from esim_gateway.schema.error_log import MASK, masked_message, schema_vocabulary
from tests.conftest import Gateway, written_lines

#: documents of every kind: valid, invalid fields, bad arguments, syntax errors after a
#: secret lands in the middle of a token. No valid one names its operation: an operation's
#: name is the label the client gives it for logs and metrics, logged by design.
BASES = (
    '{ esim(iccid: "8940000000000000001") { __typename ... on Esim { iccid pin } } }',
    "query Orders { orders(first: 5) { edges { node { id status } } } unknownField }",
    '{ packages(filter: { country: "JP", minDays: 7 }, first: 2) { totalCount } }',
    'query($n: Int) { order(id: "T3JkZXI6MQ==") { __typename } packages(first: $n) '
    "{ totalCount } }",
)

hosts = st.from_regex(r"[a-z]{2,8}\.[a-z]{2,8}\.(com|net)", fullmatch=True)
codes = st.from_regex(r"[A-Z0-9]{8,32}", fullmatch=True)
pins = st.from_regex(r"[0-9]{4,8}", fullmatch=True)


@st.composite
def secrets(draw: st.DrawFn) -> tuple[str, str]:
    """(text put into the document, the secret value in it)."""
    kind = draw(st.sampled_from(["lpa", "quoted-lpa", "code", "quoted-code", "pin", "puk"]))
    if kind.endswith("lpa"):
        value = f"LPA:1${draw(hosts)}${draw(codes)}"
    elif kind.endswith("code"):
        value = draw(codes)
    else:
        value = draw(pins)
    if kind in ("pin", "puk"):
        return f'{kind}: "{value}"', value
    return (f'"{value}"' if kind.startswith("quoted") else value), value


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, str]:
    base = draw(st.sampled_from(BASES))
    text, secret = draw(secrets())
    at = draw(st.integers(0, len(base)))
    document = base[:at] + text + base[at:]
    width = draw(st.integers(8, 240))
    wrapped = "\n".join(document[i : i + width] for i in range(0, len(document), width))
    return wrapped, secret


#: fields whose values are ours (clock, ids, hashes, sizes): digits there are no leak
OURS = {"timestamp", "request_id", "document_sha256", "document_length", "ms", "provider_ms"}


def fragments(secret: str, size: int = 6) -> set[str]:
    size = min(size, len(secret))
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


LONG_LINE_PIN = (
    '{ esim(iccid: "' + "x" * 100 + ' LPA:1$smdp.example.com$SECRETCODE12345 abc") '
    '{ iccid } unknownField(pin: "8642") }',
    "SECRETCODE12345",
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=documents())
@example(case=LONG_LINE_PIN)
@example(case=(LONG_LINE_PIN[0], "8642"))
@example(case=("queryABCDEFGH12" + BASES[3].removeprefix("query"), "ABCDEFGH12"))
@example(
    case=(
        '{ esim(iccid: "1") { __typename ...SECRETCODE12345 on Esim { iccid } } }',
        "SECRETCODE12345",
    )
)
@example(case=('{ esim(iccid: """LPA:1$smdp.ex\nample.com$ABCDEFGH""") { x } }', "ABCDEFGH"))
async def test_no_secret_in_a_document_reaches_the_log(
    gateway: Gateway, case: tuple[str, str]
) -> None:
    document, secret = case
    # INFO, as served: DEBUG adds library lines (whole catalog rows, object addresses)
    # where a short digit run would turn up by chance
    with written_lines("INFO") as stream:
        response = await gateway.post(document)
    assert response.status_code == 200
    logged: list[str] = []
    for line in stream.getvalue().splitlines():
        record = json.loads(line)
        logged.append(json.dumps({k: v for k, v in record.items() if k not in OURS}))
    pieces = fragments(secret)
    leaking = [line for line in logged if any(piece in line for piece in pieces)]
    assert not leaking, leaking[:3]


def test_messages_keep_schema_names_and_mask_the_requests_own_text() -> None:
    vocabulary = schema_vocabulary(build_schema()._schema)
    words = {"unknownField", "SECRETCODE12345", "8642"}
    message = "Cannot query field 'unknownField' on type 'Query'. Did you mean 'orders'?"
    assert masked_message(message, words, vocabulary) == (
        f"Cannot query field '{MASK}' on type 'Query'. Did you mean 'orders'?"
    )
    assert masked_message(
        "String cannot represent a non string value: 8642", words, vocabulary
    ) == (f"String cannot represent a non string value: {MASK}")
    assert masked_message("Expected Name, found '{'.", words, vocabulary).endswith("'{'.")


async def test_the_log_line_of_a_rejected_document(gateway: Gateway) -> None:
    document = '{ unknownField(pin: "8642") }'
    with written_lines() as stream:
        await gateway.post(document)
    (record,) = [
        json.loads(line)
        for line in stream.getvalue().splitlines()
        if json.loads(line)["event"] == "graphql error"
    ]
    assert record["document_sha256"] == hashlib.sha256(document.encode()).hexdigest()
    assert record["locations"] == [[1, 3]]
    assert record["message"] == f"Cannot query field '{MASK}' on type 'Query'."
    assert record["level"] == "info" and "8642" not in json.dumps(record)  # a client typo
    assert logging.getLogger().level == logging.INFO


def test_pin_and_puk_arguments_are_redacted() -> None:
    for text in ('pin: "8642"', 'puk:"12345678"', '{"pin": "0000"}', "PIN2=1234", "puk = '99'"):
        assert not any(c.isdigit() for c in redact(f"x {text} y")), text
    assert redact("spin: 3") == "spin: 3"


async def test_an_unexpected_exception_is_logged_with_its_stack_but_not_the_request(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esim_gateway.resolvers import orders

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("REFERENCE4242XYZ")

    monkeypatch.setattr(orders, "list_orders", explode)
    with written_lines() as stream:
        await gateway.post(
            '{ orders(filter: { reference: "REFERENCE4242XYZ" }) { edges { cursor } } }'
        )
    (record,) = [
        json.loads(line)
        for line in stream.getvalue().splitlines()
        if json.loads(line)["event"] == "graphql error"
    ]
    assert "Traceback" in record["exception"] and "KeyError" in record["exception"]
    assert "REFERENCE4242XYZ" not in stream.getvalue()


@pytest.mark.parametrize(
    "value", ["8642", "LPA:1$smdp.example.com$SECRETCODE12345", {"pin": "86421357"}]
)
async def test_no_secret_in_variables_reaches_the_log(gateway: Gateway, value: object) -> None:
    document = "query($n: Int) { packages(first: $n) { totalCount } }"
    with written_lines() as stream:
        response = await gateway.post(document, {"n": value})
    assert "errors" in response.json()
    logged = stream.getvalue()
    assert "graphql error" in logged
    for secret in ("8642", "smdp.example", "SECRETCODE12345", "86421357"):
        assert secret not in logged


#: pieces of every secret shape, so that generated texts hit each pattern's edges
_PIECES = st.sampled_from(
    [
        "/install/",
        "abcdEFGH_-12345678",
        "LPA:1$",
        "lpa:1$smdp.example.com$",
        "Bearer ",
        "bearer\t",
        "sk_live_",
        "pk_test_",
        "roamify_",
        "0123456789ABCDEF01234567",
        "89ABCDEF0123456789abcdef",
        "PIN",
        "puk2",
        ": ",
        "=",
        '"',
        "'",
        " ",
        ",",
        "\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(text=st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=12).map("".join))
def test_the_quick_check_never_skips_a_text_the_patterns_would_change(text: str) -> None:
    """`redact` skips texts without any pattern's literal (or an upper-case hex run)
    before scanning them: it must answer exactly as applying every pattern would."""
    from esim_gateway.errors import _SECRET_PATTERNS

    expected = text
    for pattern in _SECRET_PATTERNS:
        expected = pattern.sub("[redacted]", expected)
    assert redact(text) == expected
