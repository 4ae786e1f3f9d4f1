"""Playing Twilio in the tests: the gateway's app served on a real local HTTP server, calls
walked by ``voice.player`` with a scripted caller, a real RQ worker, a real relay for the mail
acknowledgments, and a local HTTP server that plays Twilio's Messages API for the real
``twilio.rest.Client`` (its error answers included)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import redis
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from intake.jobs import runtime
from intake.jobs.runtime import Runtime, build_runtime
from intake.jobs.worker import run_worker
from intake.settings import Settings
from intake.store.models import CallSession, Contact, IntakeRecord, OutboxMessage, ServiceRequest
from tests.helpers import Relay
from voice.caller import (
    Answer,
    Describe,
    HangUp,
    Keys,
    Pickup,
    Silence,
    Speech,
)
from voice.player import TwilioPlayer
from voice.sms_sender import register as register_sms_sender
from web import create_app

ACCOUNT_SID = "AC" + "0" * 31 + "1"
FULL_ATTESTATION = "TN-Validation-Passed-A"
AUTH_TOKEN = "test-auth-token"
TWILIO_NUMBER = "+14155550100"

__all__ = ["Describe", "HangUp", "Keys", "Pickup", "Silence", "Speech"]


@dataclass
class ScriptedCaller:
    """A caller (and the engineers' phones) acting out a script, one entry per prompt."""

    script: list[Answer | Describe | Pickup]
    heard: list[tuple[str, str]] = field(default_factory=list)

    def hear(self, text: str, leg: str) -> None:
        if text:
            self.heard.append((leg, text))

    def _next(self, kinds: tuple[type, ...], what: str) -> Any:
        assert self.script, f"the script ran out at a {what}; heard so far:\n{self.transcript()}"
        entry = self.script.pop(0)
        assert isinstance(entry, kinds), f"{what} got {entry!r}; heard:\n{self.transcript()}"
        return entry

    def gather(self, prompt: str) -> Answer:
        answer: Answer = self._next((Keys, Speech, Silence, HangUp), "gather: " + prompt[:60])
        return answer

    def record(self) -> Describe | Silence | HangUp:
        answer: Describe | Silence | HangUp = self._next((Describe, Silence, HangUp), "record")
        return answer

    def engineer(self, number: str) -> Pickup:
        pickup: Pickup = self._next((Pickup,), f"dial {number}")
        return pickup

    def transcript(self) -> str:
        return "\n".join(f"{leg}: {text}" for leg, text in self.heard)

    def said(self, leg: str = "caller") -> str:
        return " ".join(text for spoken_leg, text in self.heard if spoken_leg == leg)


class ServedApp:
    """A WSGI app on a real local HTTP server, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> ServedApp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SentSms:
    account: str
    auth: str
    to: str
    sender: str
    body: str


class MessagesApi:
    """Twilio's Messages API on a local port: records each message; ``failures`` holds the
    answers (status, Twilio error code) to give before accepting again. It serves the
    Recordings API's media too: ``recordings`` by SID, each GET noted in ``fetches`` with the
    Authorization it carried; ``redirect_media_to`` sends the media elsewhere, as Twilio may."""

    def __init__(self) -> None:
        self.sent: list[SentSms] = []
        self.failures: list[tuple[int, int]] = []
        self.requests = 0
        self.recordings: dict[str, bytes] = {}
        self.fetches: list[tuple[str, str]] = []
        self.redirect_media_to = ""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> MessagesApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                api.requests += 1
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, answer = api.answer(self.path, self.headers.get("Authorization", ""), form)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                api.fetches.append((self.path, self.headers.get("Authorization", "")))
                status, headers, data = api.media(self.path, self.headers.get("Authorization", ""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        return Handler

    def media(self, path: str, authorization: str) -> tuple[int, dict[str, str], bytes]:
        """A recording's MP3 (GET .../Accounts/AC.../Recordings/RE....mp3) for our account's
        credentials; or, playing a storage host, ``/media/RE....mp3`` for anyone."""
        prefix = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/"
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if path.startswith("/media/"):
            sid = path.removeprefix("/media/").removesuffix(".mp3")
        elif path.startswith(prefix) and authorization == expected:
            sid = path.removeprefix(prefix).removesuffix(".mp3")
            if self.redirect_media_to:
                return 302, {"Location": f"{self.redirect_media_to}/media/{sid}.mp3"}, b""
        else:
            return 401, {"Content-Type": "application/json"}, b'{"code": 20003}'
        if sid not in self.recordings:
            return 404, {"Content-Type": "application/json"}, b'{"code": 20404}'
        return 200, {"Content-Type": "audio/mpeg"}, self.recordings[sid]

    def answer(
        self, path: str, authorization: str, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        account = path.rsplit("/Accounts/", maxsplit=1)[-1].split("/", maxsplit=1)[0]
        auth = base64.b64decode(authorization.removeprefix("Basic ")).decode()
        if not path.endswith("/Messages.json") or auth != f"{ACCOUNT_SID}:{AUTH_TOKEN}":
            return 401, _error(401, 20003, "Authenticate")
        if self.failures:
            status, code = self.failures.pop(0)
            return status, _error(status, code, ERROR_MESSAGES.get(code, "Error"))
        self.sent.append(SentSms(account, auth, form["To"], form["From"], form["Body"]))
        return 201, _message(account, form)


ERROR_MESSAGES = {
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
}


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _message(account: str, form: dict[str, str]) -> dict[str, Any]:
    sid = "SM" + uuid.uuid4().hex
    return {
        "sid": sid,
        "account_sid": account,
        "to": form["To"],
        "from": form["From"],
        "body": form["Body"],
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
    }


@dataclass
class Phone:
    """The gateway as a caller meets it: the served app, the worker, the relay, the SMS API."""

    rt: Runtime
    app_url: str
    public_url: str
    redis: redis.Redis
    relay: Relay
    sms: MessagesApi
    attestation: str | None = None  # the StirVerstat of calls that name none (None: absent)

    def call(
        self, caller_id: str, *script: Answer | Describe | Pickup, attestation: str | None = None
    ) -> Call:
        """A call from ``caller_id``; ``attestation`` is the StirVerstat Twilio passes (None:
        the phone's default, else none, as for calls from abroad)."""
        player = self.player(caller_id, attestation or self.attestation)
        caller = ScriptedCaller(list(script))
        player.call(caller)
        assert not caller.script, f"left over: {caller.script}\n{caller.transcript()}"
        return Call(self, player, caller)

    def player(self, caller_id: str, attestation: str | None = None) -> TwilioPlayer:
        return TwilioPlayer(
            self.app_url,
            self.public_url,
            ACCOUNT_SID,
            AUTH_TOKEN,
            TWILIO_NUMBER,
            caller_id,
            attestation,
        )

    def drain(self) -> None:
        """Let a real RQ worker run every queued job (acknowledgments, pages)."""
        run_worker(self.rt, self.redis, burst=True, cron=False)

    def rows(self, model: Any) -> list[Any]:
        with self.rt.db.sessions() as session:
            return list(session.scalars(select(model).order_by(model.id)))

    def requests(self) -> list[ServiceRequest]:
        return self.rows(ServiceRequest)

    def intake(self) -> list[IntakeRecord]:
        return self.rows(IntakeRecord)

    def outbox(self) -> list[OutboxMessage]:
        return self.rows(OutboxMessage)

    def contact(self, contact_id: int) -> Contact:
        with self.rt.db.sessions() as session:
            return session.get_one(Contact, contact_id)

    def events(self, request_id: int) -> list[tuple[str, dict[str, Any]]]:
        with self.rt.db.sessions() as session:
            request = session.get_one(ServiceRequest, request_id)
            return [(e.type, e.detail) for e in request.events]


@dataclass
class Call:
    phone: Phone
    player: TwilioPlayer
    caller: ScriptedCaller

    @property
    def said(self) -> str:
        return self.caller.said()

    def session(self) -> CallSession:
        with self.phone.rt.db.sessions() as session:
            found = session.scalar(
                select(CallSession).where(CallSession.call_sid == self.player.call_sid)
            )
            assert found is not None
            return found

    def finish(self, *order: str) -> list[int]:
        """Deliver Twilio's own callbacks (all, or those named, in that order)."""
        return self.player.deliver(order or None)

    def callbacks(self) -> Iterator[str]:
        return (c.name for c in self.player.pending)


PUBLIC_URL = "https://support.example.test"  # as behind a TLS-terminating proxy
ROTA = {
    "ring_seconds": 15,
    "non_technical_number": "+14155550199",
    "engineers": [
        {"name": "Linus", "phone": "+14155550190"},
        {"name": "Margaret", "phone": "+14155550191"},
    ],
}


def phone_settings(settings: Settings, redis_url: str, relay: Relay, sms: MessagesApi) -> Settings:
    """Settings with Twilio configured and pointed at the local Messages API."""
    return settings.replace(
        outbound_smtp_url=relay.url,
        redis_url=redis_url,
        secret_key="test-secret",
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=TWILIO_NUMBER,
        twilio_api_base=sms.url,
        policy=dict(settings.policy) | {"rota": ROTA},
    )


@contextmanager
def serve_phone(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    """The whole phone door, served: see :class:`Phone`."""
    sms = MessagesApi().start()
    rt = build_runtime(phone_settings(settings, redis_url, relay, sms))
    runtime.install(rt)
    register_sms_sender()  # as `intake worker` does
    connection = redis.Redis.from_url(redis_url)
    served = ServedApp(create_app(rt.settings, db=rt.db, redis_client=connection)).start()
    try:
        yield Phone(rt, served.url, PUBLIC_URL, connection, relay, sms)
    finally:
        served.stop()
        sms.stop()
        connection.close()
        rt.db.dispose()
