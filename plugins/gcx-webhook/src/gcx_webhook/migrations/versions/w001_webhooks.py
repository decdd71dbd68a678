"""gcx-webhook: subscribers and delivery attempts

Revision ID: w001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "w001"
down_revision = None
branch_labels = ("gcx_webhook",)
depends_on = "0001"

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = gcx_core.storage.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_subscribers",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("events", gcx_core.storage.tables.JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("disabled_reason", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("notification_id", BigInt, nullable=False),
        sa.Column("subscriber_id", BigInt, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["webhook_subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_attempts_notification_id", "webhook_attempts", ["notification_id"])
    op.create_index("ix_webhook_attempts_subscriber", "webhook_attempts", ["subscriber_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_subscribers")
