"""document validity: until when a version is valid, and how far its renewal has gone

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gcx_core.storage.tables

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_AT = gcx_core.storage.tables.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("valid_until", _AT, nullable=True))
        batch.add_column(
            sa.Column("renewal_step", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_index("ix_documents_valid_until", "documents", ["valid_until"])


def downgrade() -> None:
    op.drop_index("ix_documents_valid_until", table_name="documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("renewal_step")
        batch.drop_column("valid_until")
