"""The pages in a real browser: Playwright driving Debian's headless Chromium against the real
app served over HTTP, mail sent through the real SMTP door, a real RQ worker and a real relay.

Chromium is /usr/bin/chromium (Debian's package; scripts/test installs it where missing). The
tests fail, never skip, without it: the pages are part of what is promised.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from intake.accounts.credentials import add_staff
from intake.jobs import runtime
from intake.jobs.batch import enqueue_intakes_quietly
from intake.jobs.queue import make_queue
from intake.jobs.runtime import Runtime, build_runtime
from intake.jobs.worker import run_worker
from intake.mail.smtp import SmtpDoor
from intake.outbox.links import STATUS_LINK_MAX_AGE, STATUS_LINK_SALT
from intake.settings import Settings, load_settings
from intake.store.models import ServiceRequest
from tests.conftest import REDIS_URL, ROOT
from tests.helpers import Relay, add_contact, free_port, make_mail
from tests.web_support import PASSWORD, LiveServer, add_intake
from web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "browser-secret"
SUPPORT = "support@intake.localhost"
XSS_SUBJECT = '<script>window.__pwned = "subject"</script><img src=x onerror="window.__pwned=1">'
XSS_BODY = (
    '<a href="javascript:window.__pwned=2">click me</a> <b onmouseover="window.__pwned=3">hover</b>'
    "\n<script>window.__pwned = 'body'</script><svg onload=\"window.__pwned=4\"></svg>"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Chromium is missing: apt-get install chromium (scripts/test does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Site:
    """The whole gateway on free ports: SMTP door, web app, worker on demand, relay."""

    rt: Runtime
    door: SmtpDoor
    web: LiveServer
    relay: Relay
    redis: redis.Redis

    @property
    def url(self) -> str:
        return self.web.url

    def mail(self, message: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.door.port, timeout=30) as client:
            client.send_message(message, to_addrs=[SUPPORT])

    def drain(self) -> None:
        """A real RQ worker runs every queued job, then stops."""
        run_worker(self.rt, self.redis, burst=True, cron=False)

    def requests(self) -> list[ServiceRequest]:
        with self.rt.db.sessions() as session:
            return list(session.scalars(select(ServiceRequest).order_by(ServiceRequest.id)))


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path, relay: Relay, redis_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_template, relay, redis_url) as started:
        yield started


@contextmanager
def running_site(
    tmp_path: Path,
    sqlite_template: Path,
    relay: Relay,
    redis_url: str,
    tables: dict[str, Any] | None = None,
) -> Iterator[Site]:
    """The whole gateway on a copy of the migrated SQLite file; ``tables`` are added to the
    config file's policy tables."""
    database = tmp_path / "intake.db"
    database.write_bytes(sqlite_template.read_bytes())
    settings = _settings(tmp_path, f"sqlite:///{database}", relay)
    if tables:
        settings = settings.replace(policy=dict(settings.policy) | tables)
    rt = build_runtime(settings)
    runtime.install(rt)
    connection = redis.Redis.from_url(redis_url)
    queue = make_queue(settings, connection)
    door = SmtpDoor(settings, rt.db, lambda ids: enqueue_intakes_quietly(queue, ids))
    door.start()
    app = create_app(settings, db=rt.db, redis_client=connection)
    app.config["INTAKE_REFRESH_SECONDS"] = 1  # the dashboard refreshes itself within the test
    web = LiveServer(app).start()
    add_staff(rt.db, "alice", PASSWORD)
    add_contact(rt.db, "ada@acme.example")
    yield Site(runtime.current(), door, web, relay, connection)
    web.stop()
    door.stop()
    rt.db.dispose()


def _settings(tmp_path: Path, database_url: str, relay: Relay) -> Settings:
    return load_settings(
        env={"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml")},
        overrides={
            "var_dir": str(tmp_path / "var"),
            "database_url": database_url,
            "redis_url": REDIS_URL,
            "outbound_smtp_url": relay.url,
            "smtp_port": free_port(),
            "secret_key": SECRET,
        },
    )


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(timezone_id="America/New_York", locale="en-US")
    tab = context.new_page()
    tab.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    yield tab
    context.close()


