"""Staff writing on a request: a reply or a status report goes to the contact through the outbox
(threaded into the request's conversation) and counts as the first response toward the goal; an
internal note stays on the timeline and never leaves."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from intake.requests.opening import add_event
from intake.requests.refused import ActionRefused
from intake.settings import Settings
from intake.store.models import RequestEvent, utcnow
from intake.workflows import goal, notices
from intake.workflows.config import WorkflowConfig
from intake.workflows.outgoing import mail_to_contact
from intake.workflows.staff_actions import request_for_update, required_text

REPLY_KINDS = ("reply", "status_report", "internal_note")


def post_reply(
    session: Session,
    settings: Settings,
    config: WorkflowConfig,
    request_id: int,
    *,
    body: object,
    kind: object,
    by: str,
    now: dt.datetime | None = None,
) -> RequestEvent:
    """Write the reply, report or note as an event; the first two also to the contact."""
    now = now or utcnow()
    request = request_for_update(session, request_id)
    text = required_text(body, "body")
    if kind not in REPLY_KINDS:
        choices = ", ".join(REPLY_KINDS)
        raise ActionRefused("invalid", "invalid_kind", f"The kind must be one of {choices}.")
    if request.status == "closed":
        raise ActionRefused("conflict", "closed", f"{request.number} is closed.")
    detail: dict[str, object] = {"text": text, "by": by}
    if kind == "internal_note":
        return add_event(session, request, "internal_note", detail, at=now)
    notice = notices.reply(request, text, by) if kind == "reply" else None
    notice = notice or notices.status_report(request, text, by)
    row = mail_to_contact(settings, request, notice, purpose=str(kind))
    if row is not None:
        session.add(row)
        detail["to"] = row.recipient
    event = add_event(session, request, str(kind), detail, at=now)
    if kind == "status_report":
        request.status_reported_at = now
    goal.note_first_response(session, request, config, now)
    return event
