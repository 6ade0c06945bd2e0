"""a quote remembers the order it backs; delivered webhooks found by age for pruning

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quotes") as batch:
        batch.add_column(sa.Column("order_id", sa.String(length=36), nullable=True))
    op.create_index(
        "ix_outbound_deliveries_delivered",
        "outbound_deliveries",
        ["status", "delivered_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbound_deliveries_delivered", table_name="outbound_deliveries")
    with op.batch_alter_table("quotes") as batch:
        batch.drop_column("order_id")
