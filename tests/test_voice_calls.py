"""Whole calls through the phone door, with a scripted caller and Twilio played by the driver:
signed posts to the app on a real local HTTP server, the TwiML followed verb by verb, a real RQ
worker, the mail acknowledgment at a real relay, the SMS at a local Messages API. Every test runs
on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from intake.accounts.credentials import hash_pin
from intake.settings import Settings
from intake.store.models import Contact, utcnow
from tests.helpers import Relay, add_contact
from tests.twilio_driver import (
    FULL_ATTESTATION,
    Describe,
    HangUp,
    Keys,
    Phone,
    Pickup,
    Silence,
    Speech,
    serve_phone,
)
from voice import callers
from voice.context import VoiceContext

ADA = "+14155550101"
DESCRIPTION = "Since nine every export fails with error seventeen and nobody can work"


@pytest.fixture
def phone(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    with serve_phone(settings, redis_url, relay) as served:
        # The callers here call from fully attested numbers: a caller ID that names one
        # contact identifies the caller (tests/test_voice_callerauth.py tries the rest).
        served.attestation = FULL_ATTESTATION
        yield served


def add_caller(phone: Phone, email: str = "ada@acme.example", **values: object) -> int:
    """A contact with a phone number and the PIN 4321 (unless told otherwise)."""
    pin = str(values.pop("pin", "4321"))
    contact_id = add_contact(phone.rt.db, email, **{"phone": ADA, **values})  # type: ignore[arg-type]
    with phone.rt.db.transaction() as session:
        session.get_one(Contact, contact_id).pin_hash = hash_pin(pin)
    return contact_id


def test_a_known_caller_opens_a_request_and_gets_both_acknowledgments(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("2"), Describe(DESCRIPTION))
    assert "Hello Ada Lovelace" in call.said and "registered phone number" not in call.said
    assert "Please choose the severity" in call.said
    assert "Your request number is S R, 0, 0, 0, 0, 0, 1." in call.said  # digit by digit
    assert call.finish() == [204, 204, 204]  # recording, transcription, status
    (request,) = phone.requests()
    assert (request.channel, request.severity, request.initial_severity) == ("phone", 2, 2)
    assert request.response_due_at - request.created_at == dt.timedelta(hours=2)
    assert request.description == DESCRIPTION
    (row,) = phone.intake()
    assert (row.channel, row.sender, row.outcome, row.reason) == (
        "phone",
        ADA,
        "accepted",
        "new_request",
    )
    # The door opened the bare request while the caller listened; the rest is the worker's.
    assert (row.request_id, row.state, row.dedupe_key) == (
        request.id,
        "pending",
        "call:" + call.player.call_sid,
    )
    assert phone.relay.messages == [] and phone.sms.sent == []
    phone.drain()
    _assert_acknowledged(phone, request.id)
    assert [r.state for r in phone.intake()] == ["done"]


def _assert_acknowledged(phone: Phone, request_id: int) -> None:
    (sms,) = phone.sms.sent
    assert (sms.to, sms.sender) == (ADA, "+14155550100")
    assert "SR-000001" in sms.body and "Severity" in sms.body
    (mail,) = phone.relay.messages
    assert mail["Subject"] == "[SR-000001] Received: Severity 2 phone call from Ada Lovelace"
    assert mail["To"].addresses[0].addr_spec == "ada@acme.example"
    kinds = [kind for kind, _ in phone.events(request_id)]
    assert kinds[:3] == ["created", "voicemail", "transcription"]
    assert sorted(kinds[3:]) == ["acknowledged", "acknowledged"]  # by mail and by SMS
    (request,) = phone.requests()
    assert request.status == "acknowledged" and request.acknowledged_at is not None


@pytest.mark.parametrize(
    "caller_id",
    ["anonymous", "+266696687", "", "restricted", "+14155559999", "shared"],
    ids=["anonymous", "twilio-placeholder", "empty", "restricted", "unknown", "shared"],
)
def test_a_caller_not_named_by_the_caller_id_gives_number_and_pin(
    phone: Phone, caller_id: str
) -> None:
    contact_id = add_caller(phone)
    if caller_id == "shared":  # a desk phone two contacts registered
        add_caller(phone, "grace@acme.example", name="Grace Hopper", pin="2468")
        caller_id = ADA
    call = phone.call(
        caller_id, Keys("14155550101#"), Keys("4321#"), Keys("3"), Describe(DESCRIPTION)
    )
    assert "registered phone number" in call.said and "PIN" in call.said
    call.finish()
    (request,) = phone.requests()
    assert (request.contact_id, request.severity) == (contact_id, 3)
    assert call.session().identified_by == "pin"
    (row,) = phone.intake()
    assert (row.sender, row.outcome) == (ADA, "accepted")


def test_the_pin_is_hashed_outside_the_writing_transaction(
    phone: Phone, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PIN's hash costs tens of milliseconds by design: it is worked out before the step's
    writing transaction (on SQLite the process's one writer, which every other call's step
    waits for), and the transaction uses the verdict."""
    contact_id = add_caller(phone)
    writing = threading.local()
    open_transaction = VoiceContext.transaction

    @contextlib.contextmanager
    def noted_transaction(self: VoiceContext) -> Iterator[Session]:
        writing.open = True
        try:
            with open_transaction(self) as session:
                yield session
        finally:
            writing.open = False

    hashed_in_transaction: list[bool] = []
    verify = callers.verify_secret

    def noted_verify(secret: str, stored: str) -> bool:
        hashed_in_transaction.append(getattr(writing, "open", False))
        return verify(secret, stored)

    monkeypatch.setattr(VoiceContext, "transaction", noted_transaction)
    monkeypatch.setattr(callers, "verify_secret", noted_verify)
    call = phone.call(
        "anonymous", Keys("14155550101#"), Keys("4321#"), Keys("3"), Describe(DESCRIPTION)
    )
    call.finish()
    assert call.session().identified_by == "pin"
    assert [r.contact_id for r in phone.requests()] == [contact_id]
    assert hashed_in_transaction == [False]


