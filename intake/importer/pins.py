"""Import PINs, hashed ahead of the writing transaction on all cores (scrypt releases the GIL);
and the progress bar that hashing and writing show on big imports.

A PIN that its contact's stored hash already matches gets no new hash, so importing the same
file again changes nothing.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from intake.accounts.credentials import hash_pin, pin_needs_rehash, verify_secret
from intake.importer.plan import Plan, Slot

PROGRESS_MIN_CONTACTS = 200  # below this an import takes a blink; no bar needed

PinWork = list[tuple[str, str, str | None]]  # (primary address, PIN, the hash it had)


def progress_bar(total: int, progress: bool, what: str) -> Any:
    return tqdm(
        total=total,
        disable=not progress or total < PROGRESS_MIN_CONTACTS,
        file=sys.stderr,
        desc=what,
        unit="contact",
    )


def pin_work(plan: Plan) -> PinWork:
    """The PINs the file gives, each with its contact's primary address and stored hash."""
    return [
        (s.row.emails[0], s.row.pin, s.existing.pin_hash if s.existing else None)
        for s in plan.slots
        if s.row.pin is not None
    ]


@dataclass(frozen=True)
class PinHashes:
    """New PIN hashes made ahead of the writing transaction, keyed by the hash each replaces."""

    made: dict[tuple[str, str | None], str | None]

    def new_hash(self, slot: Slot) -> str | None:
        stored = slot.existing.pin_hash if slot.existing else None
        key = (slot.row.emails[0], stored)
        if key in self.made:
            return self.made[key]
        return _new_pin_hash(slot.row.pin, stored)  # the contact changed since: hash it now


def hash_pins(work: PinWork, progress: bool) -> PinHashes:
    """Hash (or verify) the PINs on all cores: scrypt releases the GIL."""
    made: dict[tuple[str, str | None], str | None] = {}
    with ThreadPoolExecutor() as pool, progress_bar(len(work), progress, "hashing PINs") as bar:
        results = pool.map(_new_pin_hash, [pin for _, pin, _ in work], [h for _, _, h in work])
        for (address, _, stored), result in zip(work, results, strict=True):
            made[address, stored] = result
            bar.update()
    return PinHashes(made)


def _new_pin_hash(pin: str | None, stored: str | None) -> str | None:
    """A new hash of ``pin``, or None when there is no PIN or ``stored`` already matches it."""
    if pin is None:
        return None
    if stored is not None and not pin_needs_rehash(stored) and verify_secret(pin, stored):
        return None
    return hash_pin(pin)
