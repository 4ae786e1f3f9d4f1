"""Helpers for the web tests: signing staff in through the real form, seeding requests and
intake rows as the pipeline writes them, and serving the real app on a free port."""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from intake.store.db import Database
from intake.store.models import Contact, IntakeRecord, RequestEvent, ServiceRequest, utcnow
from tests.helpers import add_contact

PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'<input[^>]*\bname="csrf_token"[^>]*\bvalue="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token a page's forms carry (the session's token, the same on every form)."""
    page = client.get(path)
    found = CSRF_FIELD.search(page.get_data(as_text=True))
    assert found is not None, f"no form with a CSRF token on {path} ({page.status_code})"
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    """Post the sign-in form as a browser would; returns the response."""
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"csrf_token": token, "username": username, "password": password}
    )


def add_request(db: Database, contact_id: int, **values: Any) -> ServiceRequest:
    """A request as the worker opens one, with its ``created`` event."""
    now = values.pop("created_at", utcnow())
    severity = values.pop("severity", 3)
    defaults: dict[str, Any] = {
        "channel": "email",
        "subject": "Exports fail",
        "description": "Every export fails with error 17.",
        "status": "new",
        "response_due_at": now + dt.timedelta(hours=2),
    }
    with db.transaction() as session:
        customer_id = session.get_one(Contact, contact_id).customer_id
        sr = ServiceRequest(
            customer_id=customer_id,
            contact_id=contact_id,
            severity=severity,
            initial_severity=severity,
            created_at=now,
            **(defaults | values),
        )
        session.add(sr)
        session.flush()
        session.add(RequestEvent(request_id=sr.id, type="created", at=now, detail={}))
        return sr


def add_intake(db: Database, key: str, **values: Any) -> int:
    """An intake-log row as the pipeline writes one; returns its id."""
    defaults: dict[str, Any] = {
        "channel": "email",
        "sender": "ada@acme.example",
        "subject": "Held message",
        "outcome": "quarantined",
        "reason": "sender_not_authenticated",
        "detail": "DMARC failed for acme.example.",
        "raw": b"From: ada@acme.example\r\nSubject: Held message\r\n\r\nPlease look.\r\n",
    }
    with db.transaction() as session:
        row = IntakeRecord(dedupe_key=key, **(defaults | values))
        session.add(row)
        session.flush()
        return row.id


def add_event(session: Session, request_id: int, kind: str, **detail: Any) -> None:
    session.add(RequestEvent(request_id=request_id, type=kind, detail=detail))


@dataclass
class LiveServer:
    """The real app on 127.0.0.1 and a free port, served by werkzeug's threaded server."""

    app: Flask
    server: BaseWSGIServer = field(init=False)
    thread: threading.Thread = field(init=False)

    def start(self) -> LiveServer:
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


__all__ = ["PASSWORD", "LiveServer", "add_contact", "add_event", "add_intake", "add_request"]
