"""Domain events, fired through `gcx_handle_event` once their transaction has committed."""

from __future__ import annotations

from datetime import datetime

import attrs

from gcx_core.workflow import TransitionEvent


@attrs.frozen
class DocumentUploaded:
    application_id: int
    requirement_code: str
    document_id: int
    version: int
    at: datetime


@attrs.frozen
class DocumentReviewed:
    application_id: int
    requirement_code: str
    document_id: int
    review_status: str
    reviewer_id: int | None
    at: datetime


@attrs.frozen
class DocumentExpired:
    """The standing (latest verified) version of a supplier's document has expired."""

    application_id: int
    requirement_code: str
    document_id: int
    valid_until: datetime
    at: datetime


@attrs.frozen
class NotificationsQueued:
    """New outbox rows exist; a delivery engine should pick them up."""

    notification_ids: tuple[int, ...]
    at: datetime


@attrs.frozen
class CountersChanged:
    """Dashboard counters moved (a transition, a reconciliation, a notification state change)."""

    at: datetime


@attrs.frozen
class NotificationDelivery:
    """A notification moved to `sent`, `retrying` or `dead` (new rows fire NotificationsQueued)."""

    notification_id: int
    status: str
    attempts: int
    at: datetime
    error: str = ""
    application_id: int | None = None
    type: str = ""
    channel: str = ""


@attrs.frozen
class ApplicationAssigned:
    """An application's reviewer changed (taken, assigned, given back or unassigned)."""

    application_id: int
    reviewer_id: int | None
    previous_reviewer_id: int | None
    actor_id: int | None
    at: datetime


@attrs.frozen
class NoteAdded:
    """A member of staff wrote an internal note on an application."""

    application_id: int
    note_id: int
    author_id: int | None
    mentioned: tuple[int, ...]
    at: datetime


@attrs.frozen
class MessageSent:
    """A message in the thread between staff and an applicant (`sender` is who wrote it)."""

    application_id: int
    message_id: int
    sender: str
    at: datetime


@attrs.frozen
class UserChanged:
    user_id: int
    change: str
    at: datetime


Event = (
    TransitionEvent
    | DocumentUploaded
    | DocumentReviewed
    | NotificationsQueued
    | CountersChanged
    | NotificationDelivery
    | UserChanged
    | ApplicationAssigned
    | NoteAdded
    | MessageSent
)

__all__ = [
    "ApplicationAssigned",
    "CountersChanged",
    "DocumentReviewed",
    "DocumentUploaded",
    "Event",
    "MessageSent",
    "NoteAdded",
    "NotificationDelivery",
    "NotificationsQueued",
    "TransitionEvent",
    "UserChanged",
]
