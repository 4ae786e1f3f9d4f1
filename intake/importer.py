"""``intake import``: create or update customers and contacts from a TOML file (CONTRACT §4).

Every row is checked, against the file and the database, before anything is written; all
problems are reported together, each with the line where its table starts. Then everything is
written in one transaction. Customers are matched by name, contacts by any of their addresses
(lower-cased), so importing the same file again changes nothing. Omitted optional fields take
their defaults, except ``pin``: PINs cannot be exported, so a file without one keeps the PIN
already stored. Contacts that are in the database but not in the file are left alone.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import tomllib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from tqdm import tqdm

from intake.accounts import hash_pin, pin_needs_rehash, verify_secret
from intake.db import Database
from intake.errors import ImportFileError
from intake.models import Contact, ContactEmail, ContactTransfer, Customer
from intake.phones import normalise_phone

OFFERINGS = ("IXCloud", "IXCloud Hybrid")
ROLES = ("technical", "end_user")
CUSTOMER_KEYS = frozenset({"name", "offering", "support_start", "support_end", "contacts"})
CONTACT_KEYS = frozenset(
    {"name", "email", "emails", "phone", "role", "pin", "available_24x7", "active", "replaces"}
)
NAME_LIMIT = 200
EMAIL_LIMIT = 320
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PIN_PATTERN = re.compile(r"[0-9]{4,8}")
CUSTOMER_HEADER = re.compile(r"\s*\[\[\s*customers\s*\]\]")
CONTACT_HEADER = re.compile(r"\s*\[\[\s*customers\s*\.\s*contacts\s*\]\]")
TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")
END_OF_DOCUMENT = " (at end of document)"
PROGRESS_MIN_CONTACTS = 200  # below this an import takes a blink; no bar needed


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


@dataclass(frozen=True)
class ContactRow:
    """A checked ``[[customers.contacts]]`` table; ``where`` names its line for messages."""

    where: str
    name: str
    emails: tuple[str, ...]  # lower-cased, the primary ``email`` first
    role: str
    phone: str | None
    pin: str | None
    available_24x7: bool
    active: bool
    active_given: bool
    replaces: str | None


@dataclass(frozen=True)
class CustomerRow:
    """A checked ``[[customers]]`` table with its contacts."""

    where: str
    name: str
    offering: str
    support_start: dt.date
    support_end: dt.date
    contacts: tuple[ContactRow, ...]


def import_file(db: Database, path: Path, *, progress: bool = False) -> ImportReport:
    """Import ``path``; raise :class:`ImportFileError` listing every problem, writing nothing.

    PINs are hashed between a first, read-only look at the database and the writing
    transaction, so no lock is held during the slow part (on SQLite every transaction takes
    the one write lock, which the SMTP listener needs too). The second look checks again."""
    rows, problems = read_rows(_read_text(path))
    with db.transaction() as session:
        pins = _pin_work(_checked_plan(session, rows, problems))
    hashes = _hash_pins(pins, progress)
    with db.transaction() as session:
        plan = _checked_plan(session, rows, problems)
        return _write(session, plan, hashes, f"recorded by importing {path.name}", progress)


def _checked_plan(session: Session, rows: list[CustomerRow], problems: list[str]) -> _Plan:
    found = list(problems)
    plan = _plan(rows, _Existing.load(session), found)
    if found:
        raise ImportFileError(sorted(found, key=_line_of))
    return plan


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise ImportFileError([f"{path}: cannot read the file: {error.strerror}"]) from None
    except UnicodeDecodeError as error:
        raise ImportFileError([f"{path}: not UTF-8 text ({error.reason})"]) from None


def _line_of(problem: str) -> int:
    match = re.match(r"line (\d+)", problem)
    return int(match[1]) if match else 0


# ---- reading and checking the file -------------------------------------------------------


def read_rows(text: str) -> tuple[list[CustomerRow], list[str]]:
    """The file's customers, and its problems (any problem means the rows must not be written)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ImportFileError([_toml_problem(error, text)]) from None
    problems: list[str] = []
    rows = _read_customers(data, _Headers.scan(text), problems)
    _check_repeats(rows, problems)
    return rows, problems


