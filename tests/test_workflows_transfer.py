"""A transfer of technical-contact duties, from the API and from `intake contacts transfer`:
the new contact takes over the open requests and their mail, the old one is refused with a
sentence naming the new one; on SQLite and PostgreSQL with the whole gateway."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.cli import cli
from intake.jobs.worker import run_worker
from intake.settings import Settings
from intake.store.models import ContactEmail, ContactTransfer, IntakeRecord
from tests.helpers import Relay, add_contact, make_mail
from tests.hygiene_support import ADA, Gateway, gateway_for, on_the_wire
from tests.web_support import add_request
from tests.workflow_support import bearer, web_client

BOB = "bob@acme.example"


@pytest.fixture
def gateway(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Gateway]:
    with gateway_for(settings, redis_url, relay) as gw:
        add_contact(gw.rt.db, BOB, name="Bob Builder")
        yield gw


@pytest.fixture
def client(gateway: Gateway) -> FlaskClient:
    return web_client(gateway)


@pytest.fixture
def auth(gateway: Gateway) -> dict[str, str]:
    return bearer(gateway.rt.db)


def refusal_of(gateway: Gateway, sender: str) -> str:
    with smtplib.SMTP("127.0.0.1", gateway.door.port, timeout=30) as smtp:
        try:
            smtp.sendmail(sender, ["support@intake.localhost"], on_the_wire(make_mail(sender, "x")))
        except smtplib.SMTPDataError as exc:
            return f"{exc.smtp_code} {exc.smtp_error.decode()}"
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients["support@intake.localhost"]
            return f"{code} {text.decode()}"
    return "250"


def contact_id_of(gateway: Gateway, address: str) -> int:
    with gateway.rt.db.sessions() as session:
        query = select(ContactEmail.contact_id).where(ContactEmail.address == address)
        return int(session.scalars(query).one())


def test_the_new_contact_takes_over_open_requests_and_the_old_is_refused(
    gateway: Gateway, client: FlaskClient, auth: dict[str, str]
) -> None:
    # Opened before the door ever saw Ada (the door caches contacts for a few seconds).
    number = add_request(gateway.rt.db, contact_id_of(gateway, ADA), severity=2).number

    answer = client.post("/api/contacts/transfer", json={"from": ADA, "to": BOB}, headers=auth)
    assert answer.status_code == 200
    assert answer.json == {"from": ADA, "to": BOB, "requests": [number]}

    detail = client.get(f"/api/requests/{number}", headers=auth).json
    assert detail["contact"]["email"] == BOB
    moved = [e for e in detail["events"] if e["type"] == "contact_transferred"]
    assert [e["detail"] for e in moved] == [{"from": ADA, "to": BOB, "by": "desk-bot"}]

    client.post(
        f"/api/requests/{number}/replies",
        json={"body": "We restarted the exporter.", "kind": "status_report"},
        headers=auth,
    )
    run_worker(gateway.rt, gateway.redis, burst=True, cron=False)
    assert str(gateway.relay.messages[-1]["To"]).endswith(f"<{BOB}>")

    refusal = " ".join(refusal_of(gateway, ADA).split())
    assert refusal.startswith("550 5.7.1")
    # An unverified sender is told nothing about the customer; staff read who took over.
    assert "bob@acme.example" not in refusal
    with gateway.rt.db.sessions() as session:
        row = session.scalars(select(IntakeRecord).order_by(IntakeRecord.id.desc())).first()
        assert row is not None
        assert (row.outcome, row.reason) == ("rejected", "inactive_contact")
        assert "transferred to Bob Builder <bob@acme.example>" in " ".join(row.detail.split())
    with gateway.rt.db.sessions() as session:
        assert len(session.scalars(select(ContactTransfer)).all()) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"from": "nobody@acme.example", "to": BOB}, 404, "unknown_contact"),
        ({"from": ADA, "to": ADA}, 422, "same_contact"),
        ({"from": ADA}, 422, "missing_to"),
    ],
)
def test_a_transfer_that_cannot_be_done_says_why(
    gateway: Gateway,
    client: FlaskClient,
    auth: dict[str, str],
    body: dict[str, str],
    status: int,
    code: str,
) -> None:
    answer = client.post("/api/contacts/transfer", json=body, headers=auth)
    assert (answer.status_code, answer.json["error"]["code"]) == (status, code)


def test_the_command_transfers_and_says_what_moved(gateway: Gateway) -> None:
    gateway.send(make_mail(ADA, "Reports are slow"))
    gateway.drain()
    number = gateway.requests()[-1].number
    env = {
        "INTAKE_CONFIG": gateway.rt.settings.config,
        "INTAKE_DATABASE_URL": gateway.rt.settings.database_url,
        "INTAKE_VAR_DIR": gateway.rt.settings.var_dir,
        "INTAKE_SECRET_KEY": "test-secret",
    }
    result = CliRunner().invoke(cli, ["contacts", "transfer", ADA, BOB], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Bob Builder <{BOB}> took over from {ADA}: {number}"
    again = CliRunner().invoke(cli, ["contacts", "transfer", "who@acme.example", BOB], env=env)
    assert again.exit_code == 1
    assert "No contact has the address who@acme.example." in again.output