def sign_in(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_a_mailed_request_appears_and_its_severity_is_changed(page: Page, site: Site) -> None:
    sign_in(page, site)
    expect(page.locator("#dashboard")).to_contain_text("No open requests.")

    site.mail(make_mail("ada@acme.example", "[Sev2] Exports fail since 09:00"))
    site.drain()

    row = page.locator("#dashboard tr", has_text="Exports fail since 09:00")
    expect(row).to_be_visible(timeout=10_000)  # the dashboard refreshed by itself
    (request,) = site.requests()
    expect(row).to_contain_text(request.number)
    row.get_by_role("link", name=request.number).click()

    expect(page.locator("h1")).to_contain_text(request.number)
    expect(page.locator("#timeline")).to_contain_text("Acknowledgment sent")
    received = page.locator("#facts time").first
    expect(received).not_to_contain_text("UTC")  # shown in the viewer's own zone
    page.select_option("#sev-severity", "1")
    page.fill("#sev-justification", "Payroll cannot run: the whole company is waiting")
    page.click("#severity-form button[type=submit]")

    expect(page.locator(".flash")).to_contain_text("Severity changed to 1")
    expect(page.locator("#timeline")).to_contain_text("Severity changed: 2 → 1")
    expect(page.locator("#timeline")).to_contain_text("Payroll cannot run")
    assert site.requests()[0].severity == 1


def test_a_quarantined_message_is_released_into_a_request(page: Page, site: Site) -> None:
    raw = make_mail("ada@acme.example", "[Sev3] Held by the sender check").as_bytes()
    intake_id = add_intake(site.rt.db, "held-1", subject="[Sev3] Held by the sender check", raw=raw)
    sign_in(page, site)

    page.click("nav >> text=Quarantine")
    held = page.locator(f"#intake-{intake_id}")
    expect(held).to_contain_text("did not authenticate it")
    held.get_by_role("button", name="Release").click()

    expect(page.locator(".flash")).to_contain_text(f"Released #{intake_id}")
    expect(page.locator("#quarantine-list")).to_contain_text("Nothing is held")
    site.drain()
    (request,) = site.requests()
    assert request.subject == "[Sev3] Held by the sender check"
    assert request.acknowledged_at is not None
    assert site.relay.messages[0]["Subject"].startswith(f"[{request.number}] Received:")
    page.click("nav >> text=Requests")
    expect(page.locator("#request-list")).to_contain_text(request.number)


def test_markup_in_mail_runs_no_script(page: Page, site: Site) -> None:
    message = make_mail("ada@acme.example", XSS_SUBJECT, XSS_BODY)
    site.mail(message)
    site.drain()
    (request,) = site.requests()
    sign_in(page, site)

    for path in ("/", "/requests", f"/requests/{request.number}", "/intake", "/intake/1"):
        page.goto(f"{site.url}{path}")
        page.wait_for_load_state("load")
        time.sleep(0.3)  # onerror and onload would have fired by now
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("a[href^='javascript:']").count() == 0, path
        assert page.locator("main img, main svg[onload], main script").count() == 0, path
    page.goto(f"{site.url}/requests/{request.number}")
    expect(page.locator("h1 + .subject")).to_have_text(XSS_SUBJECT)  # shown as text


def test_every_staff_page_sends_an_anonymous_visitor_to_sign_in(page: Page, site: Site) -> None:
    for path in ("/", "/requests", "/requests/SR-000001", "/intake", "/intake/1", "/quarantine"):
        page.goto(f"{site.url}{path}")
        expect(page).to_have_url(re.compile(r"/login\?next="))
        expect(page.locator("h1")).to_have_text("Intake gateway")
    answer = page.goto(f"{site.url}/api/requests")
    assert answer is not None and answer.status == 401


def test_a_contact_link_works_and_a_tampered_or_expired_one_is_refused(
    page: Page, site: Site
) -> None:
    site.mail(make_mail("ada@acme.example", "[Sev2] Reports are slow"))
    site.drain()
    body = site.relay.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = body.split("/status/", 1)[1].split()[0]
    (request,) = site.requests()

    good = page.goto(f"{site.url}/status/{token}")
    assert good is not None and good.status == 200
    expect(page.locator("h1")).to_have_text(request.number)
    expect(page.locator("main")).to_contain_text("Serious")

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    bad = page.goto(f"{site.url}/status/{tampered}")
    assert bad is not None and bad.status == 404
    expect(page.locator("main")).to_contain_text("not valid or has expired")
    old = URLSafeTimedSerializer(SECRET, salt=STATUS_LINK_SALT, signer=_OldSigner)
    expired = page.goto(f"{site.url}/status/{old.dumps(request.number)}")
    assert expired is not None and expired.status == 404


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - STATUS_LINK_MAX_AGE - 60