def test_three_wrong_pins_end_the_call_and_lock_the_pin(phone: Phone) -> None:
    contact_id = add_caller(phone)
    wrong = [Keys("14155550101#"), Keys("1111#")] * 3
    call = phone.call("anonymous", *wrong)
    assert call.said.count("do not match our records") == 2
    assert "we could not identify you" in call.said
    assert "plus 1, 4, 1, 5, 5, 5, 5, 0, 1, 9, 9" in call.said  # the non-technical number
    assert call.said.endswith("Goodbye.")
    locked_until = phone.contact(contact_id).pin_locked_until
    assert locked_until is not None and locked_until > utcnow() + dt.timedelta(minutes=10)
    call.finish()
    (row,) = phone.intake()
    assert (row.outcome, row.reason, row.sender) == ("rejected", "unknown_sender", ADA)
    assert phone.requests() == []
    # While locked even the right PIN is refused, without telling the caller it is locked.
    again = phone.call("anonymous", Keys("14155550101#"), Keys("4321#"), HangUp())
    assert "do not match our records" in again.said


def test_a_right_pin_after_a_wrong_one_resets_the_count(phone: Phone) -> None:
    contact_id = add_caller(phone)
    call = phone.call(
        "anonymous",
        Keys("14155550101#"),
        Keys("9999#"),
        Keys("14155550101#"),
        Keys("4321#"),
        HangUp(),
    )
    assert "Please choose the severity" in call.said
    contact = phone.contact(contact_id)
    assert (contact.pin_failures, contact.pin_locked_until) == (0, None)


@pytest.mark.parametrize(
    ("said", "severity"),
    [("severity two", 2), ("sev 3 please", 3), ("it's just a question", 4), ("severity for", 4)],
)
def test_the_severity_can_be_spoken(phone: Phone, said: str, severity: int) -> None:
    add_caller(phone)
    call = phone.call(ADA, Speech(said, 0.91), Describe(DESCRIPTION))
    assert f"We understood severity {severity}." in call.said
    assert "To confirm" not in call.said
    (request,) = phone.requests()
    assert request.severity == severity


