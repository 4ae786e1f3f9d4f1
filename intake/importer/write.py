"""Import writing: a checked plan becomes customers, contacts, addresses and transfers in the
caller's transaction, counted into an :class:`ImportReport`.

Only what differs is changed, so writing the same file again counts everything as unchanged.
Contacts that are in the database but not in the file are left alone, unless a row replaces one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy.orm import Session

from intake.importer.pins import PinHashes, progress_bar
from intake.importer.plan import Existing, Plan, Slot
from intake.importer.rows import CustomerRow
from intake.store.models import Contact, ContactEmail, ContactTransfer, Customer


@dataclass(frozen=True)
class ImportReport:
    """What an import did; ``unchanged`` counts customers and contacts already as the file says."""

    customers_created: int = 0
    customers_updated: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    unchanged: int = 0
    transfers_recorded: int = 0

    def summary(self) -> str:
        return (
            f"customers: {self.customers_created} created, {self.customers_updated} updated; "
            f"contacts: {self.contacts_created} created, {self.contacts_updated} updated; "
            f"{self.unchanged} unchanged; {self.transfers_recorded} transfer(s) recorded"
        )


def write(
    session: Session, plan: Plan, hashes: PinHashes, note: str, progress: bool
) -> ImportReport:
    """Write ``plan``; ``note`` goes on each transfer recorded."""
    counts: Counter[str] = Counter()
    customers = {
        row.name: _write_customer(session, row, plan.existing, counts) for row in plan.customers
    }
    with progress_bar(len(plan.slots), progress, "writing contacts") as bar:
        for slot in plan.slots:
            pin_hash = hashes.new_hash(slot)
            _write_contact(session, slot, customers[slot.customer.name], pin_hash, counts)
            bar.update()
    session.flush()  # the new contacts' ids, for the transfers
    _write_transfers(session, plan, note, counts)
    return ImportReport(**counts)


def _assign(target: object, values: dict[str, object]) -> bool:
    """Set the attributes that differ; whether any did."""
    changed = [key for key, value in values.items() if getattr(target, key) != value]
    for key in changed:
        setattr(target, key, values[key])
    return bool(changed)


def _write_customer(
    session: Session, row: CustomerRow, existing: Existing, counts: Counter[str]
) -> Customer:
    values: dict[str, object] = {
        "offering": row.offering,
        "support_start": row.support_start,
        "support_end": row.support_end,
        "sender_auth": row.sender_auth,
    }
    customer = existing.customers.get(row.name)
    if customer is None:
        customer = Customer(name=row.name, **values)
        session.add(customer)
        counts["customers_created"] += 1
    else:
        counts["customers_updated" if _assign(customer, values) else "unchanged"] += 1
    return customer


def _write_contact(
    session: Session, slot: Slot, customer: Customer, pin_hash: str | None, counts: Counter[str]
) -> None:
    row, values = slot.row, _contact_values(slot, pin_hash)
    contact = slot.existing
    if contact is None:
        emails = [ContactEmail(address=address) for address in row.emails]
        contact = Contact(customer=customer, emails=emails, **values)
        session.add(contact)
        counts["contacts_created"] += 1
    else:
        changed = _assign(contact, values) | _sync_emails(contact, row.emails)
        counts["contacts_updated" if changed else "unchanged"] += 1
    slot.contact = contact


def _contact_values(slot: Slot, pin_hash: str | None) -> dict[str, object]:
    row = slot.row
    values: dict[str, object] = {
        "name": row.name,
        "role": row.role,
        "phone": row.phone,
        "available_24x7": row.available_24x7,
        "active": slot.active,
    }
    if pin_hash is not None:  # a new PIN also lifts a lockout earned with the old one
        values |= {"pin_hash": pin_hash, "pin_failures": 0, "pin_locked_until": None}
        values["pin_locks"] = 0
    return values


def _sync_emails(contact: Contact, addresses: tuple[str, ...]) -> bool:
    current = {email.address: email for email in contact.emails}
    if set(current) == set(addresses):
        return False
    for address, email in current.items():
        if address not in addresses:
            contact.emails.remove(email)
    contact.emails.extend(ContactEmail(address=a) for a in addresses if a not in current)
    return True


def _write_transfers(session: Session, plan: Plan, note: str, counts: Counter[str]) -> None:
    for slot in plan.slots:
        old = slot.replaces.contact if isinstance(slot.replaces, Slot) else slot.replaces
        new = slot.contact
        if old is None or new is None:
            continue
        if old.active:  # an existing contact the file does not list
            old.active = False
            counts["contacts_updated"] += 1
        if (old.id, new.id) not in plan.existing.transfers:
            session.add(
                ContactTransfer(
                    customer_id=new.customer_id,
                    from_contact_id=old.id,
                    to_contact_id=new.id,
                    note=note,
                )
            )
            counts["transfers_recorded"] += 1
