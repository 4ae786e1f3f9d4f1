"""Who is signed in to the portal, what they may do, and which requests they may see.

Technical contacts are the customer's liaisons: they see every request of their customer and
may act on each. End users see the platform and recording problems they reported themselves,
and only log and follow those. A contact no longer active, or whose customer is outside its
support period, is told why (the pipeline's own sentence) and may do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from intake.store.contacts import END_USER_CATEGORIES, ContactView, Refusal, refusal_for
from intake.store.models import Contact, ServiceRequest, parse_request_number, utcnow
from parsers import end_user_category


@dataclass(frozen=True)
class PortalUser:
    """The signed-in contact: who they are, their address, and why they may do nothing (if so)."""

    contact: ContactView
    address: str
    refusal: Refusal | None

    @property
    def technical(self) -> bool:
        return self.contact.role == "technical"

    @property
    def may_act(self) -> bool:
        return self.refusal is None


def portal_user(session: Session, contact: ContactView) -> PortalUser:
    address = session.get_one(Contact, contact.contact_id).primary_email or ""
    return PortalUser(contact, address, standing_refusal(contact, address))


def standing_refusal(contact: ContactView, address: str) -> Refusal | None:
    """Why this contact may not use the portal today (inactive, outside the support period);
    the end users' category rule applies to each request, not to signing in."""
    category = None if contact.role == "technical" else END_USER_CATEGORIES[0]
    return refusal_for(contact, address, utcnow().date(), category)


def visible_requests(user: PortalUser) -> Select[ServiceRequest]:
    """The requests the contact may see, before filters: the customer's for a technical contact,
    the contact's own for an end user (see :func:`may_see`)."""
    query = select(ServiceRequest).where(ServiceRequest.customer_id == user.contact.customer_id)
    if not user.technical:
        query = query.where(ServiceRequest.contact_id == user.contact.contact_id)
    return query


def may_see(user: PortalUser, request: ServiceRequest) -> bool:
    if request.customer_id != user.contact.customer_id:
        return False
    if user.technical:
        return True
    own = request.contact_id == user.contact.contact_id
    return own and end_user_category(request.subject) in END_USER_CATEGORIES


def find_visible(session: Session, user: PortalUser, number: str) -> ServiceRequest | None:
    """The request by its number, if this contact may see it; None tells nothing more."""
    request_id = parse_request_number(number)
    request = session.get(ServiceRequest, request_id) if request_id is not None else None
    return request if request is not None and may_see(user, request) else None