def _toml_problem(error: tomllib.TOMLDecodeError, text: str) -> str:
    message = str(error)
    match = TOML_POSITION.search(message)
    if match is not None:
        return f"line {match[1]}: invalid TOML: {message[: match.start()]}"
    if message.endswith(END_OF_DOCUMENT):
        line = text.rstrip("\n").count("\n") + 1
        return f"line {line}: invalid TOML: {message.removesuffix(END_OF_DOCUMENT)} at the end"
    return f"invalid TOML: {message}"


@dataclass(frozen=True)
class _Headers:
    """Line numbers of the ``[[customers]]`` headers, and of each one's contact headers."""

    customers: list[int]
    contacts: list[list[int]]

    @classmethod
    def scan(cls, text: str) -> _Headers:
        customers: list[int] = []
        contacts: list[list[int]] = []
        for number, line in enumerate(text.split("\n"), start=1):
            if CUSTOMER_HEADER.match(line):
                customers.append(number)
                contacts.append([])
            elif CONTACT_HEADER.match(line) and contacts:
                contacts[-1].append(number)
        return cls(customers, contacts)

    def customer(self, index: int) -> str:
        found = index < len(self.customers)
        return f"line {self.customers[index]}" if found else f"customer #{index + 1}"

    def contact(self, index: int, position: int) -> str:
        lines = self.contacts[index] if index < len(self.contacts) else []
        found = position < len(lines)
        return f"line {lines[position]}" if found else f"{self.customer(index)}, #{position + 1}"


class _Table:
    """One TOML table, read field by field; a bad field is noted and read as a harmless blank."""

    def __init__(self, table: dict[str, Any], kind: str, where: str, problems: list[str]) -> None:
        name = table.get("name")
        self.table = table
        self.where = f'{where} ({kind} "{name}")' if isinstance(name, str) else f"{where} ({kind})"
        self.problems = problems

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}: {key}: {message}")

    def unknown_keys(self, allowed: frozenset[str]) -> None:
        for key in sorted(set(self.table) - allowed):
            self.problem(key, "unknown key; allowed are " + ", ".join(sorted(allowed)))

    def text(self, key: str, options: tuple[str, ...] = ()) -> str:
        value = self.table.get(key)
        if value is None:
            self.problem(key, "missing")
        elif not isinstance(value, str) or not value.strip() or len(value) > NAME_LIMIT:
            self.problem(key, f"must be a string of 1 to {NAME_LIMIT} characters")
        elif options and value not in options:
            self.problem(key, f"{value!r} is not one of " + ", ".join(map(repr, options)))
        else:
            return value.strip()
        return ""

    def date(self, key: str) -> dt.date | None:
        value = self.table.get(key)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        self.problem(key, "missing" if value is None else "must be a TOML date like 2026-01-01")
        return None

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if isinstance(value, bool):
            return value
        self.problem(key, "must be true or false")
        return default

    def address(self, key: str, value: object) -> str:
        if value is None:
            self.problem(key, "missing")
        elif not isinstance(value, str) or not EMAIL_PATTERN.fullmatch(value.strip()):
            self.problem(key, f"{value!r} is not an email address")
        elif len(value.strip()) > EMAIL_LIMIT:
            self.problem(key, f"longer than {EMAIL_LIMIT} characters")
        else:
            return value.strip().lower()
        return ""


def _tables(value: object) -> list[dict[str, Any]] | None:
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    return None


def _read_customers(
    data: dict[str, Any], headers: _Headers, problems: list[str]
) -> list[CustomerRow]:
    for key in sorted(set(data) - {"customers"}):
        problems.append(
            f"line 1: {key}: unknown top-level key; the file holds [[customers]] tables"
        )
    tables = _tables(data.get("customers"))
    if not tables:
        problems.append("line 1: customers: the file has no [[customers]] tables")
        return []
    return [_read_customer(t, i, headers, problems) for i, t in enumerate(tables)]


