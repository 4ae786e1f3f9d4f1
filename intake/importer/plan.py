"""Import rows checked against the database: which stored contact each row updates, and which
contact it replaces. Reads the database and writes nothing; any problem, from the file or from
this check, raises :class:`ImportFileError` with all of them, sorted by line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from intake.errors import ImportFileError
from intake.importer.rows import ContactRow, CustomerRow
from intake.store.models import Contact, ContactTransfer, Customer


@dataclass(frozen=True)
class Existing:
    """Everything the import compares against, loaded in three queries."""

    customers: dict[str, Customer]
    owners: dict[str, tuple[Customer, Contact]]  # address -> its customer and contact
    transfers: set[tuple[int, int]]  # (from_contact_id, to_contact_id)

    @classmethod
    def load(cls, session: Session) -> Existing:
        loader = selectinload(Customer.contacts).selectinload(Contact.emails)
        customers = {c.name: c for c in session.scalars(select(Customer).options(loader))}
        owners = {
            email.address.lower(): (customer, contact)
            for customer in customers.values()
            for contact in customer.contacts
            for email in contact.emails
        }
        pairs = select(ContactTransfer.from_contact_id, ContactTransfer.to_contact_id)
        return cls(customers, owners, {(old, new) for old, new in session.execute(pairs)})


@dataclass
class Slot:
    """One contact row, the existing contact it updates, and (once written) its contact."""

    customer: CustomerRow
    row: ContactRow
    existing: Contact | None
    active: bool
    replaces: Slot | Contact | None = None
    contact: Contact | None = None


@dataclass
class Plan:
    """The checked rows, what they are compared against, and one slot per contact row."""

    customers: list[CustomerRow]
    existing: Existing
    slots: list[Slot] = field(default_factory=list)


def checked_plan(session: Session, rows: list[CustomerRow], problems: list[str]) -> Plan:
    """The plan for ``rows``; raise listing ``problems`` and the database's, if there are any."""
    found = list(problems)
    plan = _plan(rows, Existing.load(session), found)
    if found:
        raise ImportFileError(sorted(found, key=_line_of))
    return plan


def _line_of(problem: str) -> int:
    match = re.match(r"line (\d+)", problem)
    return int(match[1]) if match else 0


def _plan(rows: list[CustomerRow], existing: Existing, problems: list[str]) -> Plan:
    plan = Plan(rows, existing)
    claimed: dict[int, str] = {}
    for customer in rows:
        for row in customer.contacts:
            match = _match(customer, row, existing, problems)
            if match is not None and match.id in claimed:
                problems.append(f"{row.where}: email: same contact as {claimed[match.id]}")
            elif match is not None:
                claimed[match.id] = row.where
            plan.slots.append(Slot(customer, row, match, row.active))
    in_file = {address: slot for slot in plan.slots for address in slot.row.emails}
    for slot in plan.slots:
        _resolve_replaces(slot, in_file, existing, problems)
    return plan


def _match(
    customer: CustomerRow, row: ContactRow, existing: Existing, problems: list[str]
) -> Contact | None:
    """The existing contact that ``row`` updates: the one owning any of its addresses."""
    found: dict[int, Contact] = {}
    for address in row.emails:
        owner_customer, contact = existing.owners.get(address, (None, None))
        if owner_customer is None or contact is None:
            continue
        if owner_customer.name != customer.name:
            problems.append(
                f"{row.where}: email: {address!r} already belongs to {contact.name!r} of "
                f"another customer, {owner_customer.name!r}"
            )
        else:
            found[contact.id] = contact
    if len(found) > 1:
        names = ", ".join(repr(c.name) for c in found.values())
        problems.append(f"{row.where}: emails: the addresses belong to different contacts {names}")
        return None
    return next(iter(found.values()), None)


def _resolve_replaces(
    slot: Slot, in_file: dict[str, Slot], existing: Existing, problems: list[str]
) -> None:
    """Find the contact ``slot`` replaces: listed in the file, or else in the database."""
    address, row = slot.row.replaces, slot.row
    if address is None:
        return
    listed, owner = in_file.get(address), existing.owners.get(address)
    if address in row.emails:
        problems.append(f"{row.where}: replaces: a contact cannot replace itself")
    elif listed and listed.customer is slot.customer:
        _replace_slot(slot, listed, problems)
    elif listed or (owner and owner[0].name != slot.customer.name):
        problems.append(f"{row.where}: replaces: {address!r} is a contact of another customer")
    elif owner:
        slot.replaces = owner[1]
    else:
        problems.append(f"{row.where}: replaces: no contact of this customer has {address!r}")


def _replace_slot(slot: Slot, old: Slot, problems: list[str]) -> None:
    if old.row.active_given and old.row.active:
        problems.append(f"{old.row.where}: active: is true, but {slot.row.where} replaces it")
    old.active = False
    slot.replaces = old
