"""gcx_notify: captured messages

Revision ID: n001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "n001"
down_revision = None
branch_labels = ("gcx_notify",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "captured_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", gcx_core.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_captured_messages_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captured_messages")),
    )
    with op.batch_alter_table("captured_messages") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_captured_messages_notification_id"), ["notification_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_captured_messages_recipient"), ["recipient"], unique=False
        )


def downgrade() -> None:
    op.drop_table("captured_messages")
