"""The web application: :func:`create_app` builds the Flask app (flaskr's app-factory style).

The app's shared services (settings, database, Redis) live in one typed holder at
``app.extensions["intake"]``; views reach them through :func:`services`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider

from intake.jobs import runtime
from intake.jobs.runtime import Runtime
from intake.policy import Policy, load_policy
from intake.secret import with_secret_key
from intake.settings import Settings
from intake.store.db import Database
from intake.workflows.config import load_workflow_config

if TYPE_CHECKING:
    import redis

EXTENSION_KEY = "intake"
SESSION_LIFETIME = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Services:
    """What every view may need, made once per app."""

    settings: Settings
    db: Database
    redis: redis.Redis
    policy: Policy


def services(app: Flask | None = None) -> Services:
    """The services of ``app``, by default of the app handling the current request."""
    holder = (app or current_app).extensions[EXTENSION_KEY]
    if not isinstance(holder, Services):
        raise TypeError(f"app.extensions[{EXTENSION_KEY!r}] is not set up by create_app")
    return holder


def create_app(
    settings: Settings, *, db: Database | None = None, redis_client: redis.Redis | None = None
) -> Flask:
    """The gateway's web app. ``db`` and ``redis_client`` may be given (tests, a shared pool);
    otherwise they are made from ``settings``."""
    app = Flask(__name__)
    load_workflow_config(settings.policy)  # a bad [goal], [escalation]... stops start-up here
    keyed = with_secret_key(settings)  # INTAKE_SECRET_KEY, or the one generated under var/
    app.config.from_mapping(_session_config(keyed))
    svc = Services(
        settings=settings,
        db=db if db is not None else Database.from_settings(settings),
        redis=redis_client if redis_client is not None else _connect_redis(settings),
        policy=load_policy(settings.policy),
    )
    app.extensions[EXTENSION_KEY] = svc
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # keep fields in the documented order
    _register_parts(app)
    # Jobs the app enqueues (a released message) read their options from the process's
    # runtime, as a worker's jobs do; in a web process, the app is that runtime.
    runtime.install(Runtime(keyed, svc.db, svc.policy))
    return app


def _register_parts(app: Flask) -> None:
    """Error pages, security, sign-in, templates and every blueprint, the voice door's too."""
    # Imported here, as in flaskr, because the blueprints import this package for services().
    import voice
    from web import (
        api,
        api_actions,
        doors,
        errors,
        intake_pages,
        login,
        metrics,
        openapi,
        pages,
        request_actions,
        security,
        settings_page,
        status,
    )
    from web.portal import views as portal

    errors.register_error_pages(app)
    # Twilio signs its webhooks and API callers send a token: neither carries a CSRF token
    # (the API checks one itself when the caller is a browser's staff session).
    security.init_security(app, csrf_exempt=(voice.bp, api.bp, api_actions.bp, metrics.bp))
    login.init_login(app)
    pages.init_templates(app)
    blueprints = (api.bp, api_actions.bp, openapi.bp, metrics.bp, login.bp, pages.bp, portal.bp)
    pages_too = (request_actions.bp, intake_pages.bp, settings_page.bp, status.bp, voice.bp)
    for blueprint in (*blueprints, *pages_too):
        app.register_blueprint(blueprint)
    doors.note_voice_webhooks(app)


def _session_config(settings: Settings) -> dict[str, object]:
    """Sessions signed with the secret key, cookies that scripts cannot read and other sites
    cannot send, secure behind https."""
    return {
        "SECRET_KEY": settings.secret_key,
        "SESSION_COOKIE_NAME": "intake_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.public_url.startswith("https://"),
        "PERMANENT_SESSION_LIFETIME": SESSION_LIFETIME,
        # Bodies past the limit are refused with 413 before they are read (the server refuses
        # them first when it is web.server's; this covers any other WSGI server).
        "MAX_CONTENT_LENGTH": settings.web_max_request_body,
        # A form's token lives as long as the session: a page left open still submits.
        "WTF_CSRF_TIME_LIMIT": int(SESSION_LIFETIME.total_seconds()),
    }


def _connect_redis(settings: Settings) -> redis.Redis:
    # Imported only when needed: tests and callers with a client of their own skip it.
    from intake.jobs.queue import connect_redis

    return connect_redis(settings)
