"""The plugin's two tables, on GCX's shared MetaData (created by migrations/versions/w001)."""

from __future__ import annotations

import sqlalchemy as sa

from gcx_core.storage.tables import JSON, BigInt, UTCDateTime, metadata


def _define() -> tuple[sa.Table, sa.Table]:
    if "webhook_subscribers" in metadata.tables:  # imported twice (tests reload plugins)
        return metadata.tables["webhook_subscribers"], metadata.tables["webhook_attempts"]
    subscribers = sa.Table(
        "webhook_subscribers",
        metadata,
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("disabled_reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    attempts = sa.Table(
        "webhook_attempts",
        metadata,
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column(
            "notification_id",
            BigInt,
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "subscriber_id",
            BigInt,
            sa.ForeignKey("webhook_subscribers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("response_code", sa.Integer),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500), nullable=False, server_default=""),
        sa.Index("ix_webhook_attempts_subscriber", "subscriber_id", "id"),
    )
    return subscribers, attempts


subscribers, attempts = _define()
