"""SimplifyTrip's flattened-body HMAC and Roamify's raw-body HMAC (providers.md 2.2, 1.6).

The expected JavaScript outputs below were produced with node running the docs' own
generator (`deepFlattenToObject` + `Object.keys(...).sort()` + `String()`), not derived
from the Python under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esim_gateway.signatures import (
    js_string,
    roamify_signature,
    simplifytrip_canonical,
    simplifytrip_signature,
    verify_roamify_signature,
    verify_simplifytrip_signature,
)

KEY = "ck_test_xxxxxxxxxxxxxxxxxxxxxxxx"

#: providers.md 2.2: (body as sent, string that is signed, HMAC-SHA256 hex)
VECTORS = [
    (
        '{"trackId":"b4b08205-836e-4296-a054-52462089edf6","items":[{"subTrackId":'
        '"958acd57-182f-4b5c-b408-5e93f646ddde","sku":"E23XY06GB08DFX","quantity":2}]}',
        "items_0_quantity=2&items_0_sku=E23XY06GB08DFX&items_0_subTrackId="
        "958acd57-182f-4b5c-b408-5e93f646ddde&trackId=b4b08205-836e-4296-a054-52462089edf6",
        "d25aa039a8a21bc6112e42cc25c9f7b84556975285c64b0a8dba59bcdb9f1562",
    ),
    (
        '{"orderId":"658441501843542","reason":"Customer canceled"}',
        "orderId=658441501843542&reason=Customer canceled",
        "bd17e4184a1a8d05eb305ab454a709a3d9b6819a150965158f2bff724b9efdc1",
    ),
    (
        '{"orderId":"658441501843542","reason":null}',
        "orderId=658441501843542&reason=",
        "28b8ce734d8d1076fe6047ca5cc990860af96d94cbf64546bfba645351aa1437",
    ),
    (
        '{"returnTrackId":"partner-return-001","orderId":"658441501843542","reason":'
        '"Customer requested a return","items":[{"subOrderId":"6740ce7f9d04259159bc6401",'
        '"iccids":["8985200000000000001"]}]}',
        "items_0_iccids_0=8985200000000000001&items_0_subOrderId=6740ce7f9d04259159bc6401"
        "&orderId=658441501843542&reason=Customer requested a return"
        "&returnTrackId=partner-return-001",
        "48d1d66b2abb4f013e4443b93c7ce90646fe6b9ce0987827d0398fbb67c5301f",
    ),
]

#: String(x) in node for numbers as JSON.parse produces them
JS_NUMBERS: list[tuple[float | int, str]] = [
    (1.0, "1"),
    (1.5, "1.5"),
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (1e-7, "1e-7"),
    (0.000001, "0.000001"),
    (5e-7, "5e-7"),
    (0.0000015, "0.0000015"),
    (0.0000123, "0.0000123"),
    (123456789012345680000, "123456789012345680000"),
    (12345678901234567890, "12345678901234567000"),
    (-0.0, "0"),
    (0, "0"),
    (0.1, "0.1"),
    (0.1 + 0.2, "0.30000000000000004"),
    (-2.5, "-2.5"),
    (4.35, "4.35"),
    (100, "100"),
    (1e16, "10000000000000000"),
    (2**53 - 1, "9007199254740991"),
    (2**53 + 1, "9007199254740992"),
    (-(2**53) - 1, "-9007199254740992"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (-1.5e-9, "-1.5e-9"),
]


def utf16_units(text: str) -> tuple[int, ...]:
    raw = text.encode("utf-16-be", errors="surrogatepass")
    return struct.unpack(f">{len(raw) // 2}H", raw)


def plain_strings(value: Any) -> Any:
    """The same structure with every string leaf replaced, so "&" and "=" only separate."""
    if isinstance(value, dict):
        return {k: plain_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_strings(v) for v in value]
    return "v" if isinstance(value, str) else value


def keys_of(canonical: str) -> list[str]:
    return [pair.split("=", 1)[0] for pair in canonical.split("&")] if canonical else []


# -- documented vectors ----------------------------------------------------------------


@pytest.mark.parametrize(("raw", "canonical", "digest"), VECTORS)
def test_the_documented_vectors_give_the_documented_string_and_digest(
    raw: str, canonical: str, digest: str
) -> None:
    body = json.loads(raw)
    assert simplifytrip_canonical(body) == canonical
    assert simplifytrip_signature(body, KEY) == digest
    assert verify_simplifytrip_signature(body, digest, KEY)
    assert verify_simplifytrip_signature(body, digest.upper(), KEY)
    assert verify_simplifytrip_signature(body, f" {digest}\n", KEY)


def test_the_signature_is_lowercase_hex_hmac_sha256_of_the_utf8_string() -> None:
    body = {"reason": "Hủy đơn hàng 😀 & co", "orderId": "1"}
    canonical = "orderId=1&reason=Hủy đơn hàng 😀 & co"
    assert simplifytrip_canonical(body) == canonical
    expected = hmac.new(KEY.encode(), canonical.encode("utf-8"), hashlib.sha256).hexdigest()
    assert simplifytrip_signature(body, KEY) == expected


# -- invariance ------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_keys = st.text(
    st.characters(codec="utf-8", exclude_characters="_&="), min_size=1, max_size=6
).filter(lambda k: not k.isdigit())
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=25,
)
json_bodies = st.dictionaries(json_keys, json_values, max_size=6)


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@settings(max_examples=200, deadline=None)
@given(
    body=json_bodies,
    rng=st.randoms(use_true_random=False),
    indent=st.sampled_from([None, 0, 2, "\t"]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,  ", " :\n ")]),
    ascii_only=st.booleans(),
)
def test_key_order_and_json_whitespace_do_not_change_the_signature(
    body: dict[str, Any],
    rng: random.Random,
    indent: int | str | None,
    separators: tuple[str, str],
    ascii_only: bool,
) -> None:
    original = json.loads(json.dumps(body))
    text = json.dumps(
        shuffled(body, rng), indent=indent, separators=separators, ensure_ascii=ascii_only
    )
    reparsed = json.loads(text)
    assert simplifytrip_canonical(reparsed) == simplifytrip_canonical(original)
    assert simplifytrip_signature(reparsed, KEY) == simplifytrip_signature(original, KEY)


@settings(max_examples=200, deadline=None)
@given(json_bodies)
def test_flattened_keys_come_out_in_utf16_code_unit_order(body: dict[str, Any]) -> None:
    keys = keys_of(simplifytrip_canonical(plain_strings(body)))
    assert keys == sorted(keys, key=utf16_units)
    assert len(keys) == len(set(keys))


# -- flattening ------------------------------------------------------------------------


def test_nested_arrays_flatten_with_their_indices() -> None:
    body = {
        "trackId": "t",
        "items": [{"subTrackId": "s", "sku": "R1", "iccids": ["8986001", "8986002"]}],
    }
    assert simplifytrip_canonical(body) == (
        "items_0_iccids_0=8986001&items_0_iccids_1=8986002&items_0_sku=R1"
        "&items_0_subTrackId=s&trackId=t"
    )


def test_arrays_of_arrays_and_top_level_nesting_use_index_keys() -> None:
    assert simplifytrip_canonical({"m": [[1, 2], [3]], "o": {"p": {"q": True}}}) == (
        "m_0_0=1&m_0_1=2&m_1_0=3&o_p_q=true"
    )


@given(
    st.lists(
        st.text(st.characters(codec="utf-8"), max_size=5).filter(
            lambda v: v not in ("null", "undefined")
        ),
        max_size=15,
    )
)
def test_every_array_element_is_signed_under_its_index(values: list[str]) -> None:
    canonical = simplifytrip_canonical({"items": [{"iccids": values}]})
    assert canonical == "&".join(
        f"items_0_iccids_{i}={v}" for i, v in sorted(enumerate(values), key=lambda p: str(p[0]))
    )


@pytest.mark.parametrize("empty", [[], {}, [[]], [{}], {"a": []}, {"a": {"b": {}}}])
def test_empty_arrays_and_objects_contribute_nothing(empty: Any) -> None:
    assert simplifytrip_canonical({"x": empty}) == ""
    assert simplifytrip_canonical({"x": empty, "y": 1}) == "y=1"


@pytest.mark.parametrize("blank", [None, "null", "undefined"])
def test_null_and_the_strings_null_and_undefined_sign_as_empty(blank: str | None) -> None:
    assert simplifytrip_canonical({"reason": blank, "orderId": "1"}) == "orderId=1&reason="
    assert simplifytrip_canonical({"a": [blank]}) == "a_0="


def test_other_strings_are_kept_as_they_are_without_url_encoding() -> None:
    body = {"a": "NULL", "b": "", "c": "x y:/$?&", "d": "none", "e": "0"}
    assert simplifytrip_canonical(body) == "a=NULL&b=&c=x y:/$?&&d=none&e=0"


def test_booleans_sign_as_true_and_false() -> None:
    assert (
        simplifytrip_canonical({"t": True, "f": False, "l": [False]}) == "f=false&l_0=false&t=true"
    )


# -- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "expected"), JS_NUMBERS)
def test_numbers_render_as_javascript_string_does(number: float | int, expected: str) -> None:
    assert js_string(number) == expected
    assert simplifytrip_canonical({"n": number}) == f"n={expected}"


def test_numbers_parsed_from_json_text_render_as_javascript_string_does() -> None:
    body = json.loads('{"a": 2.0, "b": 1E21, "c": 1e-7, "d": -0, "e": 10.50, "f": 1.0e2}')
    assert simplifytrip_canonical(body) == "a=2&b=1e+21&c=1e-7&d=0&e=10.5&f=100"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_renders_as_the_shortest_text_that_reads_back_as_it(number: float) -> None:
    text = js_string(number)
    assert float(text) == number
    assert not text.endswith(".0") and "e+0" not in text and "e-0" not in text
    if number.is_integer() and abs(number) < 1e21:
        assert "e" not in text and "." not in text


@given(st.integers(-(2**53) + 1, 2**53 - 1))
def test_safe_integers_render_as_their_digits(number: int) -> None:
    assert js_string(number) == str(number)
    assert js_string(float(number)) == str(number)


def test_non_finite_numbers_render_as_javascript_names() -> None:
    assert js_string(float("nan")) == "NaN"
    assert js_string(float("inf")) == "Infinity"
    assert js_string(float("-inf")) == "-Infinity"


# -- key order -------------------------------------------------------------------------


def test_keys_sort_by_utf16_code_units_like_javascript_sort() -> None:
    body = {
        "\uffff": 1,
        "\U0001f600": 2,
        "a": 3,
        "Z": 4,
        "_": 5,
        "items": [0] * 11,
        "\u00e9": 6,
        "\uff5e": 7,
    }
    keys = keys_of(simplifytrip_canonical(body))
    # node sorts them: Z, _, a, items_10, items_2, ..., U+00E9, U+1F600, U+FF5E, U+FFFF
    assert keys[:3] == ["Z", "_", "a"]
    assert keys[3:6] == ["items_0", "items_1", "items_10"]
    assert keys.index("items_10") < keys.index("items_2")
    assert keys[-4:] == ["\u00e9", "\U0001f600", "\uff5e", "\uffff"]
    # Python's code-point order would put U+FFFF before the astral U+1F600
    assert sorted(["\uffff", "\U0001f600"]) != ["\U0001f600", "\uffff"]


def test_uppercase_before_underscore_before_lowercase() -> None:
    assert simplifytrip_canonical({"b": 1, "_b": 2, "B": 3, "a_": 4, "aB": 5}) == (
        "B=3&_b=2&aB=5&a_=4&b=1"
    )


# -- verification ------------------------------------------------------------------------


def test_verification_rejects_missing_wrong_and_truncated_signatures() -> None:
    body = json.loads(VECTORS[0][0])
    good = simplifytrip_signature(body, KEY)
    assert not verify_simplifytrip_signature(body, None, KEY)
    assert not verify_simplifytrip_signature(body, "", KEY)
    assert not verify_simplifytrip_signature(body, good[:-1], KEY)
    assert not verify_simplifytrip_signature(body, good, "ck_test_other")
    assert not verify_simplifytrip_signature(body, "0" * 64, KEY)


@settings(max_examples=100, deadline=None)
@given(body=json_bodies.filter(bool), data=st.data())
def test_changing_any_signed_value_breaks_the_signature(
    body: dict[str, Any], data: st.DataObject
) -> None:
    body = json.loads(json.dumps(body))
    signature = simplifytrip_signature(body, KEY)
    key = data.draw(st.sampled_from(sorted(body)))
    tampered = {**body, key: "tampered-value"}
    if simplifytrip_canonical(tampered) == simplifytrip_canonical(body):
        return  # the value was already that string, or an empty container became a leaf
    assert not verify_simplifytrip_signature(tampered, signature, KEY)
    added = {**body, "extraField\u0001": 1}
    assert not verify_simplifytrip_signature(added, signature, KEY)


def test_a_non_ascii_signature_is_rejected_rather_than_raising() -> None:
    assert not verify_simplifytrip_signature({"a": 1}, "\u00e9" * 64, KEY)
    assert not verify_roamify_signature(b"{}", "\u00e9" * 64, "secret")


def test_colliding_flattened_keys_keep_the_value_javascript_keeps() -> None:
    # node: deepFlattenToObject({"1_0": "x", "1": ["y"]}) == {"1_0": "x"}
    assert simplifytrip_canonical({"1_0": "x", "1": ["y"]}) == "1_0=x"


# -- Roamify webhooks ------------------------------------------------------------------

ROAMIFY_SECRET = "whsec_test_secret"
ROAMIFY_BODY = (
    b'{"event_category":"esim","event_type":"status","data":{"iccid":"8985200000000000001"}}'
)
#: node: crypto.createHmac("sha256", secret).update(body).digest("hex")
ROAMIFY_DIGEST = "a30da42848c3bc03fe6bd180ea6941364e11e327fc80187bf413a9a0f05481ec"


def test_the_roamify_signature_is_hmac_sha256_of_the_raw_body() -> None:
    assert roamify_signature(ROAMIFY_BODY, ROAMIFY_SECRET) == ROAMIFY_DIGEST
    assert verify_roamify_signature(ROAMIFY_BODY, ROAMIFY_DIGEST, ROAMIFY_SECRET)
    assert verify_roamify_signature(ROAMIFY_BODY, ROAMIFY_DIGEST.upper(), ROAMIFY_SECRET)


def test_roamify_verification_covers_the_exact_bytes() -> None:
    reformatted = json.dumps(json.loads(ROAMIFY_BODY)).encode()
    assert reformatted != ROAMIFY_BODY
    assert not verify_roamify_signature(reformatted, ROAMIFY_DIGEST, ROAMIFY_SECRET)
    assert not verify_roamify_signature(ROAMIFY_BODY + b" ", ROAMIFY_DIGEST, ROAMIFY_SECRET)
    assert not verify_roamify_signature(ROAMIFY_BODY, ROAMIFY_DIGEST, "other-secret")
    assert not verify_roamify_signature(ROAMIFY_BODY, None, ROAMIFY_SECRET)
    assert not verify_roamify_signature(ROAMIFY_BODY, "", ROAMIFY_SECRET)
    assert not verify_roamify_signature(ROAMIFY_BODY, ROAMIFY_DIGEST[:-2], ROAMIFY_SECRET)


@given(st.binary(max_size=200), st.binary(min_size=1, max_size=8))
def test_any_change_to_a_roamify_body_breaks_its_signature(body: bytes, suffix: bytes) -> None:
    signature = roamify_signature(body, ROAMIFY_SECRET)
    assert verify_roamify_signature(body, signature, ROAMIFY_SECRET)
    assert not verify_roamify_signature(body + suffix, signature, ROAMIFY_SECRET)