def _read_customer(
    table: dict[str, Any], index: int, headers: _Headers, problems: list[str]
) -> CustomerRow:
    fields = _Table(table, "customer", headers.customer(index), problems)
    fields.unknown_keys(CUSTOMER_KEYS)
    start, end = fields.date("support_start"), fields.date("support_end")
    if start and end and end < start:
        fields.problem("support_end", f"{end} is before support_start {start}")
    contacts = _tables(table.get("contacts", []))
    if contacts is None:
        fields.problem("contacts", "must be [[customers.contacts]] tables")
    return CustomerRow(
        where=fields.where,
        name=fields.text("name"),
        offering=fields.text("offering", OFFERINGS),
        support_start=start or dt.date.min,
        support_end=end or dt.date.min,
        contacts=tuple(
            _read_contact(_Table(c, "contact", headers.contact(index, j), problems))
            for j, c in enumerate(contacts or [])
        ),
    )


def _read_contact(fields: _Table) -> ContactRow:
    fields.unknown_keys(CONTACT_KEYS)
    replaces = fields.table.get("replaces")
    return ContactRow(
        where=fields.where,
        name=fields.text("name"),
        emails=_addresses(fields),
        role=fields.text("role", ROLES),
        phone=_phone(fields),
        pin=_pin(fields),
        available_24x7=fields.flag("available_24x7", default=False),
        active=fields.flag("active", default=True),
        active_given="active" in fields.table,
        replaces=None if replaces is None else fields.address("replaces", replaces) or None,
    )


def _addresses(fields: _Table) -> tuple[str, ...]:
    more = fields.table.get("emails", [])
    if not isinstance(more, list):
        fields.problem("emails", "must be a list of addresses")
        more = []
    found = [fields.address("email", fields.table.get("email"))]
    found += [fields.address("emails", value) for value in more]
    return tuple(dict.fromkeys(address for address in found if address))


def _phone(fields: _Table) -> str | None:
    value = fields.table.get("phone")
    if value is None or (isinstance(value, str) and normalise_phone(value) == value):
        return value
    fields.problem("phone", f"{value!r} is not a valid E.164 number like +14155550101")
    return None


def _pin(fields: _Table) -> str | None:
    value = fields.table.get("pin")
    if value is None or (isinstance(value, str) and PIN_PATTERN.fullmatch(value)):
        return value
    fields.problem("pin", 'must be 4 to 8 digits in quotes, like "4321"')  # never echo a PIN
    return None


def _check_repeats(rows: list[CustomerRow], problems: list[str]) -> None:
    names: dict[str, str] = {}
    addresses: dict[str, str] = {}
    for customer in rows:
        _note_repeat(names, customer.name, customer.where, "name", problems)
        for contact in customer.contacts:
            for address in contact.emails:
                _note_repeat(addresses, address, contact.where, "email", problems)


def _note_repeat(seen: dict[str, str], key: str, where: str, field: str, out: list[str]) -> None:
    if key and key in seen:
        out.append(f"{where}: {field}: {key!r} is also given at {seen[key]}")
    elif key:
        seen[key] = where


# ---- checking against the database and planning ------------------------------------------


@dataclass(frozen=True)
class _Existing:
    """Everything the import compares against, loaded in three queries."""

    customers: dict[str, Customer]
    owners: dict[str, tuple[Customer, Contact]]  # address -> its customer and contact
    transfers: set[tuple[int, int]]  # (from_contact_id, to_contact_id)

    @classmethod
    def load(cls, session: Session) -> _Existing:
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
class _Slot:
    """One contact row, the existing contact it updates, and (once written) its contact."""

    customer: CustomerRow
    row: ContactRow
    existing: Contact | None
    active: bool
    replaces: _Slot | Contact | None = None
    contact: Contact | None = None


@dataclass
class _Plan:
    customers: list[CustomerRow]
    existing: _Existing
    slots: list[_Slot] = field(default_factory=list)


def _plan(rows: list[CustomerRow], existing: _Existing, problems: list[str]) -> _Plan:
    plan = _Plan(rows, existing)
    claimed: dict[int, str] = {}
    for customer in rows:
        for row in customer.contacts:
            match = _match(customer, row, existing, problems)
            if match is not None and match.id in claimed:
                problems.append(f"{row.where}: email: same contact as {claimed[match.id]}")
            elif match is not None:
                claimed[match.id] = row.where
            plan.slots.append(_Slot(customer, row, match, row.active))
    in_file = {address: slot for slot in plan.slots for address in slot.row.emails}
    for slot in plan.slots:
        _resolve_replaces(slot, in_file, existing, problems)
    return plan


