"""gcx_notify's own table, on GCX's MetaData, created by its own Alembic branch."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from gcx_core.storage.tables import BigInt, UTCDateTime, metadata

MIGRATIONS = Path(__file__).parent / "migrations"

captured_messages = sa.Table(
    "captured_messages",
    metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "notification_id", BigInt, sa.ForeignKey("notifications.id"), nullable=False, index=True
    ),
    sa.Column("recipient", sa.String(254), nullable=False, index=True),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
