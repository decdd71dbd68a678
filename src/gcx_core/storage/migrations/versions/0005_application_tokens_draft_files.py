"""application_tokens (withdrawal links) and draft_files (expiry of abandoned draft uploads)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "application_tokens",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", gcx_core.storage.tables.UTCDateTime(), nullable=False),
        sa.Column("expires_at", gcx_core.storage.tables.UTCDateTime(), nullable=False),
        sa.Column("used_at", gcx_core.storage.tables.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_application_tokens_application_id_applications",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_application_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_application_tokens_token_hash"),
    )
    op.create_index(
        "ix_application_tokens_application_id", "application_tokens", ["application_id"]
    )
    op.create_table(
        "draft_files",
        sa.Column("file_key", sa.String(length=64), nullable=False),
        sa.Column("stored_at", gcx_core.storage.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("file_key", name="pk_draft_files"),
    )
    op.create_index("ix_draft_files_stored_at", "draft_files", ["stored_at"])


def downgrade() -> None:
    op.drop_index("ix_draft_files_stored_at", table_name="draft_files")
    op.drop_table("draft_files")
    op.drop_index("ix_application_tokens_application_id", table_name="application_tokens")
    op.drop_table("application_tokens")
