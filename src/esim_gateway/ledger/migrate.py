"""Alembic migrations of the ledger, run programmatically (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["alembic_config", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the ledger's schema to `revision`. Safe to run concurrently on PostgreSQL:
    the migration runs in one transaction holding an advisory lock."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            from sqlalchemy import text

            await connection.execute(text("SELECT pg_advisory_xact_lock(727274)"))
        await connection.run_sync(_upgrade, revision)
