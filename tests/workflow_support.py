"""Helpers for the workflow tests: the web app on a running gateway, an API token's header, and
a request opened by mail through the whole gateway."""

from __future__ import annotations

from flask.testing import FlaskClient

from intake.accounts.credentials import create_token
from intake.store.db import Database
from tests.helpers import make_mail
from tests.hygiene_support import ADA, Gateway
from web import create_app


def web_client(gateway: Gateway) -> FlaskClient:
    """The web app on the gateway's database and Redis."""
    app = create_app(gateway.rt.settings, db=gateway.rt.db, redis_client=gateway.redis)
    return app.test_client()


def bearer(db: Database, name: str = "desk-bot") -> dict[str, str]:
    """The header of a new API token named ``name`` (the actor its actions record)."""
    return {"Authorization": f"Bearer {create_token(db, name)}"}


def open_request(gateway: Gateway, subject: str) -> str:
    """Ada mails a new request; a worker opens and acknowledges it. Its number."""
    gateway.send(make_mail(ADA, subject))
    gateway.drain()
    return gateway.requests()[-1].number
