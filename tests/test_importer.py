"""`intake import`: validation with line numbers, idempotence, PINs, transfers, scale; phones."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import NoResultFound

from intake.accounts.credentials import hash_secret, pin_needs_rehash, verify_secret
from intake.errors import ImportFileError
from intake.importer.run import ImportReport, import_file
from intake.store.db import Database
from intake.store.models import Contact, ContactEmail, ContactTransfer, Customer
from parsers.phones import normalise_phone

ROOT = Path(__file__).resolve().parent.parent

ACME = """\
[[customers]]
name = "Acme Corp"
offering = "IXCloud"
support_start = 2026-01-01
support_end = 2027-12-31

  [[customers.contacts]]
  name = "Ada Lovelace"
  email = "Ada@Acme.example"
  emails = ["ada.lovelace@acme.example"]
  phone = "+14155550101"
  role = "technical"
  pin = "4321"
  available_24x7 = true

  [[customers.contacts]]
  name = "Bob Builder"
  email = "bob@acme.example"
  role = "end_user"
"""

GLOBEX = """\
[[customers]]
name = "Globex"
offering = "IXCloud Hybrid"
support_start = 2026-01-01
support_end = 2027-12-31

  [[customers.contacts]]
  name = "Hedy Lamarr"
  email = "hedy@globex.example"
  role = "technical"
"""


def write(tmp_path: Path, text: str, name: str = "contacts.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def row_counts(db: Database) -> tuple[int, ...]:
    with db.transaction() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Customer, Contact, ContactEmail, ContactTransfer)
        )


def contact_by_email(db: Database, address: str) -> Contact:
    with db.transaction() as session:
        query = select(Contact).join(ContactEmail).where(ContactEmail.address == address)
        return session.scalars(query).one()


def problems_of(db: Database, path: Path) -> list[str]:
    with pytest.raises(ImportFileError) as caught:
        import_file(db, path)
    return caught.value.problems


def test_import_creates_customers_and_contacts(db: Database, tmp_path: Path) -> None:
    report = import_file(db, write(tmp_path, ACME + "\n" + GLOBEX))

    assert report == ImportReport(customers_created=2, contacts_created=3)
    assert row_counts(db) == (2, 3, 4, 0)
    ada = contact_by_email(db, "ada@acme.example")
    assert (ada.name, ada.role, ada.phone) == ("Ada Lovelace", "technical", "+14155550101")
    assert ada.available_24x7
    assert ada.active
    bob = contact_by_email(db, "bob@acme.example")
    assert (bob.role, bob.phone, bob.pin_hash, bob.available_24x7, bob.active) == (
        "end_user",
        None,
        None,
        False,
        True,
    )
    assert contact_by_email(db, "ada.lovelace@acme.example").id == ada.id


def test_importing_the_same_file_again_changes_nothing(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, ACME + "\n" + GLOBEX)
    import_file(db, path)
    ada_before = contact_by_email(db, "ada@acme.example")

    report = import_file(db, path)

    assert report == ImportReport(unchanged=5)
    assert row_counts(db) == (2, 3, 4, 0)
    ada_after = contact_by_email(db, "ada@acme.example")
    assert ada_after.pin_hash == ada_before.pin_hash
    assert ada_after.updated_at == ada_before.updated_at


def test_changed_rows_are_updated(db: Database, tmp_path: Path) -> None:
    import_file(db, write(tmp_path, ACME))
    changed = ACME.replace("+14155550101", "+14155550109").replace(
        'emails = ["ada.lovelace@acme.example"]', 'emails = ["lovelace@acme.example"]'
    )

    report = import_file(db, write(tmp_path, changed.replace("2027-12-31", "2028-12-31")))

    assert report == ImportReport(customers_updated=1, contacts_updated=1, unchanged=1)
    ada = contact_by_email(db, "lovelace@acme.example")
    assert ada.phone == "+14155550109"
    with pytest.raises(NoResultFound):
        contact_by_email(db, "ada.lovelace@acme.example")
    assert row_counts(db) == (1, 2, 3, 0)


BAD = """\
[[customers]]
name = "Acme Corp"
offering = "IXCloud Enterprise"
support_start = 2026-01-01
support_end = 2025-12-31
colour = "red"

  [[customers.contacts]]
  name = "Ada Lovelace"
  email = "ada@acme.example"
  phone = "415 555 0101"
  role = "manager"
  pin = "12"

  [[customers.contacts]]
  email = "ADA@acme.example"
  role = "technical"
  active = "yes"

