"""Alembic environment: migrations run on a connection handed over by `ledger.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from esim_gateway.ledger.tables import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through esim_gateway.ledger.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
