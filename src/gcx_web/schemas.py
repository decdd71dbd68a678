"""Wire formats of the public API and the applicant's live channel (msgspec Structs).

Request fields default to empty so that one request reports every missing field at once (422
from the domain validator); wrong types and unknown fields are refused while decoding (400).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar.params import PathParameter

from gcx_core.entities import Application, DocumentVersion
from gcx_core.reference import REJECTION_REASONS
from gcx_core.services.applicant import ApplicantView, OutstandingItem
from gcx_core.services.queries import TimelineItem

Text = Annotated[str, msgspec.Meta(max_length=5000)]
# Row ids are 64-bit signed integers in both databases, far below this bound in practice; the
# bound is 2**53 so that it survives JSON's numbers exactly (2**63 - 1 is written as 2**63 by
# JSON encoders that go through a float, and clients would take 2**63 as valid).
MAX_ROW_ID = 2**53
RowId = Annotated[int, PathParameter(ge=1, le=MAX_ROW_ID, description="A row's id")]


class Input(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A request body: unknown fields are refused (and the OpenAPI schema says so)."""


class BusinessIn(Input):
    name: Text = ""
    business_type: Annotated[str, msgspec.Meta(description="e.g. limited_company")] = ""
    registration_number: Text = ""
    tin: Annotated[str, msgspec.Meta(description="Taxpayer identification number")] = ""
    address: Text = ""
    city: Text = ""
    region: Annotated[str, msgspec.Meta(description="Region code (AA) or name")] = ""
    postal_code: Text = ""
    country: Text = "GH"


class ContactIn(Input):
    telephone: Text = ""
    email: Text = ""


class TeamMemberIn(Input):
    full_name: Text = ""
    role: Text = ""
    telephone: Text = ""
    email: Text = ""
    id_number: Text = ""


class NextOfKinIn(Input):
    full_name: Text = ""
    relationship: Text = ""
    telephone: Text = ""
    address: Text = ""


class BankAccountIn(Input):
    bank_name: Text = ""
    account_name: Annotated[str, msgspec.Meta(description="Must match the business name")] = ""
    account_number: Text = ""
    branch: Text = ""


class BankAccountsIn(Input):
    primary: BankAccountIn | None = None
    secondary: BankAccountIn | None = None


class DeclarationIn(Input):
    agreed: bool = False
    data_consent: bool = False
    signer_name: Text = ""
    signer_designation: Text = ""


class ApplicationIn(Input):
    """A new application. Documents are uploaded afterwards, or in the same multipart request."""

    business: BusinessIn | None = None
    contact: ContactIn | None = None
    commodities: Annotated[
        list[Text], msgspec.Meta(description="Catalogue codes or free-text names")
    ] = []
    warehouse_location: Text = ""
    team_members: list[TeamMemberIn] = []
    next_of_kin: NextOfKinIn | None = None
    bank_accounts: BankAccountsIn | None = None
    declaration: DeclarationIn | None = None


def as_submission(data: ApplicationIn) -> dict[str, Any]:
    """The mapping the domain validator reads; absent sections become empty objects."""
    out: dict[str, Any] = msgspec.to_builtins(data)
    for key in ("business", "contact", "next_of_kin", "declaration"):
        out.setdefault(key, {})
    accounts = out.setdefault("bank_accounts", {})
    accounts.setdefault("primary", {})
    out.setdefault("commodities", [])
    out.setdefault("team_members", [])
    return out


class DocumentOut(msgspec.Struct):
    requirement: str
    version: int
    name: str
    review_status: str
    valid_until: Annotated[
        datetime | None,
        msgspec.Meta(description="When this version stops being valid (documents that expire)"),
    ] = None


class SubmittedOut(msgspec.Struct):
    tracking_code: str
    status: str
    status_url: str
    submitted_at: datetime
    documents: list[DocumentOut] = []


def submitted_out(app: Application, docs: list[DocumentVersion]) -> SubmittedOut:
    return SubmittedOut(
        tracking_code=app.tracking_code,
        status=app.status,
        status_url=f"/api/v1/applications/{app.tracking_code}",
        submitted_at=app.created_at,
        documents=[
            DocumentOut(d.requirement_code, d.version, d.original_name, str(d.review_status))
            for d in docs
        ],
    )


class TimelineEntry(msgspec.Struct):
    at: datetime
    kind: str
    title: str
    detail: str = ""


class OutstandingOut(msgspec.Struct, frozen=True):  # frozen: one instance may serve many
    requirement: str
    title: str
    reason: str
    description: str = ""
    note: str = ""
    max_bytes: int = 0
    content_types: list[str] = []
    # The upload needs the document's own expiry date (`valid_until`).
    expiry_date: bool = False


class StatusOut(msgspec.Struct):
    """What an applicant may know about their application."""

    tracking_code: str
    status: str
    status_label: str
    status_text: str
    business_name: str
    submitted_at: datetime
    updated_at: datetime
    version: int
    outstanding: list[OutstandingOut]
    request_message: str
    can_withdraw: bool
    can_resubmit: bool
    accepts_uploads: bool
    timeline: list[TimelineEntry]
    due_at: Annotated[
        datetime | None,
        msgspec.Meta(description="What is asked (the documents) must arrive by this time"),
    ] = None


class OutstandingList(msgspec.Struct):
    tracking_code: str
    status: str
    message: str
    items: list[OutstandingOut]


class WithdrawIn(Input):
    confirm: Annotated[bool, msgspec.Meta(description="Must be true")] = False
    comment: Text = ""


class WithdrawConfirmIn(Input):
    token: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=200,
            description="The token of the link emailed to the applicant",
        ),
    ]


