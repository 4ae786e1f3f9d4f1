"""Only Twilio gets in, and a caller always gets an answer: signatures (unsigned, tampered,
another account, the proxy's inside URL), 503 while unconfigured, retried and stale webhooks,
and the fallback while the database is down."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import redis
from twilio.request_validator import RequestValidator

from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import CallSession
from tests.helpers import Relay, add_contact
from tests.twilio_driver import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    Phone,
    ServedApp,
    serve_phone,
)
from web import create_app

ROUTES = [
    "incoming",
    "phone?step=1",
    "pin?step=1",
    "category?step=1",
    "severity?step=1",
    "confirm?step=1",
    "lookup?step=1",
    "recorded?step=1",
    "connect?step=1",
    "dialed?step=1",
    "status",
    "recording",
    "transcription",
    "whisper?call=CA1&engineer=0",
    "whisper/answer?call=CA1&engineer=0",
    "fallback",
    "fallback/recorded",
]


@pytest.fixture
def phone(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    with serve_phone(settings, redis_url, relay) as served:
        yield served


def form(call_sid: str = "CA" + "1" * 32, **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "From": "+14155550101"} | extra


def signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post(app_url: str, route: str, params: dict[str, str], sig: str | None) -> tuple[int, str]:
    host, port = app_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sig is not None:
        headers["X-Twilio-Signature"] = sig
    connection.request("POST", "/voice/" + route, urlencode(params), headers)
    response = connection.getresponse()
    answer = response.status, response.read().decode()
    connection.close()
    return answer


def signed_post(phone: Phone, route: str, params: dict[str, str]) -> tuple[int, str]:
    url = f"{PUBLIC_URL}/voice/{route}"
    return post(phone.app_url, route, params, signature(url, params))


@pytest.mark.parametrize("route", ROUTES)
def test_an_unsigned_request_is_refused_on_every_route(phone: Phone, route: str) -> None:
    assert post(phone.app_url, route, form(), None)[0] == 403
    assert post(phone.app_url, route, form(), "bm90IGEgc2lnbmF0dXJl")[0] == 403


@pytest.mark.parametrize("route", ROUTES)
def test_a_signed_request_is_served_on_every_route(phone: Phone, route: str) -> None:
    status, _ = signed_post(phone, route, form())
    assert status in (200, 204)


def test_tampered_requests_are_refused(phone: Phone) -> None:
    url = f"{PUBLIC_URL}/voice/pin?step=1"
    params = form(Digits="1111")
    good = signature(url, params)
    assert post(phone.app_url, "pin?step=1", form(Digits="4321"), good)[0] == 403  # field changed
    assert post(phone.app_url, "pin?step=2", params, good)[0] == 403  # query changed
    assert post(phone.app_url, "pin?step=1", params | {"Extra": "x"}, good)[0] == 403
    assert post(phone.app_url, "pin?step=1", params, signature(url, params, "other"))[0] == 403


def test_a_request_signed_for_another_account_is_refused(phone: Phone) -> None:
    params = form() | {"AccountSid": "AC" + "9" * 32}
    assert signed_post(phone, "incoming", params)[0] == 403


def test_the_signature_is_checked_against_the_public_url_not_the_inside_one(phone: Phone) -> None:
    """Behind a TLS-terminating proxy: Twilio signs https://public/..., we are reached on http."""
    params = form()
    inside = f"{phone.app_url}/voice/incoming"
    assert post(phone.app_url, "incoming", params, signature(inside, params))[0] == 403
    http_public = PUBLIC_URL.replace("https://", "http://") + "/voice/incoming"
    assert post(phone.app_url, "incoming", params, signature(http_public, params))[0] == 403
    assert signed_post(phone, "incoming", params)[0] == 200


