"""What every store of the ledger is built from: its sessions, stored times read back as
UTC, and the read of one row or of many turned into records.

Each store (`orders`, `quotes`, `events`, `catalog`, `install_links`, `outbound`) owns
the tables of one aggregate and is handed the `Ledger`'s session factory, so they all
share one engine and one pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

__all__ = [
    "ChangeListener",
    "Sessions",
    "fetch_all",
    "fetch_by_id",
    "fetch_first",
    "sessions_for",
    "utc",
    "utc_now",
    "utc_or_none",
]

R = TypeVar("R")
T = TypeVar("T")

Sessions = async_sessionmaker[AsyncSession]
#: called with (topic, message) after a committed change
ChangeListener = Callable[[str, str], Awaitable[None]]


def sessions_for(engine: AsyncEngine) -> Sessions:
    # rows stay readable after their transaction: records are built from them afterwards
    return async_sessionmaker(engine, expire_on_commit=False)


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """A stored time in UTC: SQLite gives it back naive, PostgreSQL aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


async def fetch_first(sessions: Sessions, query: Select[R], convert: Callable[[R], T]) -> T | None:
    """The first row `query` selects, converted; None when it selects none."""
    async with sessions() as session:
        row = await session.scalar(query)
        return convert(row) if row is not None else None


async def fetch_all(sessions: Sessions, query: Select[R], convert: Callable[[R], T]) -> list[T]:
    """Every row `query` selects, converted, in its order."""
    async with sessions() as session:
        return [convert(row) for row in (await session.scalars(query)).all()]


async def fetch_by_id(
    sessions: Sessions, table: type[R], key: object, convert: Callable[[R], T]
) -> T | None:
    """The row of `table` whose primary key is `key`, converted; None when there is none."""
    async with sessions() as session:
        row = await session.get(table, key)
        return convert(row) if row is not None else None
