"""``intake run``: every component in one supervised process group.

Sets up what a first start needs (the schema, the secret key, the embedded Redis, the demo data),
then runs the SMTP listener, a worker, the web server and (when a mailbox is configured) the
IMAP poller as child processes, restarts one that dies, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from intake import embedded_redis
from intake.db import Database, upgrade
from intake.errors import IntakeError
from intake.secret import with_secret_key
from intake.settings import Settings

COMPONENTS = ("smtp", "worker", "web")
RESTARTS_PER_MINUTE = 5
STOP_GRACE_SECONDS = 10
DEMO_FILE = Path("config") / "demo.toml"

Echo = Callable[[str], None]


@dataclass
class Child:
    component: str
    process: subprocess.Popen[bytes]
    starts: list[float] = field(default_factory=list)


def run_all(settings: Settings, *, demo: bool, echo: Echo) -> None:
    settings = with_secret_key(settings)
    upgrade(settings.database_url)
    if demo:
        _load_demo(settings, echo)
    redis_url, started_redis = _redis(settings)
    env = _child_environment(settings, redis_url, demo)
    children = [_spawn(c, env) for c in components(settings)]
    _announce(settings, redis_url, demo, echo)
    try:
        _supervise(children, env, echo)
    finally:
        _stop_all(children)
        if started_redis:
            embedded_redis.stop(settings.var_path)
        echo("stopped")


def components(settings: Settings) -> tuple[str, ...]:
    """The processes to run: the IMAP poller too when a mailbox is configured."""
    return (*COMPONENTS, "imap") if imap_configured(settings) else COMPONENTS


def imap_configured(settings: Settings) -> bool:
    return bool(settings.imap_url.strip() or settings.policy.get("imap"))


def _load_demo(settings: Settings, echo: Echo) -> None:
    from intake.importer import import_file

    path = DEMO_FILE if DEMO_FILE.exists() else Path(__file__).parent.parent / DEMO_FILE
    if not path.exists():
        raise IntakeError(f"the demo data {DEMO_FILE} is missing")
    db = Database.from_settings(settings)
    try:
        import_file(db, path, progress=False)
    finally:
        db.dispose()
    echo(f"demo customers and contacts loaded from {path}")


def _redis(settings: Settings) -> tuple[str, bool]:
    if settings.redis_url:
        return settings.redis_url, False
    return embedded_redis.ensure_running(settings.var_path)


def _child_environment(settings: Settings, redis_url: str, demo: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["INTAKE_CONFIG"] = settings.config
    env["INTAKE_REDIS_URL"] = redis_url
    env["INTAKE_SECRET_KEY"] = settings.secret_key
    env["INTAKE_DATABASE_URL"] = settings.database_url
    env["INTAKE_LOG_FORMAT"] = settings.log_format
    env["INTAKE_LOG_LEVEL"] = settings.log_level
    if demo:
        # The demo's senders have no DNS of their own: record the verdict, refuse nothing.
        env.setdefault("INTAKE_SENDER_AUTH", "monitor")
    return env


def _start_process(component: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "intake", component], env=env)


def _spawn(component: str, env: dict[str, str]) -> Child:
    return Child(component, _start_process(component, env), [time.monotonic()])


def _announce(settings: Settings, redis_url: str, demo: bool, echo: Echo) -> None:
    addresses = ", ".join(settings.support_addresses)
    acks = settings.outbound_smtp_url or f"the maildir {settings.var_path / 'outbox'}/new/"
    echo(f"SMTP      {settings.smtp_host}:{settings.smtp_port}  (mail to {addresses})")
    echo(
        f"web       http://{settings.web_host}:{settings.web_port}/  "
        f"(API: /api/health, /api/requests, /api/intake)"
    )
    voice = settings.public_url.rstrip("/") + "/voice/incoming"
    twilio = settings.twilio_account_sid and settings.twilio_auth_token
    echo(f"voice     {voice}" if twilio else "voice     off (set the TWILIO_* settings)")
    if imap_configured(settings):
        echo("imap      polling the configured mailboxes")
    echo(f"database  {settings.database_url}")
    echo(f"redis     {redis_url}")
    echo(f"acks      {acks}")
    if demo:
        echo("demo mode: sender authentication only recorded; demo contacts in config/demo.toml")
    echo("press Ctrl-C to stop")


def _supervise(children: list[Child], env: dict[str, str], echo: Echo) -> None:
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        time.sleep(0.5)
        for child in children:
            if child.process.poll() is not None and not stopping:
                _restart(child, env, echo)


def _restart(child: Child, env: dict[str, str], echo: Echo) -> None:
    now = time.monotonic()
    child.starts = [t for t in child.starts if now - t < 60]
    if len(child.starts) >= RESTARTS_PER_MINUTE:
        raise IntakeError(
            f"{child.component} keeps stopping (exit code "
            f"{child.process.returncode}); see the log above"
        )
    echo(f"{child.component} exited with code {child.process.returncode}; restarting it")
    child.process = _start_process(child.component, env)
    child.starts.append(now)


def _stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
