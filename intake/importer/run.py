"""``intake import``: create or update customers and contacts from a TOML file.

Every row is checked, against the file and the database, before anything is written; all
problems are reported together, each with the line where its table starts. Then everything is
written in one transaction. Customers are matched by name, contacts by any of their addresses
(lower-cased), so importing the same file again changes nothing. Omitted optional fields take
their defaults, except ``pin``: PINs cannot be exported, so a file without one keeps the PIN
already stored. Contacts that are in the database but not in the file are left alone.

This module is the entry point; the work is done by, in order: :mod:`intake.importer.rows`
(reading and checking the file, with :mod:`intake.importer.fields`), :mod:`intake.importer.plan`
(checking against the database), :mod:`intake.importer.pins` (hashing PINs) and
:mod:`intake.importer.write` (writing).
"""

from __future__ import annotations

from pathlib import Path

from intake.errors import ImportFileError
from intake.importer.pins import hash_pins, pin_work
from intake.importer.plan import checked_plan
from intake.importer.rows import read_rows
from intake.importer.write import ImportReport, write
from intake.store.db import Database

__all__ = ["ImportReport", "import_file", "read_rows"]


def import_file(db: Database, path: Path, *, progress: bool = False) -> ImportReport:
    """Import ``path``; raise :class:`ImportFileError` listing every problem, writing nothing.

    PINs are hashed between a first, read-only look at the database and the writing
    transaction, so no lock is held during the slow part (on SQLite every transaction takes
    the one write lock, which the SMTP listener needs too). The second look checks again."""
    rows, problems = read_rows(_read_text(path))
    with db.transaction() as session:
        pins = pin_work(checked_plan(session, rows, problems))
    hashes = hash_pins(pins, progress)
    with db.transaction() as session:
        plan = checked_plan(session, rows, problems)
        return write(session, plan, hashes, f"recorded by importing {path.name}", progress)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise ImportFileError([f"{path}: cannot read the file: {error.strerror}"]) from None
    except UnicodeDecodeError as error:
        raise ImportFileError([f"{path}: not UTF-8 text ({error.reason})"]) from None
