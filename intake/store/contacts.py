"""Who may open a request: contacts looked up by address (or id), and the entitlement rules.

A sender may open a request when it is a registered, active contact of a customer whose support
period covers today; end users only for platform and recording problems.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from intake.store.models import Contact, ContactEmail, ContactTransfer, Customer

END_USER_CATEGORIES = ("platform", "recording")


@dataclass(frozen=True)
class ContactView:
    """What the pipeline needs to know of a contact, detached from the session."""

    contact_id: int
    customer_id: int
    name: str
    role: str
    active: bool
    customer_name: str
    support_start: dt.date
    support_end: dt.date
    sender_auth: str = ""  # the customer's own INTAKE_SENDER_AUTH; empty: the setting's
    replaced_by: str = ""  # who took over the duties of an inactive contact


# What a sender who is not verified is told, whatever the reason: anyone can write from any
# address, so the answer must not tell a registered address from an unknown one, nor name a
# customer or its support period. Staff read the precise reason in the intake log.
UNVERIFIED_REFUSAL = (
    "We could not open a request from this message. Requests are opened for the registered "
    "contacts of customers with a current support agreement, written from the registered "
    "address; end users put [Platform] or [Recording] in the subject. To be registered, ask "
    "your company's technical contact, or call the service desk."
)


@dataclass(frozen=True)
class Refusal:
    reason: str  # a reason code of the intake log
    sentence: str  # the precise reason and what to do: for staff, and for a verified sender

    def told(self, sender_verified: bool) -> str:
        """What the sender is told: the precise sentence only when the sender is verified."""
        return self.sentence if sender_verified else UNVERIFIED_REFUSAL


def find_contact_by_email(session: Session, address: str) -> ContactView | None:
    row = session.execute(
        select(Contact, Customer)
        .join(ContactEmail, ContactEmail.contact_id == Contact.id)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(ContactEmail.address == address.strip().lower())
    ).first()
    if row is None:
        return None
    contact, customer = row
    return contact_view(contact, customer)


def find_contact_by_id(session: Session, contact_id: int) -> ContactView | None:
    """The contact a door identified by other means (a caller's phone number and PIN)."""
    row = session.execute(
        select(Contact, Customer)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(Contact.id == contact_id)
    ).first()
    return None if row is None else contact_view(*row)


def contact_view(contact: Contact, customer: Customer) -> ContactView:
    session = object_session(contact)
    replaced_by = ""
    if not contact.active and session is not None:  # rare: only refused senders pay for it
        replaced_by = successor_of(session, contact.id)
    return ContactView(
        contact.id,
        customer.id,
        contact.name,
        contact.role,
        contact.active,
        customer.name,
        customer.support_start,
        customer.support_end,
        customer.sender_auth,
        replaced_by,
    )


def successor_of(session: Session, contact_id: int) -> str:
    """``Name <address>`` of the contact who took over from this one, or "" when none did."""
    successor = session.scalar(
        select(Contact)
        .join(ContactTransfer, ContactTransfer.to_contact_id == Contact.id)
        .where(ContactTransfer.from_contact_id == contact_id)
        .order_by(ContactTransfer.id.desc())
        .limit(1)
    )
    if successor is None:
        return ""
    address = successor.primary_email
    return f"{successor.name} <{address}>" if address else successor.name


def refusal_for(
    contact: ContactView | None, sender: str, today: dt.date, category: str | None
) -> Refusal | None:
    """Why this sender may not open a request, or None when it may."""
    if contact is None:
        return Refusal(
            "unknown_sender",
            (
                f"{sender or 'The sender'} is not a registered contact of any customer. Ask your "
                "company's technical contact to have you registered, or call the service desk."
            ),
        )
    if not contact.active and contact.replaced_by:
        return Refusal(
            "inactive_contact",
            (
                f"Your duties as a contact of {contact.customer_name} were transferred to "
                f"{contact.replaced_by}, who reports problems now; ask them, or have them "
                "register you again."
            ),
        )
    if not contact.active:
        return Refusal(
            "inactive_contact",
            (
                f"Your registration as a contact of {contact.customer_name} is no longer active. "
                "Ask your company's technical contact to reinstate it or to report the problem."
            ),
        )
    if not contact.support_start <= today <= contact.support_end:
        return Refusal(
            "outside_support_period",
            (
                f"The support period of {contact.customer_name} runs from {contact.support_start} "
                f"to {contact.support_end}, so it is not active today. Ask your account manager "
                "to renew it."
            ),
        )
    if contact.role == "end_user" and category not in END_USER_CATEGORIES:
        return Refusal(
            "category_not_allowed",
            (
                "End users may report platform and recording problems only: put [Platform] or "
                "[Recording] in the subject, or ask your technical contact to report it."
            ),
        )
    return None