[[customers]]
name = "Acme Corp"
offering = "IXCloud"
support_start = "2026-01-01"
support_end = 2027-12-31

  [[customers.contacts]]
  name = "No Address"
  role = "technical"
"""


def test_a_bad_file_reports_every_problem_and_writes_nothing(db: Database, tmp_path: Path) -> None:
    import_file(db, write(tmp_path, GLOBEX, "good.toml"))
    before = row_counts(db)

    problems = problems_of(db, write(tmp_path, BAD))

    expected = [
        ("line 1 ", "offering"),
        ("line 1 ", "support_end"),
        ("line 1 ", "colour"),
        ("line 8 ", "phone"),
        ("line 8 ", "role"),
        ("line 8 ", "pin"),
        ("line 15 ", "name: missing"),
        ("line 15 ", "active"),
        ("line 15 ", "email: 'ada@acme.example' is also given at line 8"),
        ("line 20 ", "name: 'Acme Corp' is also given at line 1"),
        ("line 20 ", "support_start"),
        ("line 26 ", "email: missing"),
    ]
    for line, text in expected:
        assert any(p.startswith(line) and text in p for p in problems), (line, text, problems)
    assert len(problems) == len(expected), problems
    assert not any("12" in p for p in problems if "pin" in p)  # a PIN is never echoed
    assert row_counts(db) == before


def test_invalid_toml_is_reported_with_its_line(db: Database, tmp_path: Path) -> None:
    problems = problems_of(db, write(tmp_path, ACME + 'name = "again"\n'))

    assert len(problems) == 1
    assert problems[0].startswith("line 20: invalid TOML")
    assert row_counts(db) == (0, 0, 0, 0)
    problems = problems_of(db, write(tmp_path, ACME + 'note = """unterminated\n'))
    assert problems == ["line 20: invalid TOML: Unterminated string at the end"]


def test_an_empty_or_unreadable_file_is_a_problem(db: Database, tmp_path: Path) -> None:
    assert "no [[customers]]" in problems_of(db, write(tmp_path, "# nothing\n"))[0]
    assert "cannot read" in problems_of(db, tmp_path / "missing.toml")[0]


def test_an_address_of_another_customer_is_refused(db: Database, tmp_path: Path) -> None:
    import_file(db, write(tmp_path, GLOBEX, "globex.toml"))
    stolen = ACME.replace("bob@acme.example", "HEDY@globex.example")

    problems = problems_of(db, write(tmp_path, stolen))

    assert len(problems) == 1
    assert problems[0].startswith('line 16 (contact "Bob Builder"): email:')
    assert "'hedy@globex.example' already belongs to 'Hedy Lamarr'" in problems[0]
    assert row_counts(db) == (1, 1, 1, 0)


REPLACEMENT = """\
  [[customers.contacts]]
  name = "Carol Jones"
  email = "carol@acme.example"
  role = "technical"
  replaces = "BOB@acme.example"
"""


def test_replaces_records_a_transfer_and_deactivates_the_old_contact(
    db: Database, tmp_path: Path
) -> None:
    import_file(db, write(tmp_path, ACME))
    without_bob = ACME.split('  [[customers.contacts]]\n  name = "Bob', maxsplit=1)[0]
    path = write(tmp_path, without_bob + REPLACEMENT)

    report = import_file(db, path)

    assert report == ImportReport(
        contacts_created=1, contacts_updated=1, unchanged=2, transfers_recorded=1
    )
    bob, carol = (
        contact_by_email(db, "bob@acme.example"),
        contact_by_email(db, "carol@acme.example"),
    )
    assert not bob.active
    assert carol.active
    with db.transaction() as session:
        transfer = session.scalars(select(ContactTransfer)).one()
    assert (transfer.from_contact_id, transfer.to_contact_id) == (bob.id, carol.id)
    assert transfer.customer_id == carol.customer_id
    assert import_file(db, path) == ImportReport(unchanged=3)
    assert row_counts(db) == (1, 3, 4, 1)


def test_replacing_a_contact_listed_in_the_same_file(db: Database, tmp_path: Path) -> None:
    report = import_file(db, write(tmp_path, ACME + REPLACEMENT))

    assert report == ImportReport(customers_created=1, contacts_created=3, transfers_recorded=1)
    assert not contact_by_email(db, "bob@acme.example").active
    contradiction = ACME.replace('role = "end_user"', 'role = "end_user"\n  active = true')
    problems = problems_of(db, write(tmp_path, contradiction + REPLACEMENT))
    assert problems == [
        'line 16 (contact "Bob Builder"): active: is true, but line 21 (contact "Carol Jones")'
        " replaces it"
    ]


