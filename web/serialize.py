"""Model rows to the JSON shapes of the API. Times are ISO 8601 with their UTC offset.

The functions read relationships (customer, contact and its addresses, events); callers load
those eagerly, so serialising a page of requests costs no extra queries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from intake.senderauth import Verdict
from intake.store.models import (
    Contact,
    Customer,
    IntakeRecord,
    RequestEvent,
    ServiceRequest,
    format_request_number,
    utcnow,
)
from intake.workflows.goal import goal_of

Json = dict[str, Any]


def iso(moment: dt.datetime | None) -> str | None:
    """``2026-01-02T03:04:05+00:00``; the models hand back aware UTC datetimes."""
    return moment.isoformat() if moment is not None else None


def contact_json(contact: Contact) -> Json:
    return {"name": contact.name, "email": contact.primary_email, "phone": contact.phone}


def request_json(sr: ServiceRequest) -> Json:
    """A request as in the list view (without its events)."""
    return {
        "number": sr.number,
        "customer": sr.customer.name,
        "contact": contact_json(sr.contact),
        "channel": sr.channel,
        "severity": sr.severity,
        "initial_severity": sr.initial_severity,
        "status": sr.status,
        "subject": sr.subject,
        "description": sr.description,
        "created_at": iso(sr.created_at),
        "response_due_at": iso(sr.response_due_at),
        "acknowledged_at": iso(sr.acknowledged_at),
        "goal": goal_json(sr),
        "assignee": sr.assignee.username if sr.assignee is not None else None,
    }


def goal_json(sr: ServiceRequest, now: dt.datetime | None = None) -> Json:
    """The response goal: met by a person's response in time (never by the acknowledgment)."""
    goal = goal_of(sr, now or utcnow())
    return {"state": goal.state, "met_at": iso(goal.met_at)}


def request_detail_json(sr: ServiceRequest) -> Json:
    """A request with its events, oldest first (the single view), its escalation and whether
    Severity 1 lacks a contact available around the clock."""
    return request_json(sr) | {
        "escalation": {"level": sr.escalation_level, "owner": sr.escalation_owner},
        "needs_24x7_contact": sr.needs_24x7_contact,
        "events": [event_json(e) for e in sr.events],
    }


def event_json(event: RequestEvent) -> Json:
    return {"type": event.type, "at": iso(event.at), "detail": event.detail}


def intake_detail_json(record: IntakeRecord) -> Json:
    """One intake entry with its decision's detail and the verdict on its sender (``auth``:
    null where the sender was not checked, as for calls or with INTAKE_SENDER_AUTH off)."""
    auth = Verdict.from_json(record.auth).api_json() if record.auth else None
    return intake_json(record) | {"detail": record.detail, "state": record.state, "auth": auth}


def customer_json(customer: Customer, default_sender_auth: str) -> Json:
    """A customer; ``sender_auth`` is the mode its mail is checked under (its own where the
    import file set one, else INTAKE_SENDER_AUTH's)."""
    return {
        "name": customer.name,
        "offering": customer.offering,
        "support_start": customer.support_start.isoformat(),
        "support_end": customer.support_end.isoformat(),
        "sender_auth": customer.sender_auth or default_sender_auth,
        "sender_auth_override": bool(customer.sender_auth),
    }


def intake_json(record: IntakeRecord) -> Json:
    """One row of the intake log; ``reason`` is null where there is none (accepted mail)."""
    return {
        "id": record.id,
        "channel": record.channel,
        "sender": record.sender,
        "subject": record.subject,
        "outcome": record.outcome,
        "reason": record.reason or None,
        "received_at": iso(record.received_at),
        "request": format_request_number(record.request_id) if record.request_id else None,
    }