def _match(
    customer: CustomerRow, row: ContactRow, existing: _Existing, problems: list[str]
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
    slot: _Slot, in_file: dict[str, _Slot], existing: _Existing, problems: list[str]
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


def _replace_slot(slot: _Slot, old: _Slot, problems: list[str]) -> None:
    if old.row.active_given and old.row.active:
        problems.append(f"{old.row.where}: active: is true, but {slot.row.where} replaces it")
    old.active = False
    slot.replaces = old


# ---- writing -------------------------------------------------------------------------------


def _progress_bar(total: int, progress: bool, what: str) -> Any:
    return tqdm(
        total=total,
        disable=not progress or total < PROGRESS_MIN_CONTACTS,
        file=sys.stderr,
        desc=what,
        unit="contact",
    )


def _write(
    session: Session, plan: _Plan, hashes: _PinHashes, note: str, progress: bool
) -> ImportReport:
    counts: Counter[str] = Counter()
    customers = {
        row.name: _write_customer(session, row, plan.existing, counts) for row in plan.customers
    }
    with _progress_bar(len(plan.slots), progress, "writing contacts") as bar:
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
    session: Session, row: CustomerRow, existing: _Existing, counts: Counter[str]
) -> Customer:
    values: dict[str, object] = {
        "offering": row.offering,
        "support_start": row.support_start,
        "support_end": row.support_end,
    }
    customer = existing.customers.get(row.name)
    if customer is None:
        customer = Customer(name=row.name, **values)
        session.add(customer)
        counts["customers_created"] += 1
    else:
        counts["customers_updated" if _assign(customer, values) else "unchanged"] += 1
    return customer


_PinWork = list[tuple[str, str, str | None]]  # (primary address, PIN, the hash it had)


def _pin_work(plan: _Plan) -> _PinWork:
    return [
        (s.row.emails[0], s.row.pin, s.existing.pin_hash if s.existing else None)
        for s in plan.slots
        if s.row.pin is not None
    ]


@dataclass(frozen=True)
class _PinHashes:
    """New PIN hashes made ahead of the writing transaction, keyed by the hash each replaces."""

    made: dict[tuple[str, str | None], str | None]

    def new_hash(self, slot: _Slot) -> str | None:
        stored = slot.existing.pin_hash if slot.existing else None
        key = (slot.row.emails[0], stored)
        if key in self.made:
            return self.made[key]
        return _new_pin_hash(slot.row.pin, stored)  # the contact changed since: hash it now


def _hash_pins(work: _PinWork, progress: bool) -> _PinHashes:
    """Hash (or verify) the PINs on all cores: scrypt releases the GIL."""
    made: dict[tuple[str, str | None], str | None] = {}
    with ThreadPoolExecutor() as pool, _progress_bar(len(work), progress, "hashing PINs") as bar:
        results = pool.map(_new_pin_hash, [pin for _, pin, _ in work], [h for _, _, h in work])
        for (address, _, stored), result in zip(work, results, strict=True):
            made[address, stored] = result
            bar.update()
    return _PinHashes(made)


def _new_pin_hash(pin: str | None, stored: str | None) -> str | None:
    """A new hash of ``pin``, or None when there is no PIN or ``stored`` already matches it."""
    if pin is None:
        return None
    if stored is not None and not pin_needs_rehash(stored) and verify_secret(pin, stored):
        return None
    return hash_pin(pin)


def _write_contact(
    session: Session, slot: _Slot, customer: Customer, pin_hash: str | None, counts: Counter[str]
) -> None:
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


def _sync_emails(contact: Contact, addresses: tuple[str, ...]) -> bool:
    current = {email.address: email for email in contact.emails}
    if set(current) == set(addresses):
        return False
    for address, email in current.items():
        if address not in addresses:
            contact.emails.remove(email)
    contact.emails.extend(ContactEmail(address=a) for a in addresses if a not in current)
    return True


def _write_transfers(session: Session, plan: _Plan, note: str, counts: Counter[str]) -> None:
    for slot in plan.slots:
        old = slot.replaces.contact if isinstance(slot.replaces, _Slot) else slot.replaces
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
