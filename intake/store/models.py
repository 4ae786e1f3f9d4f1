"""The data model: customers, contacts, service requests and their events, the intake log,
the outbox, staff users and API tokens. Every timestamp is timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    InstrumentedAttribute,
    Mapped,
    mapped_column,
    relationship,
)

# SQLite has no 64-bit identity type of its own; INTEGER PRIMARY KEY is its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

REQUEST_NUMBER_DIGITS = 6
MAX_REQUEST_NUMBER_DIGITS = 18  # ids are 64-bit keys


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware datetimes as UTC and always gives them back aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    offering: Mapped[str] = mapped_column(String(50))
    support_start: Mapped[dt.date] = mapped_column(Date)
    support_end: Mapped[dt.date] = mapped_column(Date)
    # This customer's own INTAKE_SENDER_AUTH (enforce, monitor or off); empty: the setting's.
    sender_auth: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(back_populates="customer")

    def supported_on(self, day: dt.date) -> bool:
        return self.support_start <= day <= self.support_end


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # "technical" or "end_user"
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    pin_failures: Mapped[int] = mapped_column(default=0)
    pin_locked_until: Mapped[dt.datetime | None]
    pin_locks: Mapped[int] = mapped_column(default=0)  # locks in a row: each lasts longer
    available_24x7: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="contacts")
    emails: Mapped[list[ContactEmail]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactEmail.id"
    )

    @property
    def primary_email(self) -> str | None:
        return self.emails[0].address if self.emails else None


class ContactEmail(Base):
    """One email address of a contact; an address belongs to one contact only."""

    __tablename__ = "contact_emails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case

    contact: Mapped[Contact] = relationship(back_populates="emails")


class ContactTransfer(Base):
    """A recorded hand-over of technical-contact duties from one contact to another."""

    __tablename__ = "contact_transfers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    from_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    to_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


# Statuses a follow-up brings back to work: the request reopens (intake log reason `reopened`).
REOPENABLE = ("resolved", "closed")
# Statuses in which a request is still open (the dashboard's counts have an index of their own).
OPEN_STATUSES = ("new", "acknowledged", "in_progress")
# The same as literal SQL: the planners use a partial index only for a query that states its
# condition in these very words (a bound parameter proves nothing to them).
OPEN_STATUS_SQL = text(f"status IN ({', '.join(repr(status) for status in OPEN_STATUSES)})")


class ServiceRequest(Base):
    """A service request; its number is ``SR-`` and the zero-padded id (the id's sequence)."""

    __tablename__ = "service_requests"
    __table_args__ = (
        Index("ix_service_requests_created", "created_at", "id"),
        Index("ix_service_requests_status_created", "status", "created_at", "id"),
        Index("ix_service_requests_customer_created", "customer_id", "created_at", "id"),
        Index("ix_service_requests_open_due", "status", "response_due_at"),
        # Requests still waiting for their acknowledgment, soonest due first (dashboard, breaches).
        Index("ix_service_requests_awaiting_ack", "acknowledged_at", "response_due_at"),
        # Open requests counted per severity without reading the table (dashboard, /metrics).
        Index("ix_service_requests_status_severity", "status", "severity"),
        # Open requests whose response goal is not met yet, soonest due first (breach watch).
        Index("ix_service_requests_goal_open", "goal_met_at", "status", "response_due_at"),
        # The open requests alone (a few in a hundred), with all the dashboard counts of them:
        # open, waiting for their acknowledgment and breached, per severity, without the table.
        Index(
            "ix_service_requests_open_counts",
            "severity",
            "acknowledged_at",
            "goal_met_at",
            "response_due_at",
            postgresql_where=OPEN_STATUS_SQL,
            sqlite_where=OPEN_STATUS_SQL,
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # "email", "phone" or "web"
    severity: Mapped[int]
    initial_severity: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="new")
    subject: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    response_due_at: Mapped[dt.datetime]
    acknowledged_at: Mapped[dt.datetime | None]
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # The response goal (see intake.workflows.goal): its clock starts at receipt or at the last
    # severity change; a person's assignment and first reply or status report meet it.
    goal_started_at: Mapped[dt.datetime | None]  # None: at created_at
    assigned_at: Mapped[dt.datetime | None]  # the first assignment
    first_response_at: Mapped[dt.datetime | None]  # the first reply or status report sent
    goal_met_at: Mapped[dt.datetime | None]
    goal_warned_share: Mapped[int] = mapped_column(default=0)  # percent, under this clock
    goal_breached_at: Mapped[dt.datetime | None]
    status_reported_at: Mapped[dt.datetime | None]  # the latest status report
    report_reminded_at: Mapped[dt.datetime | None]  # the latest reminder that one is due
    escalation_level: Mapped[int] = mapped_column(default=0)  # 0: not escalated
    escalation_owner: Mapped[str | None] = mapped_column(String(200))  # the manager's name
    needs_24x7_contact: Mapped[bool] = mapped_column(Boolean, default=False)

    customer: Mapped[Customer] = relationship()
    contact: Mapped[Contact] = relationship()
    assignee: Mapped[StaffUser | None] = relationship()
    events: Mapped[list[RequestEvent]] = relationship(
        back_populates="request", order_by="RequestEvent.id"
    )

    @property
    def number(self) -> str:
        return format_request_number(self.id)


def format_request_number(request_id: int) -> str:
    return f"SR-{request_id:0{REQUEST_NUMBER_DIGITS}d}"


def parse_request_number(number: str) -> int | None:
    """The id behind ``SR-000123``, or None when the text is not a request number."""
    prefix, _, digits = number.strip().upper().partition("-")
    if prefix != "SR" or not REQUEST_NUMBER_DIGITS <= len(digits) <= MAX_REQUEST_NUMBER_DIGITS:
        return None
    # ASCII only: str.isdigit() also takes '²' (which int() refuses) and other scripts' digits.
    return int(digits) if digits.isascii() and digits.isdigit() else None


class RequestEvent(Base):
    __tablename__ = "request_events"
    # Events of one type over time (/metrics counts the breach watch's warnings and breaches).
    __table_args__ = (Index("ix_request_events_type_at", "type", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    type: Mapped[str] = mapped_column(String(30))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    request: Mapped[ServiceRequest] = relationship(back_populates="events")


class SeverityRequest(Base):
    """A contact's request for another severity, with the justification; staff accept or refuse
    it (``state``: ``pending``, ``accepted``, ``refused``)."""

    __tablename__ = "severity_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    severity: Mapped[int]
    previous_severity: Mapped[int]
    justification: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="pending")
    note: Mapped[str] = mapped_column(Text, default="")  # why refused, or staff's remark
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None]


class IntakeRecord(Base):
    """The intake log: one row for every inbound item, whatever became of it, with its raw copy.

    ``state`` tracks the work left after the reply: ``pending`` rows still need their request
    opened (or their follow-up appended) by a worker; ``done`` rows need nothing more.
    """

    __tablename__ = "intake_log"
    __table_args__ = (
        Index("ix_intake_log_received", "received_at", "id"),
        Index("ix_intake_log_outcome", "outcome", "received_at"),
        Index("ix_intake_log_state", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sender: Mapped[str] = mapped_column(String(320), default="")
    recipients: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(998), default="")
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(50), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(10), default="done")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    # Declared for the unit of work: a batch that opens requests and points its rows at them
    # in one flush writes the requests first. Code reads and sets request_id.
    request: Mapped[ServiceRequest | None] = relationship(lazy="raise")
    size: Mapped[int] = mapped_column(default=0)  # of the whole item as received
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # a refused mail: a prefix only
    # Whether the sender was verified (a mail's DMARC verdict, a caller's PIN or attestation).
    sender_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # The verdict on a mail's sender (intake.senderauth.Verdict.as_json); None: not checked.
    auth: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# Search (PostgreSQL only: SQLite reads these columns with LIKE, which needs no index).
# Partial names and addresses are found with trigram indexes on the lower-cased text (pg_trgm
# serves LIKE '%...%'); words of a request's or a message's text with full-text indexes. The
# queries (web.search) use these very expressions, which is what lets the planner use them.
# The configuration is "simple" (no language's stemming: mail comes in many languages). Every
# constant is a text clause, not a literal column: an Index finds its table by the first
# column it meets. Each document is a concatenation of two vectors, a form PostgreSQL stores
# as written, so that alembic's comparison of the models with the database sees no change.
SEARCH_CONFIG = text("'simple'::regconfig")


def request_text_vector(
    subject: ColumnElement[str] | InstrumentedAttribute[str] = ServiceRequest.subject,
    description: ColumnElement[str] | InstrumentedAttribute[str] = ServiceRequest.description,
) -> ColumnElement[Any]:
    """The words of a request: its subject and description (the columns of ServiceRequest, or
    of a subquery that selects them)."""
    return _words(subject).op("||")(_words(description))


def message_text_vector() -> ColumnElement[Any]:
    """The words of a follow-up message (a ``message`` event): its subject and full text."""

    def field(name: str) -> ColumnElement[Any]:
        value = RequestEvent.detail.op("->>", return_type=Text)(text(f"'{name}'"))
        return func.coalesce(value, text("''"))

    return _words(field("subject")).op("||")(_words(field("full_text")))


def _words(column: Any) -> ColumnElement[Any]:
    return func.to_tsvector(SEARCH_CONFIG, column)


def _trigram_index(name: str, column: Any) -> Index:
    lowered = func.lower(column).label("lowered")
    return Index(
        name, lowered, postgresql_using="gin", postgresql_ops={"lowered": "gin_trgm_ops"}
    ).ddl_if(dialect="postgresql")


SEARCH_INDEXES = (
    _trigram_index("ix_customers_name_trgm", Customer.name),
    _trigram_index("ix_contacts_name_trgm", Contact.name),
    _trigram_index("ix_contact_emails_address_trgm", ContactEmail.address),
    _trigram_index("ix_intake_log_sender_trgm", IntakeRecord.sender),
    Index("ix_service_requests_text", request_text_vector(), postgresql_using="gin").ddl_if(
        dialect="postgresql"
    ),
    Index(
        "ix_request_events_message_text",
        message_text_vector(),
        postgresql_using="gin",
        postgresql_where=RequestEvent.type == text("'message'"),
    ).ddl_if(dialect="postgresql"),
)


class OutboxMessage(Base):
    """Something to send (an acknowledgment mail, an SMS), written in the transaction that
    caused it and marked sent once the relay accepted it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("purpose", "request_id", "intake_id", "channel", name="uq_outbox_purpose"),
        Index("ix_outbox_unsent", "sent_at", "created_at"),
        # The acknowledgments one address got lately (the per-address rate limit counts them):
        # every condition of the count but the sender's kind, the window last.
        Index("ix_outbox_ack_window", "recipient", "purpose", "channel", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), default="email")  # "email" or "sms"
    purpose: Mapped[str] = mapped_column(String(30))  # "acknowledgment", ...
    request_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    request: Mapped[ServiceRequest | None] = relationship(lazy="raise")  # see IntakeRecord
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_log.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(998), default="")
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the whole message, ready to send
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class StaffUser(Base):
    """A staff login of the status pages; the first one added is an administrator."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))  # where notifications go
    password_hash: Mapped[str] = mapped_column(String(300))
    failed_logins: Mapped[int] = mapped_column(default=0)  # within the window below
    failures_since: Mapped[dt.datetime | None]  # the first counted failure of the window
    locked_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Raised by sign-out, a password reset or disabling: every older session cookie stops working.
    session_version: Mapped[int] = mapped_column(default=1)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class CallSession(Base):
    """One phone call through the IVR, keyed by Twilio's CallSid (see :mod:`voice.calls`).

    ``state`` is where the caller is in the menus and ``step`` counts the answers taken, so a
    webhook Twilio retries is told apart from a new answer; ``last_answer`` is the TwiML given
    for ``last_request_key``, repeated for such a retry. The rest is what the caller told us and
    what became of the call: its intake-log row and, once opened, its request.
    """

    __tablename__ = "call_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(20))
    step: Mapped[int] = mapped_column(default=0)
    notice: Mapped[str] = mapped_column(Text, default="")  # said before the state's prompt
    caller: Mapped[str] = mapped_column(String(64), default="")  # From, as Twilio sent it
    attestation: Mapped[str] = mapped_column(String(40), default="")  # Twilio's StirVerstat
    entered_phone: Mapped[str] = mapped_column(String(20), default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    identified_by: Mapped[str] = mapped_column(String(10), default="")  # caller_id or pin
    # Where the call goes once the PIN confirms a caller ID that was not attested (status, Sev 1).
    after_pin: Mapped[str] = mapped_column(String(20), default="")
    pin_attempts: Mapped[int] = mapped_column(default=0)
    prompt_attempts: Mapped[int] = mapped_column(default=0)  # unclear answers to this prompt
    category: Mapped[str | None] = mapped_column(String(20))
    severity: Mapped[int | None]
    proposed_severity: Mapped[int | None]  # heard, waiting for the caller's confirmation
    status_lookups: Mapped[int] = mapped_column(default=0)
    record_attempts: Mapped[int] = mapped_column(default=0)
    recording_url: Mapped[str] = mapped_column(Text, default="")
    recording_sid: Mapped[str] = mapped_column(String(64), default="")
    recording_duration: Mapped[int | None]
    voicemail_attached: Mapped[bool] = mapped_column(Boolean, default=False)
    transcription: Mapped[str | None] = mapped_column(Text)
    transcribed_sid: Mapped[str] = mapped_column(String(64), default="")  # its recording's sid
    transcription_attached: Mapped[bool] = mapped_column(Boolean, default=False)
    rota_index: Mapped[int] = mapped_column(default=0)  # the engineer being rung
    accepted_by: Mapped[int | None]  # rota index of the engineer who pressed 1
    paged_at: Mapped[dt.datetime | None]
    reason: Mapped[str] = mapped_column(String(50), default="")  # why the call was refused
    call_status: Mapped[str] = mapped_column(String(20), default="")  # Twilio's CallStatus
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_log.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    last_request_key: Mapped[str] = mapped_column(String(64), default="")
    last_answer: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ended_at: Mapped[dt.datetime | None]


class IntakeAttachment(Base):
    """A file attached to an inbound mail: its safe name, declared type, size and bytes.

    ``data`` is None when the file was over the caps (see :mod:`intake.mail.attachments`): the row
    still says it was there. The raw message in the intake log holds every byte regardless.
    """

    __tablename__ = "intake_attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_log.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)  # its place among the message's files
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text, default="")  # why the bytes were not kept


class UndeliverableAddress(Base):
    """An address our mail bounced from: no acknowledgment goes to it until ``until``."""

    __tablename__ = "undeliverable_addresses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)  # lower-case
    until: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(Text, default="")  # the bounce's status, in words
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_log.id"))  # the bounce
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PinFailure(Base):
    """One wrong PIN typed on the phone: the hourly budgets count these (see voice.callers)."""

    __tablename__ = "pin_failures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    caller: Mapped[str] = mapped_column(String(64), index=True)  # the calling number, as shown
    entered_phone: Mapped[str] = mapped_column(String(20), default="")


class PinLockout(Base):
    """PIN entry refused for a while: for one calling number, or for every caller (``scope``
    ``*``) when wrong PINs from everywhere used up the global budget."""

    __tablename__ = "pin_lockouts"
    __table_args__ = (Index("ix_pin_lockouts_scope_until", "scope", "until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))  # a calling number, or "*" for everyone
    level: Mapped[int] = mapped_column(default=1)  # the how-many-th lock in a row: its length
    failures: Mapped[int] = mapped_column(default=0)  # wrong PINs within the hour that set it
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    until: Mapped[dt.datetime]
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_log.id"))  # staff's row


class ImapMailboxState(Base):
    """How far the IMAP door got in one mailbox, who polls it, and how its last polls went.

    ``last_uid`` is the highest UID whose message is committed to the intake log, under
    ``uidvalidity``; a new UIDVALIDITY starts the mailbox again from 0 (dedupe keeps the
    rescan from repeating anything). ``holder`` owns the lease until ``lease_until``: one
    poller per mailbox, whichever host it runs on, and another takes over once it expires.
    """

    __tablename__ = "imap_mailboxes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(300), unique=True)  # user@host:port/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    holder: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[dt.datetime | None]
    last_poll_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    last_error_at: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    messages: Mapped[int] = mapped_column(BigInteger, default=0)  # recorded since the start


class ImapFailure(Base):
    """A message of a mailbox that failed to be recorded: tried again until ``attempts``
    reaches the limit, then moved to the quarantine folder."""

    __tablename__ = "imap_failures"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_imap_failures"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(300))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PortalLink(Base):
    """A one-time sign-in link to the contacts' portal, mailed to a registered address.

    Only hashes are kept: of the token in the link, and of the nonce the asking browser holds
    in a cookie (the link signs in that browser only). ``client`` is who asked (an IP address),
    for the per-client rate limit; ``contact_id`` is None for an address nobody registered,
    whose request is kept only to be counted.
    """

    __tablename__ = "portal_links"
    __table_args__ = (
        Index("ix_portal_links_address_created", "address", "created_at"),
        Index("ix_portal_links_client_created", "client", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce_hash: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(320))  # lower-case, as asked
    client: Mapped[str] = mapped_column(String(64), default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class PortalSession(Base):
    """A browser signed in to the contacts' portal; its cookie holds the token, this row its
    hash. Signing out (or the end of its lifetime) ends it."""

    __tablename__ = "portal_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
