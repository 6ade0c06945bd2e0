"""Principals from API keys and JWTs (HS256, RS256, ES256); the sandbox's demo principal;
who may see an eSIM's credentials."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from esim_gateway.config import Mode, Role, Settings
from esim_gateway.errors import Unauthenticated
from esim_gateway.http.auth import DEMO_PRINCIPAL, Authenticator, Principal

KEYS = "alice:customer:alice-key,ops:operator:ops-key"


def test_the_sandbox_with_nothing_configured_uses_the_demo_principal_for_a_missing_key() -> None:
    auth = Authenticator(Settings())
    assert auth.is_open
    assert auth.authenticate(None) == DEMO_PRINCIPAL
    assert auth.authenticate("") == DEMO_PRINCIPAL


def test_the_open_sandbox_refuses_a_wrong_key_like_every_other_mode() -> None:
    auth = Authenticator(Settings())
    for header in ("Bearer anything", "Bearer", "Basic YWxpY2U6a2V5", "anything", "Bearer a.b.c"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(header)


def test_configured_keys_are_required_even_in_the_sandbox() -> None:
    auth = Authenticator(Settings.from_mapping({"ESIM_GATEWAY_API_KEYS": KEYS}))
    assert not auth.is_open
    principal = auth.authenticate("Bearer alice-key")
    assert (principal.id, principal.role) == ("alice", Role.CUSTOMER)
    assert auth.authenticate("bearer ops-key").is_operator
    for header in (None, "", "Bearer", "Basic alice-key", "Bearer wrong", "alice-key"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(header)


def test_live_mode_without_keys_lets_nobody_in() -> None:
    auth = Authenticator(Settings(mode=Mode.LIVE))
    with pytest.raises(Unauthenticated):
        auth.authenticate(None)
    with pytest.raises(Unauthenticated):
        auth.authenticate("Bearer whatever")


def _token(secret: str, **claims: object) -> str:
    payload: dict[str, object] = {
        "sub": "traveller-7",
        "exp": int(time.time()) + 60,
        "iss": "https://issuer",
        "aud": "esim-gateway",
    }
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


def test_jwts_are_verified_with_issuer_audience_and_expiry() -> None:
    settings = Settings(
        mode=Mode.LIVE,
        jwt_secret="k" * 32,
        jwt_issuer="https://issuer",
        jwt_audience="esim-gateway",
    )
    auth = Authenticator(settings)
    principal = auth.authenticate(f"Bearer {_token('k' * 32)}")
    assert principal.id == "traveller-7" and principal.role is Role.CUSTOMER
    assert auth.authenticate(f"Bearer {_token('k' * 32, role='operator')}").is_operator
    bad = [
        _token("x" * 32),
        _token("k" * 32, exp=int(time.time()) - 10),
        _token("k" * 32, iss="https://elsewhere"),
        _token("k" * 32, aud="another-api"),
    ]
    for token in bad:
        with pytest.raises(Unauthenticated):
            auth.authenticate(f"Bearer {token}")


def _rsa() -> tuple[PrivateKeyTypes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _public_pem(key)


def _ec() -> tuple[PrivateKeyTypes, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _public_pem(key)


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _signed(key: PrivateKeyTypes, algorithm: str, **claims: object) -> str:
    payload: dict[str, object] = {"sub": "traveller-9", "exp": int(time.time()) + 60}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)  # type: ignore[arg-type]


@pytest.mark.parametrize(("algorithm", "keys"), [("RS256", _rsa), ("ES256", _ec)])
@pytest.mark.parametrize("as_file", [False, True], ids=["PEM in the variable", "PEM file"])
def test_public_key_jwts_are_verified_with_their_key_only(
    algorithm: str,
    keys: Callable[[], tuple[PrivateKeyTypes, str]],
    as_file: bool,
    tmp_path: Path,
) -> None:
    private, public = keys()
    configured = public
    if as_file:
        path = tmp_path / "jwt.pem"
        path.write_text(public)
        configured = str(path)
    auth = Authenticator(Settings(mode=Mode.LIVE, jwt_public_key=configured))
    principal = auth.authenticate(f"Bearer {_signed(private, algorithm)}")
    assert (principal.id, principal.role) == ("traveller-9", Role.CUSTOMER)
    assert auth.authenticate(f"Bearer {_signed(private, algorithm, role='operator')}").is_operator
    other, _ = keys()
    bad = [
        _signed(other, algorithm),  # another key
        _signed(private, algorithm, exp=int(time.time()) - 10),
        # the public key used as an HMAC secret: the classic algorithm confusion
        jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "k" * 32, algorithm="HS256"),
        jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "", algorithm="none"),
    ]
    for token in bad:
        with pytest.raises(Unauthenticated):
            auth.authenticate(f"Bearer {token}")


def test_a_token_for_one_public_key_algorithm_is_not_taken_for_the_other() -> None:
    rsa_private, _ = _rsa()
    _, ec_public = _ec()
    auth = Authenticator(Settings(mode=Mode.LIVE, jwt_public_key=ec_public))
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"Bearer {_signed(rsa_private, 'RS256')}")


def test_only_a_known_owner_and_operators_may_see_an_esims_credentials() -> None:
    alice = Principal("alice", Role.CUSTOMER)
    ops = Principal("ops", Role.OPERATOR)
    assert alice.may_see_credentials("alice") and ops.may_see_credentials("alice")
    assert not alice.may_see_credentials("bob")
    # an eSIM whose owner is unknown: nobody, operators included (fail closed)
    assert not any(p.may_see_credentials(None) for p in (alice, ops, DEMO_PRINCIPAL))


CREDENTIALS = {
    "lpa": "LPA:1$smdp.example$SECRET-MATCHING-ID",
    "activation_code": "SECRET-MATCHING-ID",
    "qr_code_url": "https://provider.example/qr/SECRET",
    "ios_install_url": "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=SECRET",
    "android_install_url": "https://provider.example/android/SECRET",
    "pin": "1234",
    "puk": "87654321",
}


@pytest.mark.parametrize(
    ("owner", "principal", "shown"),
    [
        (None, Principal("ops", Role.OPERATOR), False),
        (None, DEMO_PRINCIPAL, False),
        ("alice", Principal("alice", Role.CUSTOMER), True),
        ("alice", Principal("ops", Role.OPERATOR), True),
        ("alice", Principal("bob", Role.CUSTOMER), False),
    ],
)
async def test_the_schema_shows_esim_credentials_by_the_same_rule(
    owner: str | None, principal: Principal, shown: bool
) -> None:
    from strawberry.types.base import get_object_definition

    from esim_gateway.domain import EsimProfile, ProviderName
    from esim_gateway.resolvers.install import guide
    from esim_gateway.schema.install import resolve_provider_share_link
    from esim_gateway.schema.types import Esim, esim_from

    profile = EsimProfile(
        provider=ProviderName.ROAMIFY,
        iccid="8944000000000000001",
        status="ready",
        lpa=CREDENTIALS["lpa"],
        activation_code=CREDENTIALS["activation_code"],
        qr_code_url=CREDENTIALS["qr_code_url"],
        ios_install_url=CREDENTIALS["ios_install_url"],
        android_install_url=CREDENTIALS["android_install_url"],
        pin=CREDENTIALS["pin"],
        puk=CREDENTIALS["puk"],
    )
    esim = esim_from(profile, owner)
    info: Any = SimpleNamespace(context=SimpleNamespace(principal=principal))
    resolvers: dict[str, Any] = {
        f.python_name: f.base_resolver.wrapped_func
        for f in get_object_definition(Esim, strict=True).fields
        if f.base_resolver is not None
    }
    seen = {name: resolvers[name](esim, info) for name in [*CREDENTIALS, "qr_code_svg"]}
    if shown:
        assert {name: seen[name] for name in CREDENTIALS} == CREDENTIALS
        assert seen["qr_code_svg"]
    else:
        assert set(seen.values()) == {None}
        assert await resolve_provider_share_link(esim, info) is None
        steps = repr(guide(info.context, profile, owner, "en"))
        assert not any(secret in steps for secret in ("SECRET", "1234", "87654321"))
