"""Delivery events, fired through `gcx_handle_event` once their outcome is committed."""

from __future__ import annotations

from datetime import datetime

import attrs


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