class WithdrawalRequestedOut(msgspec.Struct):
    tracking_code: str
    message: str


def describe_timeline(
    item: TimelineItem, requirement_titles: dict[str, str], labels: dict[str, str]
) -> TimelineEntry:
    data = item.data
    if item.kind == "status_change":
        to = labels.get(data["to"], data["to"])
        title = "Application submitted" if data["action"] == "submit" else f"Status: {to}"
        detail = ""
        if data.get("reason_code"):
            detail = REJECTION_REASONS.get(data["reason_code"], data["reason_code"])
        return TimelineEntry(item.at, item.kind, title, detail)
    if item.kind == "document_request":
        names = ", ".join(requirement_titles.get(c, c) for c in data["requirements"])
        return TimelineEntry(
            item.at, item.kind, "Documents requested", f"{names}. {data['message']}".strip()
        )
    if item.kind == "document":
        title = requirement_titles.get(data["requirement"], data["requirement"])
        detail = f"version {data['version']}: {data['name']} ({data['review_status']})"
        if data.get("review_note"):
            detail += f" - {data['review_note']}"
        return TimelineEntry(item.at, item.kind, f"Uploaded {title}", detail)
    return TimelineEntry(item.at, item.kind, item.kind.replace("_", " ").capitalize())


def status_out(view: ApplicantView, titles: dict[str, str], labels: dict[str, str]) -> StatusOut:
    app = view.application
    return StatusOut(
        tracking_code=app.tracking_code,
        status=app.status,
        status_label=view.state.label,
        status_text=view.state.public_label or view.state.label,
        business_name=app.business.name,
        submitted_at=app.created_at,
        updated_at=app.updated_at,
        version=app.version,
        outstanding=[outstanding_out(o) for o in view.outstanding],
        request_message=view.request_message,
        can_withdraw=view.can_withdraw,
        can_resubmit=view.can_resubmit,
        accepts_uploads=view.accepts_uploads,
        timeline=[describe_timeline(i, titles, labels) for i in view.timeline],
        due_at=view.due_at,
    )


class StatusViews:
    """Each applicant view's StatusOut, made once per view object.

    gcx_core hands out the same view while an application's revision stands, so a status
    looked up again is answered with the StatusOut made the first time. Views are found by
    identity: a kept entry holds its view, so no other view can take its id.
    """

    def __init__(self, titles: dict[str, str], labels: dict[str, str], size: int = 1024) -> None:
        self.titles = titles
        self.labels = labels
        self.size = size
        self._made: OrderedDict[int, tuple[ApplicantView, StatusOut]] = OrderedDict()

    def __call__(self, view: ApplicantView) -> StatusOut:
        found = self._made.get(id(view))
        if found is not None and found[0] is view:
            return found[1]
        out = status_out(view, self.titles, self.labels)
        self._made[id(view)] = (view, out)
        if len(self._made) > self.size:
            self._made.popitem(last=False)
        return out


def outstanding_out(item: OutstandingItem) -> OutstandingOut:
    if item.reason == "missing":  # the same for every application: converted once
        return _missing_out(item)
    return _outstanding_out(item)


def _outstanding_out(item: OutstandingItem) -> OutstandingOut:
    r = item.requirement
    return OutstandingOut(
        requirement=r.code,
        title=r.title,
        reason=item.reason,
        description=r.description,
        note=item.note,
        max_bytes=r.max_bytes,
        content_types=list(r.content_types),
        expiry_date=r.expiry_date,
    )


# Frozen, one instance serves every application that lacks the document.
_missing_out = functools.lru_cache(maxsize=1024)(_outstanding_out)


class StatusFigureOut(msgspec.Struct):
    status: str
    label: str
    count: int
    percent: float


class RecentOut(msgspec.Struct):
    id: int
    tracking_code: str
    business_name: str
    status: str
    status_label: str
    created_at: datetime


class DayOut(msgspec.Struct):
    day: str
    count: int


class DashboardOut(msgspec.Struct):
    total: int
    statuses: list[StatusFigureOut]
    recent: list[RecentOut]
    notifications: dict[str, int]
    per_day: list[DayOut]
    oldest_waiting: dict[str, datetime | None]
    at: datetime
    unassigned: int = 0
    workload: dict[str, int] = {}
    workload_oldest: dict[str, datetime | None] = {}
    unread_messages: int = 0
    overdue: dict[str, int] = {}
    ageing: dict[str, dict[str, int]] = {}
    expired_documents: int = 0


def dashboard_out(snap: Any) -> DashboardOut:
    labels = {s.status: s.label for s in snap.statuses}
    return DashboardOut(
        total=snap.total,
        statuses=[StatusFigureOut(s.status, s.label, s.count, s.percent) for s in snap.statuses],
        recent=[
            RecentOut(
                r.id,
                r.tracking_code,
                r.business_name,
                r.status,
                labels.get(r.status, r.status),
                r.created_at,
            )
            for r in snap.recent
        ],
        notifications=dict(snap.notifications),
        per_day=[DayOut(d.isoformat(), n) for d, n in snap.per_day],
        oldest_waiting=dict(snap.oldest_waiting),
        at=snap.at,
        unassigned=snap.unassigned,
        workload={str(k): v for k, v in snap.workload.items()},
        workload_oldest={str(k): v for k, v in snap.workload_oldest.items()},
        unread_messages=snap.unread_messages,
        overdue=dict(snap.overdue),
        ageing={k: dict(v) for k, v in snap.ageing.items()},
        expired_documents=snap.expired_documents,
    )
