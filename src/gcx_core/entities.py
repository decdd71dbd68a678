"""Domain entities. Plain attrs classes: no framework, no storage; repositories map them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs


@attrs.frozen
class Business:
    name: str
    business_type: str
    registration_number: str
    tin: str
    address: str
    city: str
    region: str
    postal_code: str = ""
    country: str = "GH"


@attrs.frozen
class Contact:
    telephone: str
    email: str


@attrs.frozen
class TeamMember:
    full_name: str
    role: str
    telephone: str
    email: str = ""
    id_number: str = ""


@attrs.frozen
class NextOfKin:
    full_name: str
    relationship: str
    telephone: str
    address: str = ""


@attrs.frozen
class BankAccount:
    bank_name: str
    account_name: str
    account_number: str
    branch: str = ""


@attrs.frozen
class Declaration:
    agreed: bool
    data_consent: bool
    signer_name: str
    signer_designation: str
    signed_at: datetime


@attrs.frozen
class ApplicationDraft:
    """A validated submission that has no identity yet."""

    business: Business
    contact: Contact
    commodities: tuple[str, ...]
    warehouse_location: str
    team_members: tuple[TeamMember, ...]
    next_of_kin: NextOfKin
    primary_account: BankAccount
    declaration: Declaration
    secondary_account: BankAccount | None = None


@attrs.frozen
class Application:
    id: int
    tracking_code: str
    status: str
    version: int
    business: Business
    contact: Contact
    commodities: tuple[str, ...]
    warehouse_location: str
    team_members: tuple[TeamMember, ...]
    next_of_kin: NextOfKin
    primary_account: BankAccount
    declaration: Declaration
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    secondary_account: BankAccount | None = None
    assigned_reviewer_id: int | None = None


class Role(enum.StrEnum):
    VIEWER = "viewer"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    SUPPLIER = "supplier"


STAFF_ROLES = frozenset({Role.VIEWER, Role.REVIEWER, Role.ADMIN})

# What each role may do; transitions and pages name a permission, never a role.
ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.VIEWER: frozenset({"view"}),
    Role.REVIEWER: frozenset({"view", "review", "approve"}),
    Role.ADMIN: frozenset({"view", "review", "approve", "admin"}),
    Role.SUPPLIER: frozenset({"supplier"}),
}


@attrs.frozen
class User:
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime
    password_hash: str | None = attrs.field(default=None, repr=False)
    application_id: int | None = None
    failed_logins: int = 0
    locked_until: datetime | None = None

    def can(self, permission: str) -> bool:
        return self.is_active and permission in ROLE_PERMISSIONS[self.role]


class ActorKind(enum.StrEnum):
    APPLICANT = "applicant"
    STAFF = "staff"
    SUPPLIER = "supplier"
    SYSTEM = "system"


@attrs.frozen
class Actor:
    """Who is acting, and from where; passed to every service call that changes something."""

    kind: ActorKind
    user_id: int | None = None
    role: Role | None = None
    label: str = ""
    client_address: str | None = None

    @classmethod
    def applicant(cls, client_address: str | None = None) -> Actor:
        return cls(ActorKind.APPLICANT, label="applicant", client_address=client_address)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(ActorKind.SYSTEM, label=label)

    @classmethod
    def for_user(cls, user: User, client_address: str | None = None) -> Actor:
        kind = ActorKind.SUPPLIER if user.role is Role.SUPPLIER else ActorKind.STAFF
        return cls(kind, user.id, user.role, user.email, client_address)

    def can(self, permission: str) -> bool:
        if self.kind is ActorKind.SYSTEM:
            return True
        return self.role is not None and permission in ROLE_PERMISSIONS[self.role]


@attrs.frozen(cache_hash=True)  # a key of the status view's cache of missing items
class DocumentRequirement:
    code: str
    title: str
    description: str = ""
    required: bool = True
    max_bytes: int = 10 * 1024 * 1024
    content_types: tuple[str, ...] = ("application/pdf", "image/png", "image/jpeg")
    # Only for processed-food applicants (the FDA certificate); enforced at approval.
    processed_food_only: bool = False
    # How long an upload stays valid, in days from the upload (a tax clearance: 365); or,
    # with `expiry_date`, the uploader gives the date the document itself expires. Approved
    # suppliers are reminded to renew, and an expired required document flags them.
    validity_days: int | None = None
    expiry_date: bool = False

    @property
    def expires(self) -> bool:
        return self.expiry_date or bool(self.validity_days)


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


@attrs.frozen
class DocumentVersion:
    id: int
    application_id: int
    requirement_code: str
    version: int
    sha256: str
    size: int
    content_type: str
    original_name: str
    uploaded_at: datetime
    uploaded_by: str
    review_status: ReviewStatus = ReviewStatus.PENDING
    review_note: str = ""
    reviewed_by: int | None = None
    reviewed_at: datetime | None = None
    # Until when it is valid (requirements that expire), and how far its renewal has gone
    # (RENEWAL_* in services.renewals).
    valid_until: datetime | None = None
    renewal_step: int = 0


@attrs.frozen
class DocumentRequest:
    id: int
    application_id: int
    requirement_codes: tuple[str, ...]
    message: str
    requested_by: int | None
    requested_at: datetime
    fulfilled_at: datetime | None = None


@attrs.frozen
class StatusChange:
    id: int
    application_id: int
    from_status: str | None
    to_status: str
    action: str
    actor: str
    at: datetime
    reason_code: str = ""
    comment: str = ""


@attrs.frozen
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] = attrs.field(factory=dict)
    after: dict[str, Any] = attrs.field(factory=dict)
    client_address: str | None = None


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    DEAD = "dead"


@attrs.frozen
class NotificationDraft:
    """A message a transition wants sent; becomes an outbox row in the same transaction."""

    type: str
    recipient: str
    context: dict[str, Any] = attrs.field(factory=dict)
    channel: str = "email"
    template: str = ""

    @property
    def template_name(self) -> str:
        return self.template or self.type


@attrs.frozen
class Notification:
    id: int
    type: str
    channel: str
    recipient: str
    template: str
    context: dict[str, Any]
    dedupe_key: str
    status: NotificationStatus
    attempts: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    locked_until: datetime | None = None
    last_error: str = ""
    provider_message_id: str = ""
    sent_at: datetime | None = None
    application_id: int | None = None
