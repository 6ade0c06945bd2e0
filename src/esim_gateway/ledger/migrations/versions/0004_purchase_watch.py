"""purchase watch: quiet periods, late purchases and duplicates

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("lookups", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("reference_taken_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("watch_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_orders_watch_until", ["watch_until"], unique=False)

    op.create_table(
        "duplicate_purchases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("provider_order_id", sa.String(length=100), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_duplicate_purchases_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_purchases")),
        sa.UniqueConstraint(
            "order_id", "provider_order_id", name="uq_duplicate_purchases_order_provider"
        ),
    )


def downgrade() -> None:
    op.drop_table("duplicate_purchases")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_watch_until")
        batch_op.drop_column("watch_until")
        batch_op.drop_column("reference_taken_at")
        batch_op.drop_column("lookups")
        batch_op.drop_column("last_sent_at")
