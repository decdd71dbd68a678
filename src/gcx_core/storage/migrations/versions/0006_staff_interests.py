"""staff_interests (conflicts of interest staff declare); assignment counters and index

The dashboard's queue counts come from counters kept with every change: this counts the
applications already there by status and reviewer.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff_interests",
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("created_at", gcx_core.storage.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_staff_interests_user_id_users"),
        sa.PrimaryKeyConstraint("user_id", "kind", "value", name="pk_staff_interests"),
    )
    op.create_index("ix_staff_interests_value", "staff_interests", ["kind", "value"])
    op.create_index(
        "ix_applications_reviewer_status",
        "applications",
        ["assigned_reviewer_id", "status", "status_changed_at"],
    )
    op.create_index(
        "ix_applications_reviewer_created",
        "applications",
        ["assigned_reviewer_id", "created_at", "id"],
    )
    op.execute(
        "INSERT INTO counters (name, value) "
        "SELECT 'assigned:' || status || ':' || "
        "COALESCE(CAST(assigned_reviewer_id AS VARCHAR), '-'), COUNT(*) "
        "FROM applications GROUP BY status, assigned_reviewer_id"
    )


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name LIKE 'assigned:%'")
    op.drop_index("ix_applications_reviewer_created", table_name="applications")
    op.drop_index("ix_applications_reviewer_status", table_name="applications")
    op.drop_index("ix_staff_interests_value", table_name="staff_interests")
    op.drop_table("staff_interests")
