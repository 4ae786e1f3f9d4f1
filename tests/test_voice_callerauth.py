"""Who a caller is, as a forger would test it: caller IDs with every STIR/SHAKEN verdict Twilio
passes (``StirVerstat``) under each ``[voice] caller_id_trust``, status and Severity 1 that need
a PIN, and PIN guesses spread over many contacts and numbers against the hourly budgets. Twilio
is played by the driver (signed with Twilio's own RequestValidator); every test runs on SQLite
and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from intake.accounts.credentials import create_token, hash_pin, hash_secret, verify_secret
from intake.errors import ConfigError
from intake.policy import VoicePolicy, load_policy
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import Contact, PinFailure, PinLockout, utcnow
from tests.helpers import Relay, add_contact
from tests.twilio_driver import Describe, HangUp, Keys, Phone, serve_phone
from voice.callers import check_pin, describe_lockout, verify_pin_ahead

HEDY = "+14155550123"
HEDY_KEYS = HEDY.lstrip("+") + "#"
ABROAD = "+442079460123"  # an international caller ID: Twilio passes no StirVerstat for it
PIN = "4321"
DESCRIPTION = "Since nine every export fails with error seventeen and nobody can work"
VERSTATS = [
    "TN-Validation-Passed-A",
    "TN-Validation-Passed-B",
    "TN-Validation-Passed-C",
    "TN-Validation-Failed-A",
    "TN-Validation-Failed-B",
    "TN-Validation-Failed-C",
    "No-TN-Validation",
    None,  # absent
]


@contextmanager
def serve(settings: Settings, redis_url: str, relay: Relay, **voice: object) -> Iterator[Phone]:
    """The phone door with the ``[voice]`` table ``voice``."""
    tables = dict(settings.policy) | {"voice": voice}
    with serve_phone(settings.replace(policy=tables), redis_url, relay) as served:
        yield served


@pytest.fixture
def phone(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    with serve(settings, redis_url, relay) as served:
        yield served


def add_hedy(phone: Phone, number: str = HEDY, **values: Any) -> int:
    contact_id = add_contact(
        phone.rt.db, "hedy@acme.example", name="Hedy Lamarr", phone=number, **values
    )
    set_pin(phone.rt.db, contact_id, PIN)
    return contact_id


def set_pin(db: Database, contact_id: int, pin: str) -> None:
    with db.transaction() as session:
        session.get_one(Contact, contact_id).pin_hash = hash_pin(pin)


def test_an_unattested_caller_id_is_not_greeted_by_name_without_the_pin(phone: Phone) -> None:
    """A call showing Hedy's number, with no attestation, must not be taken for Hedy."""
    add_hedy(phone)
    call = phone.call(HEDY, HangUp())
    assert "Hello Hedy Lamarr" not in call.said
    assert "registered phone number" in call.said
    call.finish()
    assert phone.requests() == []
    assert phone.intake()[0].contact_id is None


def expected_by_caller_id(trust: str, verstat: str | None) -> bool:
    """The table the phone door is held to: only full attestation, unless told otherwise."""
    return trust == "always" or (trust == "attested" and verstat == "TN-Validation-Passed-A")


@pytest.mark.parametrize("trust", ["attested", "always", "never"])
@pytest.mark.parametrize(
    ("caller_id", "verstat"),
    [(HEDY, v) for v in VERSTATS] + [(ABROAD, None)],
    ids=[v or "absent" for v in VERSTATS] + ["international"],
)
def test_each_attestation_under_each_trust(
    settings: Settings,
    redis_url: str,
    relay: Relay,
    trust: str,
    caller_id: str,
    verstat: str | None,
) -> None:
    with serve(settings, redis_url, relay, caller_id_trust=trust) as phone:
        contact_id = add_hedy(phone, caller_id)
        if expected_by_caller_id(trust, verstat):
            call = phone.call(caller_id, Keys("3"), Describe(DESCRIPTION), attestation=verstat)
            assert "Hello Hedy Lamarr" in call.said
            assert "registered phone number" not in call.said and "PIN" not in call.said
            assert call.session().identified_by == "caller_id"
        else:
            typed = Keys(caller_id.lstrip("+") + "#")
            script = (typed, Keys(PIN + "#"), Keys("3"), Describe(DESCRIPTION))
            call = phone.call(caller_id, *script, attestation=verstat)
            said = call.said
            assert "registered phone number" in said and "PIN" in said
            assert said.index("registered phone number") < said.index("Hello Hedy Lamarr")
            assert call.session().identified_by == "pin"
        assert call.session().attestation == (verstat or "")
        call.finish()
        (request,) = phone.requests()
        assert (request.contact_id, request.severity) == (contact_id, 3)
        (row,) = phone.intake()
        strongly = call.session().identified_by == "pin" or verstat == "TN-Validation-Passed-A"
        assert row.sender_verified == strongly


