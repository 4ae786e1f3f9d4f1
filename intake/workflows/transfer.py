"""A transfer of technical-contact duties (``intake contacts transfer OLD NEW``, ``POST
/api/contacts/transfer``): the new contact takes over the old one's open requests, and with them
their notifications; the old contact is deactivated, so its mail and calls are refused from
then on with a sentence naming the new one. The history (requests, events, the transfer) stays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.requests.opening import add_event
from intake.requests.refused import ActionRefused
from intake.store.models import (
    OPEN_STATUSES,
    Contact,
    ContactEmail,
    ContactTransfer,
    ServiceRequest,
    utcnow,
)


@dataclass(frozen=True)
class Transfer:
    from_address: str
    to_address: str
    to_name: str
    requests: tuple[str, ...]  # the open requests the new contact took over


def transfer_contact(
    session: Session,
    old_address: object,
    new_address: object,
    *,
    by: str,
    now: dt.datetime | None = None,
) -> Transfer:
    """Move the duties; doing it again changes nothing more."""
    now = now or utcnow()
    old = _contact(session, old_address, "from")
    new = _contact(session, new_address, "to")
    if old.id == new.id:
        raise ActionRefused("invalid", "same_contact", "A contact cannot take over from itself.")
    if old.customer_id != new.customer_id:
        raise ActionRefused(
            "invalid", "other_customer", "Both contacts must belong to the same customer."
        )
    if not new.active:
        raise ActionRefused(
            "conflict", "inactive_contact", f"{new.primary_email} is not an active contact."
        )
    moved = session.scalars(
        select(ServiceRequest)
        .where(ServiceRequest.contact_id == old.id, ServiceRequest.status.in_(OPEN_STATUSES))
        .order_by(ServiceRequest.id)
        .with_for_update()
    ).all()
    detail = {"from": old.primary_email, "to": new.primary_email, "by": by}
    for request in moved:
        request.contact_id = new.id
        add_event(session, request, "contact_transferred", detail, at=now)
    old.active = False
    if not _recorded(session, old.id, new.id):
        session.add(
            ContactTransfer(
                customer_id=new.customer_id,
                from_contact_id=old.id,
                to_contact_id=new.id,
                at=now,
                note=f"by {by}",
            )
        )
    return Transfer(
        str(old.primary_email), str(new.primary_email), new.name, tuple(r.number for r in moved)
    )


def _contact(session: Session, address: object, field: str) -> Contact:
    text = address.strip().lower() if isinstance(address, str) else ""
    if not text:
        raise ActionRefused("invalid", f"missing_{field}", f"Give the '{field}' address.")
    if not text.isprintable():  # NUL, control characters, lone surrogates: nobody's address
        raise ActionRefused(
            "not_found", "unknown_contact", f"No contact has the '{field}' address given."
        )
    contact = session.scalar(
        select(Contact)
        .join(ContactEmail, ContactEmail.contact_id == Contact.id)
        .where(ContactEmail.address == text)
        .with_for_update(of=Contact)
    )
    if contact is None:
        raise ActionRefused("not_found", "unknown_contact", f"No contact has the address {text}.")
    return contact


def _recorded(session: Session, old_id: int, new_id: int) -> bool:
    query = select(ContactTransfer.id).where(
        ContactTransfer.from_contact_id == old_id, ContactTransfer.to_contact_id == new_id
    )
    return session.scalar(query) is not None
