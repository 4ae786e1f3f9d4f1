"""SMS through the real ``twilio.rest.Client``, pointed by INTAKE_TWILIO_API_BASE at a local
server that plays Twilio's Messages API (its error answers included), through the outbox job
and through a real `intake worker` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select

from intake.jobs import jobs, runtime
from intake.jobs.queue import make_queue
from intake.jobs.runtime import Runtime, build_runtime
from intake.outbox.delivery import PermanentDeliveryError
from intake.settings import Settings
from intake.store.models import OutboxMessage
from tests.conftest import ROOT
from tests.helpers import free_port
from tests.twilio_driver import ACCOUNT_SID, AUTH_TOKEN, TWILIO_NUMBER, MessagesApi
from voice.sms_sender import SmsNotSent, register, send_sms

TO = "+14155550101"


@pytest.fixture
def api() -> Iterator[MessagesApi]:
    server = MessagesApi().start()
    yield server
    server.stop()


@pytest.fixture
def sms_settings(settings: Settings, api: MessagesApi, redis_url: str) -> Settings:
    return settings.replace(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=TWILIO_NUMBER,
        twilio_api_base=api.url,
        redis_url=redis_url,
        secret_key="test-secret",
    )


@pytest.fixture
def rt(sms_settings: Settings) -> Iterator[Runtime]:
    built = build_runtime(sms_settings)
    runtime.install(built)
    register()
    yield built
    built.db.dispose()


def test_a_text_goes_through_the_messages_api(sms_settings: Settings, api: MessagesApi) -> None:
    where = send_sms(sms_settings, TO, b"SR-000001 is registered")
    (sent,) = api.sent
    assert where.startswith("twilio:SM")
    assert (sent.account, sent.to, sent.sender, sent.body) == (
        ACCOUNT_SID,
        TO,
        TWILIO_NUMBER,
        "SR-000001 is registered",
    )
    assert sent.auth == f"{ACCOUNT_SID}:{AUTH_TOKEN}"  # HTTP basic auth, as Twilio wants


def test_twilio_edge_settings_do_not_move_the_configured_base(
    sms_settings: Settings, api: MessagesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    send_sms(sms_settings, TO, b"hello")
    assert len(api.sent) == 1


@pytest.mark.parametrize("code", [21211, 21610])
def test_a_400_is_a_permanent_refusal(sms_settings: Settings, api: MessagesApi, code: int) -> None:
    api.failures.append((400, code))
    with pytest.raises(PermanentDeliveryError, match=f"400 \\(error {code}\\)"):
        send_sms(sms_settings, TO, b"hello")


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20500)])
def test_throttling_and_server_errors_are_worth_a_retry(
    sms_settings: Settings, api: MessagesApi, status: int, code: int
) -> None:
    api.failures.append((status, code))
    with pytest.raises(SmsNotSent, match=str(status)):
        send_sms(sms_settings, TO, b"hello")


def test_a_wrong_token_is_not_sent(sms_settings: Settings, api: MessagesApi) -> None:
    with pytest.raises(SmsNotSent, match="401"):
        send_sms(sms_settings.replace(twilio_auth_token="wrong"), TO, b"hello")
    assert api.sent == []


def add_sms(rt: Runtime, body: str = "SR-000001 is registered") -> int:
    with rt.db.transaction() as session:
        row = OutboxMessage(channel="sms", purpose="test", recipient=TO, payload=body.encode())
        session.add(row)
        session.flush()
        return row.id


def outbox_row(rt: Runtime, outbox_id: int) -> OutboxMessage:
    with rt.db.sessions() as session:
        return session.get_one(OutboxMessage, outbox_id)


def test_the_outbox_job_sends_an_sms_row_and_marks_it_sent(rt: Runtime, api: MessagesApi) -> None:
    outbox_id = add_sms(rt)
    jobs.send_outbox(outbox_id)
    jobs.send_outbox(outbox_id)  # sent already: nothing more
    row = outbox_row(rt, outbox_id)
    assert row.sent_at is not None and row.attempts == 1
    assert [s.body for s in api.sent] == ["SR-000001 is registered"]


def test_a_refused_sms_waits_for_a_person_instead_of_retrying(
    rt: Runtime, api: MessagesApi
) -> None:
    api.failures.append((400, 21211))
    outbox_id = add_sms(rt)
    jobs.send_outbox(outbox_id)  # no exception: RQ must not retry it
    row = outbox_row(rt, outbox_id)
    assert row.sent_at is None and row.attempts == jobs.MAX_SEND_ATTEMPTS
    assert "21211" in row.last_error
    queue = make_queue(rt.settings, redis.Redis.from_url(rt.settings.redis_url))
    assert jobs.sweep(queue, grace_seconds=0) == 0  # the sweep leaves it alone


def test_a_failed_sms_is_retried_and_sent(rt: Runtime, api: MessagesApi) -> None:
    api.failures.append((500, 20500))
    outbox_id = add_sms(rt)
    with pytest.raises(SmsNotSent):
        jobs.send_outbox(outbox_id)  # RQ retries the job with backoff
    assert outbox_row(rt, outbox_id).attempts == 1
    jobs.send_outbox(outbox_id)
    assert outbox_row(rt, outbox_id).sent_at is not None
    assert len(api.sent) == 1


def test_intake_worker_sends_sms_rows(
    rt: Runtime, api: MessagesApi, sms_settings: Settings
) -> None:
    """The worker process registers the Twilio sender itself (the composition root does)."""
    outbox_id = add_sms(rt, "from the worker process")
    jobs.enqueue_outbox(
        make_queue(rt.settings, redis.Redis.from_url(rt.settings.redis_url)), outbox_id
    )
    env = dict(os.environ) | {
        "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
        "INTAKE_DATABASE_URL": sms_settings.database_url,
        "INTAKE_REDIS_URL": sms_settings.redis_url,
        "INTAKE_VAR_DIR": sms_settings.var_dir,
        "INTAKE_SECRET_KEY": "test-secret-of-at-least-32-bytes",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": TWILIO_NUMBER,
        "INTAKE_TWILIO_API_BASE": api.url,
    }
    worker = [sys.executable, "-m", "intake", "worker", "--burst", "--no-cron"]
    subprocess.run(worker, env=env, cwd=ROOT, check=True, timeout=120, capture_output=True)
    assert [s.body for s in api.sent] == ["from the worker process"]
    with rt.db.sessions() as session:
        sent = session.scalar(select(OutboxMessage.sent_at).where(OutboxMessage.id == outbox_id))
    assert sent is not None


def _burst_worker(settings: Settings, **extra: str) -> list[str]:
    """Run `intake worker --burst` once; its log lines."""
    env = dict(os.environ) | {
        "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
        "INTAKE_DATABASE_URL": settings.database_url,
        "INTAKE_REDIS_URL": settings.redis_url,
        "INTAKE_VAR_DIR": settings.var_dir,
        "INTAKE_SECRET_KEY": "test-secret-of-at-least-32-bytes",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": TWILIO_NUMBER,
        "INTAKE_TWILIO_API_BASE": settings.twilio_api_base,
    }
    worker = [sys.executable, "-m", "intake", "worker", "--burst", "--no-cron"]
    done = subprocess.run(
        worker, env=env | extra, cwd=ROOT, check=True, timeout=120, capture_output=True, text=True
    )
    return done.stderr.splitlines()


def test_each_failed_send_is_one_log_line_with_its_reason_and_attempt(
    rt: Runtime, api: MessagesApi, sms_settings: Settings
) -> None:
    outbox_id = add_sms(rt, "never sent")
    queue = make_queue(rt.settings, redis.Redis.from_url(rt.settings.redis_url))
    jobs.enqueue_outbox(queue, outbox_id)
    first = _burst_worker(sms_settings, TWILIO_AUTH_TOKEN="wrong")  # Twilio answers 401
    api.failures.append((500, 20500))
    jobs.enqueue_outbox(queue, outbox_id)
    second = _burst_worker(sms_settings)

    for lines, status, attempt in ((first, "401", 1), (second, "500", 2)):
        (failure,) = [line for line in lines if f"outbox #{outbox_id}" in line]
        assert status in failure and f"attempt {attempt}" in failure, lines
        assert not any("Traceback" in line or "Authorization" in line for line in lines), lines
        assert len(lines) <= 3, lines  # the start line, the failure, nothing more


def test_a_relay_that_cannot_be_reached_is_one_line_per_attempt(
    rt: Runtime, sms_settings: Settings
) -> None:
    with rt.db.transaction() as session:
        row = OutboxMessage(
            channel="email",
            purpose="test",
            recipient="ada@acme.example",
            payload=b"Subject: x\r\n\r\nx",
        )
        session.add(row)
        session.flush()
        outbox_id = row.id
    queue = make_queue(rt.settings, redis.Redis.from_url(rt.settings.redis_url))
    jobs.enqueue_outbox(queue, outbox_id)
    closed_relay = f"smtp://127.0.0.1:{free_port()}"
    lines = _burst_worker(sms_settings, INTAKE_OUTBOUND_SMTP_URL=closed_relay)

    (failure,) = [line for line in lines if f"outbox #{outbox_id}" in line]
    assert "attempt 1" in failure and "refused" in failure.lower(), lines
    assert not any("Traceback" in line for line in lines), lines
