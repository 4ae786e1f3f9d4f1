"""The contact's status page behind the signed link in the acknowledgment."""

from __future__ import annotations

import datetime as dt
import time

import redis
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from intake.outbox.links import STATUS_LINK_MAX_AGE, STATUS_LINK_SALT, status_token
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import ServiceRequest
from tests.helpers import add_contact
from web import create_app

KEY = "status-secret"


def _request(db: Database, subject: str) -> str:
    contact_id = add_contact(db, "ada@acme.example")
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as session:
        request = ServiceRequest(
            customer_id=1,
            contact_id=contact_id,
            channel="email",
            severity=2,
            initial_severity=2,
            subject=subject,
            created_at=now,
            response_due_at=now + dt.timedelta(hours=2),
        )
        session.add(request)
        session.flush()
        return request.number


def _client(settings: Settings, db: Database, redis_url: str):  # type: ignore[no-untyped-def]
    app = create_app(
        settings.replace(secret_key=KEY), db=db, redis_client=redis.Redis.from_url(redis_url)
    )
    return app.test_client()


def test_the_link_shows_the_request_with_markup_as_text(
    settings: Settings, db: Database, redis_url: str
) -> None:
    number = _request(db, "<script>alert(1)</script> Export fails")
    page = _client(settings, db, redis_url).get(f"/status/{status_token(KEY, number)}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert number in html and "Serious" in html and "in 1" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_tampered_link_is_refused(settings: Settings, db: Database, redis_url: str) -> None:
    number = _request(db, "Export fails")
    token = status_token(KEY, number)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    client = _client(settings, db, redis_url)
    assert client.get(f"/status/{tampered}").status_code == 404
    assert client.get(f"/status/{status_token('another key', number)}").status_code == 404


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - STATUS_LINK_MAX_AGE - 60


def test_an_expired_link_is_refused(settings: Settings, db: Database, redis_url: str) -> None:
    number = _request(db, "Export fails")
    old = URLSafeTimedSerializer(KEY, salt=STATUS_LINK_SALT, signer=_OldSigner).dumps(number)
    assert _client(settings, db, redis_url).get(f"/status/{old}").status_code == 404
