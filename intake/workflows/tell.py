"""Telling the contact what staff did: a severity change (with its justification), an
assignment and a resolution each put a short mail in the outbox, when ``[notices]`` has that
kind on. The staff pages and the API call these instead of intake.workflows.staff_actions
directly."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from intake.policy import Policy
from intake.settings import Settings
from intake.store.models import ServiceRequest, utcnow
from intake.workflows import notices, staff_actions
from intake.workflows.around_the_clock import flag_missing_24x7_contact
from intake.workflows.config import WorkflowConfig
from intake.workflows.notices import Notice
from intake.workflows.outgoing import mail_to_contact


def tell_contact(
    session: Session,
    settings: Settings,
    config: WorkflowConfig,
    request: ServiceRequest,
    *,
    kind: str,
    notice: Notice,
) -> None:
    """Put the notice of ``kind`` in the outbox, unless that kind is switched off."""
    if not config.notice_on(kind):
        return
    row = mail_to_contact(settings, request, notice, purpose=f"notice_{kind}")
    if row is not None:
        session.add(row)


def change_severity(
    session: Session,
    settings: Settings,
    policy: Policy,
    config: WorkflowConfig,
    request_id: int,
    *,
    severity: int,
    justification: str,
    by: str,
    now: dt.datetime | None = None,
) -> ServiceRequest:
    previous = staff_actions.request_for_update(session, request_id).severity
    request = staff_actions.change_severity(
        session, policy, request_id, severity=severity, justification=justification, by=by, now=now
    )
    flag_missing_24x7_contact(session, request)
    notice = notices.severity_changed(
        request, previous, policy.level(request.severity), justification.strip()
    )
    tell_contact(session, settings, config, request, kind="severity_changed", notice=notice)
    return request


def assign(
    session: Session,
    settings: Settings,
    config: WorkflowConfig,
    request_id: int,
    *,
    assignee: str,
    by: str,
    now: dt.datetime | None = None,
) -> ServiceRequest:
    request = staff_actions.assign(
        session, request_id, assignee=assignee, by=by, now=now or utcnow(), config=config
    )
    notice = notices.assigned(request, assignee.strip())
    tell_contact(session, settings, config, request, kind="assigned", notice=notice)
    return request


def resolve(
    session: Session,
    settings: Settings,
    config: WorkflowConfig,
    request_id: int,
    *,
    note: str,
    by: str,
    now: dt.datetime | None = None,
) -> ServiceRequest:
    request = staff_actions.resolve(session, request_id, note=note, by=by, now=now)
    notice = notices.resolved(request, note.strip())
    tell_contact(session, settings, config, request, kind="resolved", notice=notice)
    return request