def test_a_bad_trust_setting_stops_start_up_with_a_sentence() -> None:
    with pytest.raises(ConfigError, match="caller_id_trust must be one of"):
        load_policy({"voice": {"caller_id_trust": "sometimes"}})
    with pytest.raises(ConfigError, match="pin_failures_per_hour must be a whole number"):
        load_policy({"voice": {"pin_failures_per_hour": 0}})
    with pytest.raises(ConfigError, match="unknown key 'caller_id'"):
        load_policy({"voice": {"caller_id": "always"}})
    assert load_policy({}).voice == VoicePolicy("attested", 30, 10)


@pytest.fixture
def trusting(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    """The phone door with caller_id_trust = "always": caller IDs name callers unattested."""
    with serve(settings, redis_url, relay, caller_id_trust="always") as served:
        yield served


def test_status_by_key_9_needs_the_pin_after_an_unattested_caller_id(trusting: Phone) -> None:
    add_hedy(trusting)
    call = trusting.call(HEDY, Keys("9"), HangUp(), attestation="TN-Validation-Passed-B")
    assert "Hello Hedy Lamarr" in call.said
    assert "PIN of your registered phone number" in call.said
    assert "status" not in call.said.split("press 9.")[-1].lower()
    assert "Please enter the request number" not in call.said
    call.finish()
    (row,) = trusting.intake()
    assert (row.outcome, row.reason) == ("suppressed", "call_abandoned")


def test_status_by_key_9_after_the_pin(trusting: Phone) -> None:
    contact_id = add_hedy(trusting)
    first = trusting.call(HEDY, Keys("4"), Describe(DESCRIPTION), attestation="No-TN-Validation")
    first.finish()
    (request,) = trusting.requests()
    assert request.contact_id == contact_id
    call = trusting.call(
        HEDY, Keys("9"), Keys(PIN + "#"), Keys("1#"), HangUp(), attestation="No-TN-Validation"
    )
    assert "PIN of your registered phone number" in call.said
    assert "Request S R, 0, 0, 0, 0, 0, 1 has severity 4" in call.said
    assert call.session().identified_by == "pin"


def test_status_by_key_9_with_full_attestation_needs_no_pin(phone: Phone) -> None:
    add_hedy(phone)
    call = phone.call(HEDY, Keys("9"), Keys("1#"), HangUp(), attestation="TN-Validation-Passed-A")
    assert "PIN" not in call.said
    assert "We found no request of your company with the number 1" in call.said


def test_a_wrong_pin_for_key_9_tells_nothing_and_names_nobody(trusting: Phone) -> None:
    add_hedy(trusting)
    wrong = [Keys("1111#"), Keys(HEDY_KEYS), Keys("2222#"), Keys(HEDY_KEYS), Keys("3333#")]
    call = trusting.call(HEDY, Keys("9"), *wrong, attestation="TN-Validation-Failed-A")
    assert "we could not identify you" in call.said
    assert "Please enter the request number" not in call.said
    call.finish()
    (row,) = trusting.intake()
    assert (row.outcome, row.contact_id, row.sender_verified) == ("rejected", None, False)


def test_severity_1_needs_the_pin_after_an_unattested_caller_id(trusting: Phone) -> None:
    contact_id = add_hedy(trusting)
    call = trusting.call(
        HEDY,
        Keys("1"),
        Keys(PIN + "#"),
        Keys("1"),
        Describe(DESCRIPTION),
        HangUp(),
        attestation="TN-Validation-Passed-C",
    )
    said = call.said
    assert said.index("You chose severity 1") < said.index("PIN of your registered phone number")
    assert said.index("PIN of your registered") < said.index("To confirm severity 1, press 1")
    call.finish()
    (request,) = trusting.requests()
    assert (request.contact_id, request.severity) == (contact_id, 1)


def test_severity_2_with_an_unattested_caller_id_under_always_needs_no_pin(
    trusting: Phone,
) -> None:
    add_hedy(trusting)
    call = trusting.call(HEDY, Keys("2"), Describe(DESCRIPTION), attestation="No-TN-Validation")
    assert "PIN" not in call.said
    call.finish()
    (request,) = trusting.requests()
    assert request.severity == 2


# --- PIN budgets ----------------------------------------------------------------------------


def metrics(phone: Phone) -> dict[str, dict[tuple[Any, ...], float]]:
    import http.client

    token = create_token(phone.rt.db, "scraper")
    host, port = phone.app_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    text = connection.getresponse().read().decode()
    connection.close()
    found: dict[str, dict[tuple[Any, ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def budgeted(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    with serve(settings, redis_url, relay, pin_failures_per_hour=15) as served:
        yield served


def test_pin_guesses_spread_over_ten_contacts_meet_the_global_budget(budgeted: Phone) -> None:
    phone = budgeted
    numbers = [f"+1415555{7000 + i}" for i in range(10)]
    contacts = [
        add_contact(phone.rt.db, f"c{i}@acme.example", name=f"Contact {i}", phone=number)
        for i, number in enumerate(numbers)
    ]
    for contact_id in contacts:
        set_pin(phone.rt.db, contact_id, PIN)
    heard = []
    for i, number in enumerate(numbers):  # two guesses a contact, each call from another number
        # From the 15th wrong PIN on (the 8th call's first) the call ends at its first PIN.
        open_calls = i < 7
        guesses = [Keys(number.lstrip("+") + "#"), Keys(f"{1000 + i}#")] * (2 if open_calls else 1)
        call = phone.call(f"+1628555{8000 + i}", *guesses, *([HangUp()] if open_calls else []))
        heard.append(call.said)
        call.finish()
    # 15 wrong PINs an hour from everywhere: the 15th (the 8th call's first) locked PIN entry.
    assert all("we could not identify you" not in said for said in heard[:7])
    assert all("we could not identify you" in said for said in heard[7:])
    assert all(c.pin_locked_until is None for c in map(phone.contact, contacts))  # 2 each only
    # While locked, even a right PIN from an unrelated number is not checked.
    right = phone.call("anonymous", Keys(numbers[0].lstrip("+") + "#"), Keys(PIN + "#"))
    assert "Hello Contact 0" not in right.said and "we could not identify you" in right.said
    right.finish()
    lockouts = phone.rows(PinLockout)
    assert [(lock.scope, lock.level, lock.failures) for lock in lockouts] == [("*", 1, 15)]
    (locked,) = lockouts
    assert dt.timedelta(minutes=14) < locked.until - utcnow() <= dt.timedelta(minutes=15)
    rows = [r for r in phone.intake() if r.reason == "pin_lockout"]
    assert rows[0].id == locked.intake_id
    assert len(rows) == 4  # the call that spent the budget, and the three calls during the lock
    assert rows[0].detail.startswith("PIN entry locked for every caller until")
    assert "15 wrong PINs from everywhere within an hour" in rows[0].detail
    found = metrics(phone)
    assert found["intake_pin_lockouts_total"][(("scope", "all"),)] == 1
    assert found["intake_pin_lockouts_total"][(("scope", "number"),)] == 0
    assert found["intake_pin_failures_last_hour"][()] == 15


def test_one_number_meets_its_own_budget_and_others_still_get_in(phone: Phone) -> None:
    contact_id = add_hedy(phone)
    attacker = "+16285559999"
    for _ in range(3):  # 9 wrong PINs (Hedy's own PIN locks after 3; they count all the same)
        phone.call(attacker, *[Keys(HEDY_KEYS), Keys("1111#")] * 3).finish()
    assert phone.rows(PinLockout) == []
    tenth = phone.call(attacker, Keys(HEDY_KEYS), Keys("1111#"))  # ends at once
    assert "we could not identify you" in tenth.said
    lockouts = phone.rows(PinLockout)
    assert [(lock.scope, lock.level, lock.failures) for lock in lockouts] == [(attacker, 1, 10)]
    blocked = phone.call(attacker, Keys(HEDY_KEYS), Keys(PIN + "#"))
    assert "we could not identify you" in blocked.said
    with phone.rt.db.transaction() as session:  # Hedy's own lock lifted: only the budget holds
        session.get_one(Contact, contact_id).pin_locked_until = None
    blocked = phone.call(attacker, Keys(HEDY_KEYS), Keys(PIN + "#"))
    assert "we could not identify you" in blocked.said
    elsewhere = phone.call("anonymous", Keys(HEDY_KEYS), Keys(PIN + "#"), HangUp())
    assert "Hello Hedy Lamarr" in elsewhere.said


def test_locks_escalate_and_a_right_pin_upgrades_an_old_hash(db: Database) -> None:
    contact_id = add_contact(db, "hedy@acme.example", name="Hedy Lamarr", phone=HEDY)
    old_hash = hash_secret(PIN, n=2**8)  # as PINs were hashed before
    with db.transaction() as session:
        session.get_one(Contact, contact_id).pin_hash = old_hash
    voice = VoicePolicy(pin_failures_per_hour=1000, pin_failures_per_number_per_hour=3)
    start = utcnow()

    def guess(pin: str, at: dt.datetime, caller: str = "+16285550001") -> Any:
        with db.transaction() as session:
            checked = check_pin(session, caller, HEDY, pin, now=at, voice=voice)
            contact = session.get_one(Contact, contact_id)
            lockout = checked.lockout
            return (
                checked.contact is not None,
                lockout and (lockout.level, lockout.until - at),
                contact.pin_locked_until and contact.pin_locked_until - at,
            )

    assert guess("0000", start)[1:] == (None, None)
    assert guess("0001", start)[1:] == (None, None)
    third = guess("0002", start)  # the contact's 3rd failure, and the number's 3rd in the hour
    assert third == (False, (1, dt.timedelta(minutes=15)), dt.timedelta(minutes=15))
    # While the number is locked even the right PIN is not checked.
    ten = dt.timedelta(minutes=10)
    assert guess(PIN, start + dt.timedelta(minutes=5)) == (False, (1, ten), ten)
    later = start + dt.timedelta(minutes=16)  # the number's lock is over, its failures are not
    assert guess("0003", later)[1] == (2, dt.timedelta(hours=1))
    much_later = start + dt.timedelta(hours=3)
    identified, lockout, _ = guess(PIN, much_later, caller="+16285550002")
    assert (identified, lockout) == (True, None)
    with db.sessions() as session:
        contact = session.get_one(Contact, contact_id)
        assert contact.pin_hash != old_hash and contact.pin_hash.split("$")[1] == str(2**14)
        assert verify_secret(PIN, contact.pin_hash)
        assert (contact.pin_failures, contact.pin_locks) == (0, 0)
        levels = session.scalars(select(PinLockout.level).order_by(PinLockout.id)).all()
        assert levels == [1, 2]
    guess("0004", much_later, caller="+16285550003")  # failures past every window are dropped
    with db.sessions() as session:
        assert session.scalars(select(PinFailure.caller)).all() == ["+16285550003"]


def test_a_contacts_own_locks_double_in_a_row(db: Database) -> None:
    contact_id = add_contact(db, "hedy@acme.example", name="Hedy Lamarr", phone=HEDY)
    set_pin(db, contact_id, PIN)
    voice = VoicePolicy(pin_failures_per_hour=1000, pin_failures_per_number_per_hour=1000)
    at = utcnow()
    lengths = []
    for _ in range(3):
        for n in range(3):
            with db.transaction() as session:
                check_pin(session, f"+1628555000{n}", HEDY, "0000", now=at, voice=voice)
        with db.sessions() as session:
            until = session.get_one(Contact, contact_id).pin_locked_until
            assert until is not None
            lengths.append(until - at)
            at = until + dt.timedelta(seconds=1)
    assert lengths == [dt.timedelta(minutes=m) for m in (15, 30, 60)]


def test_describe_lockout_says_whom_and_why() -> None:
    until = dt.datetime(2026, 12, 3, 20, 15, tzinfo=dt.UTC)
    lockout = PinLockout(scope="+16285559999", level=2, failures=10, until=until)
    assert describe_lockout(lockout) == (
        "PIN entry locked for calls from +16285559999 until 2026-12-03 20:15 UTC (lock 2 in a "
        "row): 10 wrong PINs from this number within an hour."
    )


def test_the_voice_examples_of_the_readme_and_the_config_file_load() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[voice]" in b)
    assert load_policy(tomllib.loads(block)).voice == VoicePolicy()
    config = (root / "config" / "intake.toml").read_text()
    commented = config[config.index("# [voice]") :].split("\n\n")[0]
    uncommented = "\n".join(line.removeprefix("# ") for line in commented.splitlines())
    assert load_policy(tomllib.loads(uncommented)).voice == VoicePolicy()


def test_pin_verdicts_worked_out_ahead_count_only_for_the_hash_they_were_made_for(
    db: Database,
) -> None:
    """The step hashes the PIN before its writing transaction; if the contact's PIN changed in
    between, the verdict of the old hash is set aside and the new one is checked."""
    contact_id = add_contact(db, "hedy@acme.example", name="Hedy Lamarr", phone=HEDY)
    with db.transaction() as session:
        session.get_one(Contact, contact_id).pin_hash = hash_pin(PIN)
    voice = VoicePolicy(pin_failures_per_hour=1000, pin_failures_per_number_per_hour=1000)
    caller, now = "+16285550001", utcnow()
    with db.sessions() as session:
        ahead = verify_pin_ahead(session, caller, HEDY, PIN, now=now)
    assert list(ahead.values()) == [True]
    with db.transaction() as session:
        checked = check_pin(session, caller, HEDY, PIN, now=now, voice=voice, verdicts=ahead)
        assert checked.contact is not None and checked.contact.id == contact_id
        session.get_one(Contact, contact_id).pin_hash = hash_pin("8642")  # a new PIN is set
    with db.transaction() as session:
        checked = check_pin(session, caller, HEDY, PIN, now=now, voice=voice, verdicts=ahead)
        assert checked.contact is None  # the old hash's verdict no longer counts
        # Nor would a verdict against it: the new PIN is checked against the new hash.
        against = dict.fromkeys(ahead, False)
        checked = check_pin(session, caller, HEDY, "8642", now=now, voice=voice, verdicts=against)
        assert checked.contact is not None