def test_speech_heard_with_low_confidence_is_confirmed_by_a_key(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(
        ADA,
        Speech("severity three", 0.41),
        Keys("2"),  # "choose again"
        Speech("severity two", 0.35),
        Keys("1"),
        Describe(DESCRIPTION),
    )
    assert "To confirm severity 3, press 1" in call.said
    assert "Let us choose the severity again." in call.said
    (request,) = phone.requests()
    assert request.severity == 2


def test_unclear_speech_is_asked_again(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Speech("hello is anyone there", 0.95), Keys("4"), Describe(DESCRIPTION))
    assert "Sorry, we did not understand that." in call.said
    assert phone.requests()[0].severity == 4


@pytest.mark.parametrize("chosen_by", [Keys("1"), Speech("critical, the service is down", 0.97)])
def test_severity_1_is_read_back_with_its_meaning_and_confirmed(
    phone: Phone, chosen_by: Keys | Speech
) -> None:
    add_caller(phone)
    call = phone.call(ADA, chosen_by, Keys("1"), Describe(DESCRIPTION), Keys("#"))
    assert "Severity 1 means: service down, you cannot continue work." in call.said
    assert "To confirm severity 1, press 1" in call.said
    (request,) = phone.requests()
    assert request.severity == 1
    assert request.response_due_at - request.created_at == dt.timedelta(hours=1)


def test_severity_1_not_confirmed_goes_back_to_the_menu(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("1"), Keys("9"), HangUp())
    assert "Let us choose the severity again." in call.said
    call.finish()
    assert phone.requests() == []
    (row,) = phone.intake()
    assert (row.outcome, row.reason) == ("suppressed", "call_abandoned")


def test_severity_1_caller_is_put_through_to_the_engineer_who_presses_1(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("1"), Keys("1"), Describe(DESCRIPTION), Keys("1"), Pickup("accept"))
    assert "engineer on call now, press 1" in call.said and "Connecting you" in call.said
    whisper = call.caller.said("engineer")
    assert "Severity 1 call from Ada Lovelace of Acme Corp" in whisper
    assert "S R, 0, 0, 0, 0, 0, 1" in whisper and "Press 1 to accept" in whisper
    session = call.session()
    assert (session.accepted_by, session.state, session.paged_at) == (0, "done", None)
    call.finish()
    phone.drain()
    assert [s.to for s in phone.sms.sent] == [ADA]  # the acknowledgment only: nobody paged


def test_an_engineer_who_does_not_answer_is_followed_by_the_next(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(
        ADA,
        Keys("1"),
        Keys("1"),
        Describe(DESCRIPTION),
        Keys("1"),
        Pickup("no-answer"),
        Pickup("accept"),
    )
    assert "Trying the next engineer on call." in call.said
    assert call.session().accepted_by == 1


def test_voicemail_never_takes_a_severity_1_and_the_exhausted_rota_is_paged(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(
        ADA,
        Keys("1"),
        Keys("1"),
        Describe(DESCRIPTION),
        Keys("1"),
        Pickup("voicemail"),
        Pickup("decline"),
    )
    assert "The call was not accepted." in call.caller.said("engineer")
    assert "is logged, and the engineers on call have been paged" in call.said
    assert "Your request S R, 0, 0, 0, 0, 0, 1 is logged" in call.said
    assert call.session().accepted_by is None
    call.finish()
    phone.drain()
    pages = [s for s in phone.sms.sent if s.to != ADA]
    assert sorted(s.to for s in pages) == ["+14155550190", "+14155550191"]
    assert all("SEV1 SR-000001" in s.body and ADA in s.body for s in pages)


def test_a_caller_who_hangs_up_while_recording_still_gets_a_request(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("2"), HangUp(said=DESCRIPTION))
    assert sorted(call.callbacks()) == ["recorded", "recording", "status", "transcription"]
    call.finish("status")  # the hang-up reaches us first
    (request,) = phone.requests()
    assert request.severity == 2
    call.finish()
    kinds = [kind for kind, _ in phone.events(request.id)]
    assert kinds == ["created", "voicemail", "transcription"]
    phone.drain()
    assert len(phone.sms.sent) == 1 and len(phone.relay.messages) == 1


def test_a_hang_up_at_the_tone_still_opens_the_request(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("3"), HangUp())
    call.finish()
    (request,) = phone.requests()
    assert [kind for kind, _ in phone.events(request.id)] == ["created"]
    assert request.severity == 3


def test_an_empty_recording_is_asked_for_once_more(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("3"), Silence(), Describe(DESCRIPTION))
    assert call.said.count("We did not hear a description. Let us try once more.") == 1
    call.finish()
    (request,) = phone.requests()
    assert "voicemail" in [kind for kind, _ in phone.events(request.id)]


def test_two_empty_recordings_still_open_the_request(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("3"), Silence(), Describe("uh", seconds=1))
    assert "Your request number is" in call.said
    (request,) = phone.requests()
    assert [kind for kind, _ in phone.events(request.id)] == ["created"]


def test_status_by_phone_tells_severity_and_status_of_the_customers_request(phone: Phone) -> None:
    add_caller(phone)
    phone.call(ADA, Keys("2"), Describe(DESCRIPTION)).finish()
    phone.drain()
    call = phone.call(ADA, Keys("9"), Keys("1#"), Keys("9"), Keys("000042#"), HangUp())
    assert "Request S R, 0, 0, 0, 0, 0, 1 has severity 2. Its status is: acknowledged." in call.said
    assert "We found no request of your company with the number 0, 0, 0, 0, 4, 2." in call.said
    call.finish()
    rows = phone.intake()
    assert [(r.outcome, r.reason) for r in rows] == [
        ("accepted", "new_request"),
        ("suppressed", "status_inquiry"),
    ]


def test_another_customers_request_is_not_told(phone: Phone) -> None:
    add_caller(phone)
    phone.call(ADA, Keys("2"), Describe(DESCRIPTION))
    add_contact(phone.rt.db, "bob@other.example", customer="Other", phone="+14155550150")
    call = phone.call("+14155550150", Keys("9"), Keys("1#"), HangUp())
    assert "We found no request of your company" in call.said
    assert "has severity" not in call.said


@pytest.mark.parametrize(
    ("values", "reason", "words"),
    [
        ({"active": False}, "inactive_contact", "no longer active"),
        (
            {"support_end": dt.date.today() - dt.timedelta(days=1)},
            "outside_support_period",
            "renew",
        ),
    ],
)
def test_the_entitlement_rules_of_mail_refuse_a_caller(
    phone: Phone, values: dict[str, object], reason: str, words: str
) -> None:
    add_caller(phone, **values)
    call = phone.call(ADA)
    assert words in call.said and call.said.endswith("Goodbye.")
    assert "Please choose the severity" not in call.said
    call.finish()
    (row,) = phone.intake()
    assert (row.outcome, row.reason) == ("rejected", reason)


def test_an_end_user_may_report_platform_problems_only(phone: Phone) -> None:
    add_caller(phone, role="end_user")
    refused = phone.call(ADA, Keys("3"))
    assert "platform or about a recording" in refused.said
    assert "End users may report platform and recording problems only" in refused.said
    accepted = phone.call(ADA, Speech("the platform", 0.9), Keys("2"), Describe(DESCRIPTION))
    assert "Your request number is" in accepted.said
    rows = phone.intake()
    assert [(r.outcome, r.reason) for r in rows] == [
        ("rejected", "category_not_allowed"),
        ("accepted", "new_request"),
    ]


def test_a_silent_caller_is_let_go_after_three_prompts(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Silence(), Silence(), Silence())
    assert call.said.count("We did not get an answer.") == 2
    assert call.said.endswith("Please call again when you are ready. Goodbye.")
    call.finish()
    (row,) = phone.intake()
    assert (row.outcome, row.reason) == ("suppressed", "call_abandoned")
