"""install links

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "install_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("iccid", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_install_links")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_install_links_token_sha256")),
    )
    with op.batch_alter_table("install_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_install_links_iccid"), ["iccid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("install_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_install_links_iccid"))
    op.drop_table("install_links")
