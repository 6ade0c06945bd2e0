"""Catalog snapshots: the last good catalog of each provider, so a restart or another
replica starts warm."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from esim_gateway.domain import ProviderName
from esim_gateway.ledger.store import Sessions, fetch_by_id, utc
from esim_gateway.ledger.tables import CatalogSnapshotRow

__all__ = ["CatalogStore"]


def _snapshot(row: CatalogSnapshotRow) -> tuple[datetime, list[dict[str, Any]]]:
    return utc(row.fetched_at), list(row.packages)


class CatalogStore:
    """One snapshot per provider (table `catalog_snapshots`)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def save(
        self, provider: ProviderName, fetched_at: datetime, packages: list[dict[str, Any]]
    ) -> None:
        # An UPDATE, not a read-modify-write: reading the row back would decode the whole
        # previous snapshot (megabytes) on the event loop only to replace it.
        async with self._sessions.begin() as session:
            updated = await session.execute(
                update(CatalogSnapshotRow)
                .where(CatalogSnapshotRow.provider == provider.value)
                .values(fetched_at=fetched_at, packages=packages)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.add(
                    CatalogSnapshotRow(
                        provider=provider.value, fetched_at=fetched_at, packages=packages
                    )
                )

    async def load(self, provider: ProviderName) -> tuple[datetime, list[dict[str, Any]]] | None:
        return await fetch_by_id(self._sessions, CatalogSnapshotRow, provider.value, _snapshot)
