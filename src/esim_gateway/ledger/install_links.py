"""Capability tokens for the shareable install page (`/install/<token>`).

A token is 32 random bytes (256 bits) in URL-safe base64; it is handed out once, in
`createInstallLink`'s answer, and only its SHA-256 is stored. Looking a token up hashes
it first and then reads one row by that digest through a unique index, so the work does
not depend on how much of a guess matches a real token, and an unknown token costs the
same as an expired or revoked one. Logs and metrics never see the token (see
`esim_gateway.errors.redact`): operators find a link by its id.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from esim_gateway.domain import ProviderName
from esim_gateway.ledger.store import Sessions, fetch_all, fetch_by_id, utc, utc_or_none
from esim_gateway.ledger.tables import InstallLinkRow

__all__ = [
    "TOKEN_BYTES",
    "InstallLink",
    "InstallLinkStore",
    "LinkState",
    "new_token",
    "token_digest",
]

TOKEN_BYTES = 32
#: what `secrets.token_urlsafe(TOKEN_BYTES)` produces: 43 URL-safe base64 characters
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class LinkState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@dataclass(frozen=True, slots=True)
class InstallLink:
    id: str
    provider: ProviderName
    iccid: str
    owner: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> LinkState:
        if self.revoked_at is not None:
            return LinkState.REVOKED
        return LinkState.ACTIVE if now < self.expires_at else LinkState.EXPIRED

    @classmethod
    def from_row(cls, row: InstallLinkRow) -> InstallLink:
        return cls(
            id=row.id,
            provider=ProviderName(row.provider),
            iccid=row.iccid,
            owner=row.owner,
            created_by=row.created_by,
            created_at=utc(row.created_at),
            expires_at=utc(row.expires_at),
            revoked_at=utc_or_none(row.revoked_at),
        )


class InstallLinkStore:
    """Install links in the ledger's database (table `install_links`)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def create(
        self,
        *,
        provider: ProviderName,
        iccid: str,
        owner: str,
        created_by: str,
        expires_at: datetime,
        now: datetime,
    ) -> tuple[InstallLink, str]:
        """A new link and its token (the only time the token exists in clear)."""
        token = new_token()
        row = InstallLinkRow(
            id=str(uuid.uuid4()),
            token_sha256=token_digest(token),
            provider=provider.value,
            iccid=iccid,
            owner=owner,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return InstallLink.from_row(row), token

    async def by_token(self, token: str) -> InstallLink | None:
        digest = token_digest(token)
        async with self._sessions() as session:
            row = await session.scalar(
                select(InstallLinkRow).where(InstallLinkRow.token_sha256 == digest)
            )
        # a token of the wrong shape was never issued; it was still hashed and looked up
        # like any other, so it answers no faster
        if row is None or not TOKEN_SHAPE.fullmatch(token):
            return None
        return InstallLink.from_row(row)

    async def get(self, link_id: str) -> InstallLink | None:
        return await fetch_by_id(self._sessions, InstallLinkRow, link_id, InstallLink.from_row)

    async def for_iccid(self, iccid: str) -> list[InstallLink]:
        """Every link of this eSIM, newest first."""
        return await fetch_all(
            self._sessions,
            select(InstallLinkRow)
            .where(InstallLinkRow.iccid == iccid)
            .order_by(InstallLinkRow.created_at.desc(), InstallLinkRow.id),
            InstallLink.from_row,
        )

    async def revoke(self, link_id: str, now: datetime) -> InstallLink | None:
        """Revoke (idempotent: a revoked link keeps its first revocation time)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(InstallLinkRow)
                .where(InstallLinkRow.id == link_id, InstallLinkRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = await session.get(InstallLinkRow, link_id)
            return InstallLink.from_row(row) if row is not None else None
