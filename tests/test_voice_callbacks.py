"""Twilio's asynchronous callbacks in adversarial orders: every order of the recording action,
the recording status, the transcription and the call's end, each sent twice, gives the same
one request with its voicemail and transcription once, and one acknowledgment of each kind."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from intake.settings import Settings
from intake.store.models import CallSession
from tests.helpers import Relay
from tests.test_voice_calls import ADA, DESCRIPTION, add_caller
from tests.twilio_driver import FULL_ATTESTATION, Describe, HangUp, Keys, Phone, serve_phone

CALLBACKS = ("recorded", "recording", "transcription", "status")


@pytest.fixture
def phone(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    with serve_phone(settings, redis_url, relay) as served:
        # The callers here call from fully attested numbers: a caller ID that names one
        # contact identifies the caller (tests/test_voice_callerauth.py tries the rest).
        served.attestation = FULL_ATTESTATION
        yield served


def test_every_order_of_the_callbacks_sent_twice_gives_the_same_request(phone: Phone) -> None:
    add_caller(phone)
    orders = list(itertools.permutations(CALLBACKS))
    for order in orders:
        call = phone.call(ADA, Keys("2"), HangUp(said=DESCRIPTION))
        pending = list(call.player.pending)
        assert call.finish(*order) == [200 if name == "recorded" else 204 for name in order]
        call.player.pending = pending
        call.finish(*reversed(order))  # each again, in the opposite order
        session = call.session()
        assert session.request_id is not None, order
        events = [kind for kind, _ in phone.events(session.request_id)]
        # In the order they came: a transcription may precede its recording.
        assert sorted(events) == ["created", "transcription", "voicemail"], (order, events)
    requests = phone.requests()
    assert len(requests) == len(orders) == len(phone.intake())
    assert {(r.severity, r.description) for r in requests} == {(2, DESCRIPTION)}
    phone.drain()
    assert len(phone.sms.sent) == len(phone.relay.messages) == len(orders)


def test_a_transcription_before_the_recording_action_waits_for_the_request(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("3"), HangUp(said=DESCRIPTION))
    call.finish("transcription")
    assert phone.requests() == []
    assert call.session().transcription == DESCRIPTION
    call.finish("recorded")  # the action of a caller who hung up opens the request
    (request,) = phone.requests()
    assert request.description == DESCRIPTION
    assert [kind for kind, _ in phone.events(request.id)] == [
        "created",
        "voicemail",
        "transcription",
    ]


def test_completed_first_and_no_recording_action_ever(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("4"), HangUp(said=DESCRIPTION))
    call.finish("status", "status", "transcription")
    (request,) = phone.requests()
    assert request.severity == 4
    assert [kind for kind, _ in phone.events(request.id)] == ["created", "transcription"]
    assert len(phone.intake()) == 1


def test_callbacks_of_a_finished_call_change_nothing(phone: Phone) -> None:
    add_caller(phone)
    call = phone.call(ADA, Keys("2"), Describe(DESCRIPTION))
    pending = list(call.player.pending)
    call.finish()
    call.player.pending = pending
    call.finish()
    (request,) = phone.requests()
    assert [kind for kind, _ in phone.events(request.id)] == [
        "created",
        "voicemail",
        "transcription",
    ]
    assert len(phone.intake()) == 1


def test_status_callbacks_before_the_end_only_note_the_status(phone: Phone) -> None:
    add_caller(phone)
    player = phone.player(ADA)
    params = player.base_params() | {"CallStatus": "ringing"}
    assert player.post(player.url("/voice/status"), params)[0] == 204  # unknown call: ignored
    player.post(player.url("/voice/incoming"), player.base_params())
    assert player.post(player.url("/voice/status"), params)[0] == 204
    with phone.rt.db.sessions() as session:
        call = session.query(CallSession).filter_by(call_sid=player.call_sid).one()
        assert (call.call_status, call.ended_at, call.intake_id) == ("ringing", None, None)
    assert phone.intake() == []
