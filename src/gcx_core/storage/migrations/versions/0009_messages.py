"""messages: the thread between staff and an applicant

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = gcx_core.storage.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("sender", sa.String(length=10), nullable=False),
        sa.Column("author_id", _ID, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("file_key", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("file_type", sa.String(length=100), server_default="", nullable=False),
        sa.Column("file_size", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("read_at", _AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"], ["applications.id"], name="fk_messages_application_id_applications"
        ),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name="fk_messages_author_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
    )
    op.create_index("ix_messages_application_id", "messages", ["application_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_application_id", table_name="messages")
    op.drop_table("messages")
