"""Find the request numbers ("[SR-000123]") a reply's subject refers to."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"\[\s*(SR-[0-9]{6,})\s*\]", re.IGNORECASE)


def request_numbers_in(subject: str) -> tuple[str, ...]:
    """The bracketed request numbers in ``subject``, upper-cased, in order, without repeats."""
    found = (match.group(1).upper() for match in _NUMBER.finditer(subject))
    return tuple(dict.fromkeys(found))
