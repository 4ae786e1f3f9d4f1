"""Severity 1 needs a contact available around the clock. A Severity 1 request whose contact is
not, and whose customer has nobody who is, is flagged (the request page and the dashboard show
it) and its acknowledgment states the requirement; the customer's 24x7 contacts are listed on
the request."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.store.models import Contact, ServiceRequest

REQUIREMENT = (
    "Severity 1 needs a contact who can be reached around the clock while we work on it, and "
    "nobody at {customer} is registered as one. Reply with the name and phone number of someone "
    "we can call at any hour, or have your technical contact registered as available 24x7."
)


def contacts_24x7(session: Session, customer_id: int) -> list[Contact]:
    """The customer's active contacts who are available around the clock."""
    return list(
        session.scalars(
            select(Contact)
            .where(
                Contact.customer_id == customer_id,
                Contact.active.is_(True),
                Contact.available_24x7.is_(True),
            )
            .order_by(Contact.id)
        )
    )


def flag_missing_24x7_contact(session: Session, request: ServiceRequest) -> bool:
    """Set the request's flag: Severity 1 with nobody available around the clock."""
    missing = request.severity == 1 and not contacts_24x7(session, request.customer_id)
    request.needs_24x7_contact = missing
    return missing


def acknowledgment_notice(request: ServiceRequest, customer_name: str) -> str:
    """The sentence the acknowledgment adds for a flagged request, else nothing."""
    return REQUIREMENT.format(customer=customer_name) if request.needs_24x7_contact else ""
