"""The schema, as SQLAlchemy Core tables; one MetaData drives queries and Alembic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


_STORED_LENGTH = len("2026-01-01 00:00:00.000000")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive text, so tag it on the way out)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the generic path formats and parses through several layers per value; these
    # do the same conversion directly, in SQLAlchemy's own SQLite text format.
    def bind_processor(self, dialect: sa.Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The rows of one change mostly carry the same `now` object (an application, its
        # status change, notifications and audit entry); the last one formatted is kept.
        last: tuple[datetime | None, str | None] = (None, None)

        def process(value: datetime | None) -> str | None:
            nonlocal last
            if value is None:
                return None
            seen, text = last
            if value is seen:
                return text
            if value.tzinfo is None:
                raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
            # The same text as SQLAlchemy's SQLite format, microseconds always included.
            if value.tzinfo is UTC:
                text = value.isoformat(" ", "microseconds")[:-6]  # without "+00:00"
            else:
                text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            last = (value, text)
            return text

        return process

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            if len(value) == _STORED_LENGTH:  # parsing with the offset beats a replace() after
                return datetime.fromisoformat(value + "+00:00")
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


JSON: Any = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigInt: Any = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[Any]:
    return sa.Column("id", BigInt, primary_key=True, autoincrement=True)


users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("application_id", BigInt),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime),
)

user_tokens = sa.Table(
    "user_tokens",
    metadata,
    _id(),
    sa.Column("user_id", BigInt, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("used_at", UTCDateTime),
)

# What a staff member declared they must not review: applicants' email domains and TINs
# (conflicts of interest). `kind` is "domain" or "tin"; values are stored normalised.
staff_interests = sa.Table(
    "staff_interests",
    metadata,
    sa.Column("user_id", BigInt, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),
    sa.Column("value", sa.String(254), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_staff_interests_value", "kind", "value"),
)

# Filters of the applications list kept under a name: a user's own, or shared by an admin.
saved_views = sa.Table(
    "saved_views",
    metadata,
    _id(),
    sa.Column("owner_id", BigInt, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("query", sa.String(2000), nullable=False),
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("owner_id", "name"),
)

# Staff's notes on an application: never shown to the applicant, in any page, API or email.
internal_notes = sa.Table(
    "internal_notes",
    metadata,
    _id(),
    sa.Column(
        "application_id", BigInt, sa.ForeignKey("applications.id"), nullable=False, index=True
    ),
    sa.Column("author_id", BigInt, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("mentions", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# The thread between staff and an applicant; an applicant's message may carry one file.
messages = sa.Table(
    "messages",
    metadata,
    _id(),
    sa.Column(
        "application_id", BigInt, sa.ForeignKey("applications.id"), nullable=False, index=True
    ),
    sa.Column("sender", sa.String(10), nullable=False),  # "staff" or "applicant"
    sa.Column("author_id", BigInt, sa.ForeignKey("users.id")),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("file_key", sa.String(64)),
    sa.Column("file_name", sa.String(255), nullable=False, server_default=""),
    sa.Column("file_type", sa.String(100), nullable=False, server_default=""),
    sa.Column("file_size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("read_at", UTCDateTime),  # when the other side first saw it
)

# Per-user API tokens for integrations: only a hash is stored; revoked tokens stay for the audit.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(),
    sa.Column("user_id", BigInt, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

applications = sa.Table(
    "applications",
    metadata,
    _id(),
    sa.Column("tracking_code", sa.String(20), nullable=False, unique=True),
    sa.Column("status", sa.String(40), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    # Moves with every change to the application or its documents (a transition, an upload,
    # a review), so what is made from them can be kept by (id, revision).
    sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
    sa.Column("business_name", sa.String(200), nullable=False),
    # Case-folded copy for substring search; kept by the repository, never by hand.
    sa.Column("search_name", sa.String(200), nullable=False),
    sa.Column("business_type", sa.String(40), nullable=False),
    sa.Column("registration_number", sa.String(50), nullable=False),
    sa.Column("tin", sa.String(20), nullable=False, index=True),
    sa.Column("email", sa.String(254), nullable=False, index=True),
    sa.Column("telephone", sa.String(20), nullable=False),
    sa.Column("region", sa.String(4), nullable=False, index=True),
    # Set while the application is in an active state, NULL otherwise: the unique constraints
    # are the duplicate guard (two NULLs never collide on SQLite or PostgreSQL).
    sa.Column("active_email", sa.String(254), unique=True),
    sa.Column("active_tin", sa.String(20), unique=True),
    sa.Column("details", JSON, nullable=False),
    sa.Column("assigned_reviewer_id", BigInt, sa.ForeignKey("users.id"), index=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("status_changed_at", UTCDateTime, nullable=False),
    sa.Index("ix_applications_status_changed", "status", "status_changed_at"),
    # The back office's default view of one status: newest first, without sorting the status.
    sa.Index("ix_applications_status_created", "status", "created_at", "id"),
    # A reviewer's longest-waiting open application (the dashboard's workload): a seek.
    sa.Index(
        "ix_applications_reviewer_status", "assigned_reviewer_id", "status", "status_changed_at"
    ),
    # "My queue" and "Unassigned", newest first: one reviewer's (or nobody's) rows in order.
    sa.Index("ix_applications_reviewer_created", "assigned_reviewer_id", "created_at", "id"),
)

application_commodities = sa.Table(
    "application_commodities",
    metadata,
    sa.Column("application_id", BigInt, sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("commodity", sa.String(100), primary_key=True, index=True),
)

status_changes = sa.Table(
    "status_changes",
    metadata,
    _id(),
    sa.Column(
        "application_id", BigInt, sa.ForeignKey("applications.id"), nullable=False, index=True
    ),
    sa.Column("from_status", sa.String(40)),
    sa.Column("to_status", sa.String(40), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("reason_code", sa.String(40), nullable=False, server_default=""),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("at", UTCDateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    _id(),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(254), nullable=False),
    sa.Column("action", sa.String(60), nullable=False, index=True),
    sa.Column("object_type", sa.String(40), nullable=False),
    sa.Column("object_id", sa.String(60), nullable=False),
    sa.Column("before", JSON, nullable=False),
    sa.Column("after", JSON, nullable=False),
    sa.Column("client_address", sa.String(64)),
    sa.Index("ix_audit_log_object", "object_type", "object_id"),
)

documents = sa.Table(
    "documents",
    metadata,
    _id(),
    sa.Column("application_id", BigInt, sa.ForeignKey("applications.id"), nullable=False),
    sa.Column("requirement_code", sa.String(60), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("original_name", sa.String(255), nullable=False),
    sa.Column("uploaded_at", UTCDateTime, nullable=False),
    sa.Column("uploaded_by", sa.String(254), nullable=False),
    sa.Column("review_status", sa.String(20), nullable=False),
    sa.Column("review_note", sa.Text, nullable=False, server_default=""),
    sa.Column("reviewed_by", BigInt, sa.ForeignKey("users.id")),
    sa.Column("reviewed_at", UTCDateTime),
    sa.Column("valid_until", UTCDateTime, index=True),
    sa.Column("renewal_step", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("application_id", "requirement_code", "version"),
)

document_requests = sa.Table(
    "document_requests",
    metadata,
    _id(),
    sa.Column(
        "application_id", BigInt, sa.ForeignKey("applications.id"), nullable=False, index=True
    ),
    sa.Column("requirement_codes", JSON, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("requested_by", BigInt, sa.ForeignKey("users.id")),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("fulfilled_at", UTCDateTime),
)

# Single-use links about an application that are not an account's (a withdrawal to confirm):
# only a hash of the token is stored.
application_tokens = sa.Table(
    "application_tokens",
    metadata,
    _id(),
    sa.Column(
        "application_id", BigInt, sa.ForeignKey("applications.id"), nullable=False, index=True
    ),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
)

# Files an applicant uploaded to a draft not yet submitted, by content key: an abandoned
# draft's files are deleted once they are older than GCX_DRAFT_FILE_HOURS.
draft_files = sa.Table(
    "draft_files",
    metadata,
    sa.Column("file_key", sa.String(64), primary_key=True),
    sa.Column("stored_at", UTCDateTime, nullable=False, index=True),
)

notifications = sa.Table(
    "notifications",
    metadata,
    _id(),
    sa.Column("type", sa.String(60), nullable=False, index=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("template", sa.String(100), nullable=False),
    sa.Column("context", JSON, nullable=False),
    sa.Column("dedupe_key", sa.String(255), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("provider_message_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("application_id", BigInt, sa.ForeignKey("applications.id"), index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
)

# Dashboard figures kept in the same transactions as the changes they count (DESIGN §5).
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("value", BigInt, nullable=False),
)

# One row per scheduled run slot: a second scheduler's insert fails and it skips the run.
# The pending deadline of each application in a status with a deadline policy (one row at
# most: written as it enters the status, deleted as it leaves). `step` counts the policy's
# steps done; `next_at` is when the next one is due (NULL once the last one is done).
deadlines = sa.Table(
    "deadlines",
    metadata,
    _id(),
    sa.Column(
        "application_id", BigInt, sa.ForeignKey("applications.id"), nullable=False, unique=True
    ),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("entered_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("step", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", UTCDateTime, index=True),
    sa.Index("ix_deadlines_status_due", "status", "due_at"),
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("run_key", sa.String(200), primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)

regions = sa.Table(
    "regions",
    metadata,
    sa.Column("code", sa.String(4), primary_key=True),
    sa.Column("name", sa.String(60), nullable=False),
)

commodities = sa.Table(
    "commodities",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("processed_food", sa.Boolean, nullable=False),
)
