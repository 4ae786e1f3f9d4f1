"""`intake call simulate`: a whole call typed at the terminal against the served app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from intake.cli import cli
from intake.settings import Settings
from tests.conftest import ROOT
from tests.helpers import Relay
from tests.test_voice_calls import ADA, add_caller
from tests.twilio_driver import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    TWILIO_NUMBER,
    Phone,
    serve_phone,
)


@pytest.fixture
def phone(settings: Settings, redis_url: str, relay: Relay) -> Iterator[Phone]:
    with serve_phone(settings, redis_url, relay) as served:
        yield served


def simulate(phone: Phone, caller_id: str, typed: list[str], **env: str) -> str:
    environment = {
        "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
        "INTAKE_PUBLIC_URL": PUBLIC_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": TWILIO_NUMBER,
    } | env
    args = ["call", "simulate", "--from", caller_id, "--url", phone.app_url]
    result = CliRunner().invoke(cli, args, input="\n".join(typed) + "\n", env=environment)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_whole_call_in_the_simulator(phone: Phone) -> None:
    add_caller(phone)
    output = simulate(
        phone,
        "anonymous",
        ["14155550101#", "4321#", "say 0.42: severity two", "1", "Exports fail with error 17"],
    )
    assert "IVR: Please enter your registered phone number" in output
    assert "IVR: We understood severity 2." in output
    assert "Your request number is S R, 0, 0, 0, 0, 0, 1." in output
    assert "(Twilio sends the transcription callback: 204)" in output
    (request,) = phone.requests()
    assert (request.severity, request.description) == (2, "Exports fail with error 17")


def test_the_simulator_plays_the_engineers_phone(phone: Phone) -> None:
    add_caller(phone)
    output = simulate(phone, ADA, ["1", "1", "The whole service is down", "1", "n", "a"])
    assert "(ringing the engineer on call at +14155550190)" in output
    assert "IVR to the engineer: Severity 1 call from Ada Lovelace" in output
    assert "(the engineer is on the line; the call is put through)" in output


def test_the_end_of_the_input_hangs_up(phone: Phone) -> None:
    add_caller(phone)
    output = simulate(phone, ADA, ["3"])  # then the input ends, at the recording tone
    assert "(call ended)" in output
    assert phone.requests()[0].severity == 3  # a hang-up while recording still opens it


def test_the_simulator_needs_the_twilio_settings(phone: Phone) -> None:
    result = CliRunner().invoke(
        cli,
        ["call", "simulate", "--from", ADA, "--url", phone.app_url],
        env={"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"), "TWILIO_AUTH_TOKEN": ""},
    )
    assert result.exit_code == 1
    assert "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER" in result.output


def test_a_wrongly_signed_simulation_is_refused(phone: Phone) -> None:
    result = CliRunner().invoke(
        cli,
        ["call", "simulate", "--from", ADA, "--url", phone.app_url],
        env={
            "INTAKE_CONFIG": str(ROOT / "config" / "intake.toml"),
            "INTAKE_PUBLIC_URL": PUBLIC_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "not-the-servers-token",
            "TWILIO_PHONE_NUMBER": TWILIO_NUMBER,
        },
    )
    assert result.exit_code == 1
    assert "the app answered 403" in result.output
