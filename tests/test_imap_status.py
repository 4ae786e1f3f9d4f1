"""What the IMAP door tells: each mailbox's last poll, last success and last error on
/api/health, the dashboard's IMAP card and /metrics; and `intake run` with a mailbox."""

from __future__ import annotations

import re
import time
from pathlib import Path

import redis
from flask.testing import FlaskClient

from intake.accounts.credentials import add_staff, create_token
from intake.mail.imap_config import mailboxes
from intake.mail.imap_door import ImapDoor
from intake.ops.health import record_heartbeat
from intake.settings import Settings
from intake.store.db import Database
from tests.conftest import ROOT
from tests.dovecot import Dovecot
from tests.helpers import start_demo, wait_for, web_health
from tests.imap_support import imap_settings, mail, rows
from tests.web_support import PASSWORD, sign_in
from web import create_app


def _page(client: FlaskClient) -> str:
    return re.sub(r"\s+", " ", client.get("/").get_data(as_text=True))


def test_the_dashboard_health_and_metrics_show_the_imap_door(
    settings: Settings, db: Database, dovecot: Dovecot, redis_client: redis.Redis
) -> None:
    settings = imap_settings(settings, dovecot).replace(secret_key="k" * 32)
    add_staff(db, "alice", PASSWORD)
    app = create_app(settings, db=db, redis_client=redis_client)
    staff = app.test_client()
    sign_in(staff, "alice")
    assert "INTAKE_IMAP_URL is unset" not in _page(staff)
    door = ImapDoor(settings, db, configured=mailboxes(settings))
    door.start()
    try:
        dovecot.deliver(mail())
        wait_for(lambda: len(rows(db)) == 1, timeout=20)
        record_heartbeat(redis_client, "imap", door.holder, door.report())
        page = _page(staff)
        assert re.search(r"IMAP <span class=\"badge ok\">ok</span>", page)
        assert "<dt>last success</dt>" in page and "<dt>mailboxes</dt><dd>1</dd>" in page

        health = staff.get("/api/health").json
        assert health is not None
        (state,) = health["components"]["imap"]["mailboxes"]
        assert (state["status"], state["messages"], state["last_error"]) == ("ok", 1, "")

        token = {"Authorization": f"Bearer {create_token(db, 'prometheus')}"}
        metrics = staff.get("/metrics", headers=token).get_data(as_text=True)
        key = mailboxes(settings)[0].key
        assert f'intake_imap_messages_total{{mailbox="{key}"}} 1.0' in metrics
        assert f'intake_imap_last_success_timestamp_seconds{{mailbox="{key}"}}' in metrics

        dovecot.set_password("changed")
        time.sleep(1.5)  # Dovecot looks at its password file at most once a second
        dovecot.kick()
        wait_for(lambda: "LoginError" in door.report()["last_error"], timeout=30)
        record_heartbeat(redis_client, "imap", door.holder, door.report())
        page = _page(staff)
        assert re.search(r"IMAP <span class=\"badge error\">error</span>", page)
        assert "AUTHENTICATIONFAILED" in page
        health = staff.get("/api/health").json
        assert health is not None and health["components"]["imap"]["status"] == "error"
        assert f'intake_imap_last_error_timestamp_seconds{{mailbox="{key}"}}' in staff.get(
            "/metrics", headers=token
        ).get_data(as_text=True)
    finally:
        door.stop()


def _imap_alive(web_port: int) -> bool:
    health = web_health(web_port)
    imap = (health or {}).get("components", {}).get("imap", {})  # type: ignore[attr-defined]
    return bool(imap.get("status") == "ok" and imap["mailboxes"][0]["last_success"])


def test_intake_run_with_a_mailbox_runs_the_poller_and_acknowledges_its_mail(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    imap = {"INTAKE_IMAP_URL": dovecot.imaps_url(), "INTAKE_IMAP_CA_FILE": dovecot.ca_file}
    demo = start_demo(tmp_path, ROOT / "config", imap)
    web_port = demo.web_port
    try:
        wait_for(lambda: _imap_alive(web_port), timeout=90, interval=0.5)
        dovecot.deliver(mail("Ada Lovelace <ada@acme.example>", "[Sev1] Nothing loads"))
        outbox = tmp_path / "var" / "outbox" / "new"
        (ack,) = wait_for(lambda: list(outbox.glob("*.eml")) if outbox.exists() else [], timeout=60)
        assert "Subject: [SR-000001] Received: [Sev1] Nothing loads" in ack.read_text()
        assert dovecot.count("Processed") == 1
    finally:
        errors = demo.stop()
    assert demo.process.returncode == 0, errors
    assert "imap      polling the configured mailboxes" in errors
