"""Principals from API keys and JWTs; the sandbox's demo principal."""

from __future__ import annotations

import time

import jwt
import pytest

from esim_gateway.config import Mode, Role, Settings
from esim_gateway.errors import Unauthenticated
from esim_gateway.http.auth import DEMO_PRINCIPAL, Authenticator

KEYS = "alice:customer:alice-key,ops:operator:ops-key"


def test_the_sandbox_with_nothing_configured_uses_the_demo_principal() -> None:
    auth = Authenticator(Settings())
    assert auth.is_open
    assert auth.authenticate(None) == DEMO_PRINCIPAL
    assert auth.authenticate("Bearer anything") == DEMO_PRINCIPAL


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
