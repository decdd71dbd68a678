"""internal_notes: staff's notes on applications, with the staff they mention

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "internal_notes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("author_id", _ID, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("mentions", gcx_core.storage.tables.JSON, nullable=False),
        sa.Column("created_at", gcx_core.storage.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_internal_notes_application_id_applications",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name="fk_internal_notes_author_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_internal_notes"),
    )
    op.create_index("ix_internal_notes_application_id", "internal_notes", ["application_id"])


def downgrade() -> None:
    op.drop_index("ix_internal_notes_application_id", table_name="internal_notes")
    op.drop_table("internal_notes")
