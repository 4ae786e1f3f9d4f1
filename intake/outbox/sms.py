"""Text messages the phone door sends, as outbox rows: the caller's acknowledgment and the page
to the on-call engineers when nobody answered a Severity 1 call.

The rows are sent like mail, by the outbox job, through the sender registered for "sms" (the
Twilio Messages API, see ``voice.sms_sender``); the payload is the text in UTF-8.
"""

from __future__ import annotations

import datetime as dt

from intake.outbox.links import status_url
from intake.policy import SeverityLevel
from intake.rota import Engineer
from intake.settings import Settings
from intake.store.models import OutboxMessage, ServiceRequest

SMS_CHANNEL = "sms"


def acknowledgment_text(number: str, level: SeverityLevel, due_at: dt.datetime, link: str) -> str:
    due = due_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Support desk: your request {number} is registered, Severity {level.number} "
        f"({level.name}). Response due by {due}. Status: {link}"
    )


def acknowledgment_sms(
    settings: Settings, level: SeverityLevel, request: ServiceRequest, phone: str, intake_id: int
) -> OutboxMessage:
    """The SMS acknowledgment of a phoned-in request, to the contact's registered number."""
    link = status_url(settings.public_url, settings.secret_key, request.number)
    text = acknowledgment_text(request.number, level, request.response_due_at, link)
    return OutboxMessage(
        channel=SMS_CHANNEL,
        purpose="acknowledgment",
        request_id=request.id,
        intake_id=intake_id,
        recipient=phone,
        payload=text.encode("utf-8"),
    )


def page_text(number: str, caller: str, customer: str, phone: str) -> str:
    return (
        f"SEV1 {number}: {caller} of {customer} called and no engineer on call answered. "
        f"Call back on {phone}."
    )


def page_sms(
    engineers: tuple[Engineer, ...], text: str, request_id: int | None, intake_id: int | None
) -> list[OutboxMessage]:
    """One page per engineer; each has a purpose of its own, so the outbox keeps them apart."""
    return [
        OutboxMessage(
            channel=SMS_CHANNEL,
            purpose=f"page-{index}",
            request_id=request_id,
            intake_id=intake_id,
            recipient=engineer.phone,
            payload=text.encode("utf-8"),
        )
        for index, engineer in enumerate(engineers)
    ]
