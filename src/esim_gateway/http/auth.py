"""Who is calling: API keys (stored as SHA-256 digests) or JWT bearer tokens.

In sandbox mode with no keys and no JWT configured, a caller that sends no credential is
the demo customer, so GraphiQL works out of the box; a credential that is sent must be
valid in every mode (a wrong key is a 401 in the sandbox too, so that a client's handling
of it can be tried there). As soon as keys are configured they are required.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

from esim_gateway.config import ApiKey, Role, Settings
from esim_gateway.errors import Unauthenticated

__all__ = ["DEMO_PRINCIPAL", "Authenticator", "Principal", "bearer_matches"]


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def can_see(self, owner: str) -> bool:
        return self.is_operator or owner == self.id

    def may_see_credentials(self, owner: str | None) -> bool:
        """Whether an eSIM's credentials (LPA, activation code, PIN/PUK, install links)
        are shown: to its owner and operators, and to nobody when its owner is unknown."""
        return owner is not None and self.can_see(owner)


DEMO_PRINCIPAL = Principal("sandbox-demo", Role.CUSTOMER)


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """True when `authorization` is `Bearer <expected>`; compared as digests, so the time
    taken says nothing about the token (nor its length)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(ApiKey.digest(token.strip()), ApiKey.digest(expected))


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._keys = settings.api_keys
        self._jwt_key: str | None = None
        self._jwt_algorithms: list[str] = []
        if settings.jwt_secret:
            self._jwt_key, self._jwt_algorithms = settings.jwt_secret, ["HS256"]
        elif settings.jwt_public_key:
            key = settings.jwt_public_key
            if not key.lstrip().startswith("-----BEGIN") and Path(key).is_file():
                key = Path(key).read_text()
            self._jwt_key, self._jwt_algorithms = key, ["RS256", "ES256"]
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._open = settings.is_sandbox and not self._keys and self._jwt_key is None

    @property
    def is_open(self) -> bool:
        """True when the sandbox's demo principal is used for callers without a credential."""
        return self._open

    def authenticate(self, authorization: str | None) -> Principal:
        if self._open and not authorization:
            return DEMO_PRINCIPAL
        if not authorization:
            raise Unauthenticated("Send Authorization: Bearer <api key or JWT>.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
        principal = self._by_api_key(token)
        if principal is not None:
            return principal
        if self._jwt_key is not None and token.count(".") == 2:
            return self._by_jwt(token)
        raise Unauthenticated("The bearer token is not valid.")

    def _by_api_key(self, token: str) -> Principal | None:
        digest = ApiKey.digest(token)
        match: ApiKey | None = None
        for key in self._keys:  # compare against every key: no early exit to time
            if hmac.compare_digest(key.sha256, digest):
                match = key
        return Principal(match.principal, match.role) if match is not None else None

    def _by_jwt(self, token: str) -> Principal:
        import jwt

        assert self._jwt_key is not None
        try:
            claims = jwt.decode(
                token,
                self._jwt_key,
                algorithms=self._jwt_algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is not valid.") from None
        role = Role.OPERATOR if claims.get("role") == Role.OPERATOR.value else Role.CUSTOMER
        return Principal(str(claims["sub"]), role)
