"""Import files, read and checked on their own: the TOML text becomes customer and contact rows.

Every problem the file has by itself (bad or missing fields, unknown keys, names and addresses
given twice) is listed with the line where its table starts. No database here; checking the
rows against the database is :mod:`intake.importer.plan`'s job.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from intake.errors import ImportFileError
from intake.importer.fields import Headers, Table
from parsers.phones import normalise_phone

OFFERINGS = ("IXCloud", "IXCloud Hybrid")
ROLES = ("technical", "end_user")
CUSTOMER_KEYS = frozenset(
    {"name", "offering", "support_start", "support_end", "sender_auth", "contacts"}
)
SENDER_AUTH_MODES = ("enforce", "monitor", "off")
CONTACT_KEYS = frozenset(
    {"name", "email", "emails", "phone", "role", "pin", "available_24x7", "active", "replaces"}
)
PIN_PATTERN = re.compile(r"[0-9]{4,8}")
TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")
END_OF_DOCUMENT = " (at end of document)"


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
    sender_auth: str = ""  # the customer's own INTAKE_SENDER_AUTH; empty: the setting's


def read_rows(text: str) -> tuple[list[CustomerRow], list[str]]:
    """The file's customers, and its problems (any problem means the rows must not be written)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ImportFileError([_toml_problem(error, text)]) from None
    problems: list[str] = []
    rows = _read_customers(data, Headers.scan(text), problems)
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


def _tables(value: object) -> list[dict[str, Any]] | None:
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    return None


def _read_customers(
    data: dict[str, Any], headers: Headers, problems: list[str]
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
    table: dict[str, Any], index: int, headers: Headers, problems: list[str]
) -> CustomerRow:
    fields = Table(table, "customer", headers.customer(index), problems)
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
            _read_contact(Table(c, "contact", headers.contact(index, j), problems))
            for j, c in enumerate(contacts or [])
        ),
        sender_auth=fields.text("sender_auth", SENDER_AUTH_MODES) if "sender_auth" in table else "",
    )


def _read_contact(fields: Table) -> ContactRow:
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


def _addresses(fields: Table) -> tuple[str, ...]:
    more = fields.table.get("emails", [])
    if not isinstance(more, list):
        fields.problem("emails", "must be a list of addresses")
        more = []
    found = [fields.address("email", fields.table.get("email"))]
    found += [fields.address("emails", value) for value in more]
    return tuple(dict.fromkeys(address for address in found if address))


def _phone(fields: Table) -> str | None:
    value = fields.table.get("phone")
    if value is None or (isinstance(value, str) and normalise_phone(value) == value):
        return value
    fields.problem("phone", f"{value!r} is not a valid E.164 number like +14155550101")
    return None


def _pin(fields: Table) -> str | None:
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