def test_every_route_answers_503_while_twilio_is_not_configured(
    settings: Settings, db: Database, redis_client: redis.Redis
) -> None:
    client = create_app(settings, db=db, redis_client=redis_client).test_client()
    for route in ROUTES:
        response = client.post("/voice/" + route, data=form())
        assert response.status_code == 503, route
        assert "TWILIO_AUTH_TOKEN" in response.get_data(as_text=True)


def test_only_post_is_served(phone: Phone) -> None:
    connection = http.client.HTTPConnection(phone.app_url.removeprefix("http://"), timeout=10)
    connection.request("GET", "/voice/incoming")
    assert connection.getresponse().status == 405


def test_a_retried_webhook_gets_the_same_answer_and_counts_once(phone: Phone) -> None:
    add_contact(phone.rt.db, "ada@acme.example", phone="+14155550101")
    sid = "CA" + "2" * 32
    first = signed_post(phone, "incoming", form(sid, From="anonymous"))
    assert signed_post(phone, "incoming", form(sid, From="anonymous")) == first
    signed_post(phone, "phone?step=1", form(sid, From="anonymous", Digits="14155550101"))
    wrong = form(sid, From="anonymous", Digits="1111")
    answer = signed_post(phone, "pin?step=2", wrong)
    assert signed_post(phone, "pin?step=2", wrong) == answer  # Twilio retried it
    assert "do not match" in answer[1]
    with phone.rt.db.sessions() as session:
        call = session.query(CallSession).filter_by(call_sid=sid).one()
        assert (call.pin_attempts, call.step, call.state) == (1, 3, "identify_phone")


def test_a_stale_step_gets_the_prompt_of_where_the_caller_is(phone: Phone) -> None:
    sid = "CA" + "3" * 32
    signed_post(phone, "incoming", form(sid, From="anonymous"))
    signed_post(phone, "phone?step=1", form(sid, From="anonymous", Digits="14155550101"))
    status, answer = signed_post(phone, "phone?step=1", form(sid, From="anonymous", Digits="1"))
    assert status == 200 and "Please enter your PIN" in answer and "pin?step=2" in answer


def test_a_step_of_a_call_never_started_gets_the_fallback(phone: Phone) -> None:
    status, answer = signed_post(phone, "severity?step=4", form("CA" + "4" * 32, Digits="2"))
    assert status == 200 and "<Record" in answer and "fallback/recorded" in answer


def test_the_same_new_call_twice_at_once_makes_one_session(phone: Phone) -> None:
    sid = "CA" + "5" * 32
    answers: list[tuple[int, str]] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(signed_post(phone, "incoming", form(sid, From="x")))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * 4
    assert len({text for _, text in answers}) == 1
    with phone.rt.db.sessions() as session:
        assert session.query(CallSession).filter_by(call_sid=sid).count() == 1


@pytest.fixture
def dead_database_phone(phone: Phone) -> Iterator[str]:
    """The same settings, but a database that is down (nothing listens on its port)."""
    dead = Database("postgresql+psycopg://postgres@127.0.0.1:9/intake")
    app = create_app(phone.rt.settings, db=dead, redis_client=phone.redis)
    served = ServedApp(app).start()
    yield served.url
    served.stop()
    dead.dispose()


def test_the_fallback_answers_with_the_database_down(
    phone: Phone, dead_database_phone: str
) -> None:
    def signed(route: str, params: dict[str, str]) -> tuple[int, str]:
        url = f"{PUBLIC_URL}/voice/{route}"
        return post(dead_database_phone, route, params, signature(url, params))

    status, answer = signed("fallback", form())
    assert status == 200 and "We are sorry" in answer and "<Record" in answer
    status, answer = signed("incoming", form())  # the Voice URL itself: never an error
    assert status == 200 and "We are sorry" in answer and "<Record" in answer
    recording = form(RecordingUrl="https://api.twilio.com/x/RE1", RecordingDuration="12")
    status, answer = signed("fallback/recorded", recording)
    assert status == 200 and "Your message is recorded" in answer and "<Hangup" in answer
    assert signed("status", form(CallStatus="completed"))[0] == 503
