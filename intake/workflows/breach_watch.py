"""The breach watch: at configured shares of a request's response goal (``[goal] warn_at``,
default 50 %, 80 % and 100 %), while no person has responded, a ``goal_warning`` and then a
``goal_breached`` event, each with a mail to whoever should act: the assignee, else the engineer
on call (the first of ``[rota]`` with an address), else the desk (``[goal] notify``); for
Severity 1 also an SMS to the engineer on call (the first of ``[rota]``).

The checks are scheduled for their instants (intake.jobs.jobs) and are idempotent: a check for a
share already recorded, for a clock that a severity change restarted, or for a request that was
answered or closed does nothing. Time comes in as ``now``, so tests choose the instants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.outbox.sms import SMS_CHANNEL
from intake.policy import Policy
from intake.requests.opening import add_event
from intake.store.models import OPEN_STATUSES, OutboxMessage, ServiceRequest, utcnow
from intake.workflows import alerts
from intake.workflows.config import WorkflowConfig
from intake.workflows.desk import Desk
from intake.workflows.goal import clock_start
from intake.workflows.outgoing import mail_to_staff

BREACH = 100  # percent: the goal itself
CATCH_UP_BATCH = 500

_clock: list[Callable[[], dt.datetime]] = [utcnow]


def now() -> dt.datetime:
    """The time the checks go by: the wall clock, or the one a test set."""
    return _clock[0]()


def set_clock(clock: Callable[[], dt.datetime]) -> None:
    """Let the checks go by ``clock`` (tests run them at the instants they choose)."""
    _clock[0] = clock


@dataclass(frozen=True)
class Check:
    """One look at a request's goal: at ``at``, ``share`` percent of it has passed on the
    clock that started at ``basis`` (seconds since 1970; it names the clock in job ids)."""

    request_id: int
    share: int
    basis: int
    at: dt.datetime


@dataclass(frozen=True)
class Recipient:
    address: str
    who: str  # in words, for the event: "alice (assignee)"


def clock_basis(request: ServiceRequest) -> int:
    return int(clock_start(request).timestamp())


def checks_for(request: ServiceRequest, policy: Policy, config: WorkflowConfig) -> list[Check]:
    """The checks of a request's current clock, earliest first."""
    start, basis = clock_start(request), clock_basis(request)
    return [
        Check(request.id, share, basis, policy.goal_instant(request.severity, start, share / 100))
        for share in config.warn_at
    ]


def check_goal(session: Session, desk: Desk, check: Check, now: dt.datetime) -> str | None:
    """Record the warning or the breach that ``check`` is for, once; returns the event type
    written, or None when there was nothing to do."""
    settings = desk.settings
    request = session.get(ServiceRequest, check.request_id, with_for_update=True)
    if request is None or not _watched(request, check, desk.policy, now):
        return None
    kind = "goal_breached" if check.share >= BREACH else "goal_warning"
    if kind == "goal_breached":
        request.goal_breached_at = now
    request.goal_warned_share = check.share
    recipient = notification_recipient(request, desk)
    notice = alerts.goal_alert(request, check.share, settings.public_url)
    session.add(mail_to_staff(settings, request, notice, recipient.address, purpose=kind))
    detail: dict[str, object] = {
        "share": check.share,
        "response_due_at": request.response_due_at.isoformat(),
        "notified": recipient.who,
    }
    if request.severity == 1 and desk.rota.engineers:
        on_call = desk.rota.engineers[0]
        text = alerts.goal_sms(request, check.share)
        session.add(_sms(request, on_call.phone, text, f"{kind}-{check.share}"))
        detail["paged"] = on_call.name
    add_event(session, request, kind, detail, at=now)
    return kind


def _sms(request: ServiceRequest, phone: str, text: str, kind: str) -> OutboxMessage:
    """A text to the engineer on call, sent like the rota's pages (intake.outbox.sms)."""
    return OutboxMessage(
        channel=SMS_CHANNEL,
        purpose=f"{kind}-sms",
        request_id=request.id,
        recipient=phone,
        payload=text.encode("utf-8"),
    )


def _watched(request: ServiceRequest, check: Check, policy: Policy, now: dt.datetime) -> bool:
    """Whether the check still applies: open, unanswered, the same clock, its instant come,
    and its share not recorded yet."""
    if request.status not in OPEN_STATUSES or request.goal_met_at is not None:
        return False
    if check.basis != clock_basis(request):
        return False  # the severity changed since: the new clock has checks of its own
    start = clock_start(request)
    if now < policy.goal_instant(request.severity, start, check.share / 100):
        return False
    if check.share >= BREACH:
        return request.goal_breached_at is None
    return request.goal_warned_share < check.share


def notification_recipient(request: ServiceRequest, desk: Desk) -> Recipient:
    """The assignee (with an address), else the engineer on call, else the desk."""
    assignee = request.assignee
    if assignee is not None and assignee.email:
        return Recipient(assignee.email, f"{assignee.username} (assignee)")
    on_call = next((e for e in desk.rota.engineers if e.email), None)
    if on_call is not None:
        return Recipient(on_call.email, f"{on_call.name} (on call)")
    address = desk.config.notify or desk.settings.ack_from
    return Recipient(address, f"{address} (support desk)")


def overdue_checks(
    session: Session, policy: Policy, config: WorkflowConfig, now: dt.datetime
) -> list[Check]:
    """For the periodic sweep: the latest passed, unrecorded check of each unanswered open
    request (scheduled checks that Redis lost); the breach alone when it has come."""
    requests = session.scalars(
        select(ServiceRequest)
        .where(
            ServiceRequest.goal_met_at.is_(None),
            ServiceRequest.status.in_(OPEN_STATUSES),
            ServiceRequest.goal_breached_at.is_(None),
        )
        .order_by(ServiceRequest.response_due_at)
        .limit(CATCH_UP_BATCH)
    ).all()
    overdue = []
    for request in requests:
        passed = [c for c in checks_for(request, policy, config) if c.at <= now]
        if passed and passed[-1].share > request.goal_warned_share:
            overdue.append(passed[-1])
    return overdue
