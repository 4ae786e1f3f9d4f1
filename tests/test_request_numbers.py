"""Request numbers taken up front for a worker's batch: the reserved ones are used in order, and
a request opened without a reservation (past the batch's, or in a later transaction) gets a
number no other request has. SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.policy import load_policy
from intake.requests.opening import open_request, reserve_request_ids
from intake.store.db import Database
from intake.store.models import Contact, RequestEvent, ServiceRequest, utcnow
from tests.helpers import add_contact


def open_one(session: Session, contact: Contact, subject: str) -> ServiceRequest:
    return open_request(
        session,
        load_policy({}),
        customer_id=contact.customer_id,
        contact_id=contact.id,
        channel="email",
        severity=3,
        subject=subject,
        description="The export fails.",
        received_at=utcnow(),
        created_detail={"auth": {"result": "pass"}},
    )


def test_reserved_numbers_are_used_in_order_and_no_number_twice(db: Database) -> None:
    contact_id = add_contact(db, "ada@acme.example")
    with db.transaction() as session:
        contact = session.get_one(Contact, contact_id)
        first = open_one(session, contact, "before any batch").id
    with db.transaction() as session:
        contact = session.get_one(Contact, contact_id)
        reserve_request_ids(session, 3)
        batch = [open_one(session, contact, f"batch {n}").id for n in range(2)]
        after = open_one(session, contact, "the reservation's last").id
        beyond = open_one(session, contact, "past the reservation").id
    with db.transaction() as session:
        contact = session.get_one(Contact, contact_id)
        reserve_request_ids(session, 2)
        open_one(session, contact, "one of two")  # the other number stays unused
    with db.transaction() as session:
        later = open_one(session, contact=session.get_one(Contact, contact_id), subject="later").id
        numbers = session.scalars(select(ServiceRequest.id).order_by(ServiceRequest.id)).all()
        created = session.scalars(
            select(RequestEvent.detail).where(RequestEvent.type == "created")
        ).all()
    assert batch == [first + 1, first + 2] and after == first + 3
    assert beyond > after and later > beyond
    assert len(numbers) == len(set(numbers)) == 7
    assert all(d["auth"] == {"result": "pass"} and d["severity"] == 3 for d in created)