def test_replaces_must_name_a_contact_of_the_same_customer(db: Database, tmp_path: Path) -> None:
    import_file(db, write(tmp_path, GLOBEX, "globex.toml"))
    path = write(tmp_path, ACME + REPLACEMENT.replace("BOB@acme", "hedy@globex"))
    assert "is a contact of another customer" in problems_of(db, path)[0]
    path = write(tmp_path, ACME + REPLACEMENT.replace("BOB@acme", "nobody@acme"))
    assert "no contact of this customer has 'nobody@acme.example'" in problems_of(db, path)[0]


def test_pins_are_stored_hashed_and_verify(db: Database, tmp_path: Path) -> None:
    import_file(db, write(tmp_path, ACME))
    stored = contact_by_email(db, "ada@acme.example").pin_hash
    assert stored is not None
    assert "4321" not in stored
    assert stored.startswith("scrypt$")
    assert verify_secret("4321", stored)
    assert not verify_secret("1234", stored)

    assert import_file(db, write(tmp_path, ACME.replace("4321", "98765"))).contacts_updated == 1
    renewed = contact_by_email(db, "ada@acme.example").pin_hash
    assert renewed is not None
    assert verify_secret("98765", renewed)
    without_pin = ACME.replace('pin = "4321"\n', "")
    assert import_file(db, write(tmp_path, without_pin)) == ImportReport(unchanged=3)
    assert contact_by_email(db, "ada@acme.example").pin_hash == renewed


def test_the_demo_file_imports_cleanly(db: Database) -> None:
    path = ROOT / "config" / "demo.toml"

    report = import_file(db, path)

    assert report == ImportReport(customers_created=3, contacts_created=6)
    assert not contact_by_email(db, "charles@acme.example").active
    assert contact_by_email(db, "alan@globex.example").role == "end_user"
    assert import_file(db, path) == ImportReport(unchanged=9)


def generated_file(customers: int, contacts_each: int) -> str:
    parts = []
    for c in range(customers):
        parts.append(
            f'[[customers]]\nname = "Customer {c}"\noffering = "IXCloud"\n'
            "support_start = 2026-01-01\nsupport_end = 2027-12-31\n"
        )
        for k in range(contacts_each):
            pin = f'pin = "{1000 + k}"\n' if k % 4 == 0 else ""
            parts.append(
                f'[[customers.contacts]]\nname = "Contact {c}-{k}"\n'
                f'email = "c{c}.k{k}@customer{c}.example"\n'
                f'phone = "+1415555{c:02d}{k:02d}"\nrole = "technical"\n{pin}'
            )
    return "\n".join(parts)


def test_a_large_file_imports_in_one_go_with_progress(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, generated_file(customers=20, contacts_each=100))

    report = import_file(db, path, progress=True)

    assert report == ImportReport(customers_created=20, contacts_created=2000)
    assert "contacts" in capsys.readouterr().err
    assert row_counts(db) == (20, 2000, 2000, 0)
    assert import_file(db, path) == ImportReport(unchanged=2020)


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+14155550101", None, "+14155550101"),
        (" +1 (415) 555-0101 ", None, "+14155550101"),
        ("415-555-0101", "US", "+14155550101"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("415-555-0101", None, None),
        ("+15555550101", None, None),
        ("+266696687", None, None),
        ("anonymous", None, None),
        ("Restricted", None, None),
        ("unknown", None, None),
        ("", None, None),
    ],
)
def test_normalise_phone(text: str, region: str | None, expected: str | None) -> None:
    assert normalise_phone(text, region) == expected


def test_a_pin_hashed_with_another_work_factor_is_rehashed(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, ACME)
    import_file(db, path)
    with db.transaction() as session:
        query = select(Contact).join(ContactEmail).where(ContactEmail.address == "ada@acme.example")
        session.scalars(query).one().pin_hash = hash_secret("4321", n=2**8)  # the old factor

    assert import_file(db, path) == ImportReport(contacts_updated=1, unchanged=2)
    stored = contact_by_email(db, "ada@acme.example").pin_hash
    assert stored is not None
    assert not pin_needs_rehash(stored)
    assert verify_secret("4321", stored)
