"""Import files, field by field: where each table starts, and reading one table's fields.

A bad field becomes a problem naming the line of its table, and reads as a harmless blank, so
one pass over the file finds every problem. No database here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

NAME_LIMIT = 200
EMAIL_LIMIT = 320
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CUSTOMER_HEADER = re.compile(r"\s*\[\[\s*customers\s*\]\]")
CONTACT_HEADER = re.compile(r"\s*\[\[\s*customers\s*\.\s*contacts\s*\]\]")


@dataclass(frozen=True)
class Headers:
    """Line numbers of the ``[[customers]]`` headers, and of each one's contact headers."""

    customers: list[int]
    contacts: list[list[int]]

    @classmethod
    def scan(cls, text: str) -> Headers:
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


class Table:
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
