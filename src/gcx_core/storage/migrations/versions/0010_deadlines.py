"""deadlines: one pending deadline per application, run by the scheduler

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = gcx_core.storage.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "deadlines",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("entered_at", _AT, nullable=False),
        sa.Column("due_at", _AT, nullable=False),
        sa.Column("step", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", _AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_deadlines_application_id_applications",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deadlines"),
        sa.UniqueConstraint("application_id", name="uq_deadlines_application_id"),
    )
    op.create_index("ix_deadlines_next_at", "deadlines", ["next_at"])
    op.create_index("ix_deadlines_status_due", "deadlines", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_deadlines_status_due", table_name="deadlines")
    op.drop_index("ix_deadlines_next_at", table_name="deadlines")
    op.drop_table("deadlines")
