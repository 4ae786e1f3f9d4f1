"""The phone door's small parts: what keys and words mean, the rota's configuration, and the
way numbers are read out."""

from __future__ import annotations

import re
import tomllib

import pytest

from intake import rota
from intake.errors import ConfigError
from intake.rota import Engineer, Rota, load_rota
from intake.settings import load_settings
from tests.conftest import ROOT
from voice import prompts, twiml
from voice.call_input import (
    category_from_input,
    confident,
    phone_from_keys,
    request_id_from_keys,
    severity_from_keys,
    severity_from_speech,
)
from voice.caller import HangUp, Keys, Silence, Speech
from voice.calls import STATES
from voice.simulator import parse_answer


@pytest.mark.parametrize(
    ("said", "severity"),
    [
        ("severity one", 1),
        ("Severity 1.", 1),
        ("sev one", 1),
        ("severity won", 1),
        ("it is critical", 1),
        ("our service is down", 1),
        ("urgent", 1),
        ("severity two", 2),
        ("severity to", 2),
        ("serious", 2),
        ("three", 3),
        ("severity three please", 3),
        ("a minor problem", 3),
        ("severity for", 4),
        ("just a question", 4),
        ("I want to report severity two", 2),  # "to" counts only after "severity"
        ("severity one or two", None),  # two severities: ask again
        ("hello", None),
        ("", None),
    ],
)
def test_severity_from_speech(said: str, severity: int | None) -> None:
    assert severity_from_speech(said) == severity


@pytest.mark.parametrize(("keys", "severity"), [("1", 1), ("4#", 4), ("5", None), ("", None)])
def test_severity_from_keys(keys: str, severity: int | None) -> None:
    assert severity_from_keys(keys) == severity


@pytest.mark.parametrize(
    ("confidence", "sure"), [("0.92", True), ("0.6", True), ("0.59", False), ("", False)]
)
def test_speech_confidence_threshold(confidence: str, sure: bool) -> None:
    assert confident(confidence) is sure


@pytest.mark.parametrize(
    ("digits", "speech", "category"),
    [("1", "", "platform"), ("2", "", "recording"), ("3", "", "other"), ("7", "", None),
     ("", "the platform is slow", "platform"), ("", "a recording is missing", "recording"),
     ("", "the platform recording", None), ("", "billing", None)],
)  # fmt: skip
def test_category_from_input(digits: str, speech: str, category: str | None) -> None:
    assert category_from_input(digits, speech) == category


@pytest.mark.parametrize(
    ("keys", "phone"),
    [("14155550101#", "+14155550101"), ("0014155550101", "+14155550101"),
     ("442071838750", "+442071838750"), ("123#", None), ("", None), ("1415555*", None)],
)  # fmt: skip
def test_phone_from_keys(keys: str, phone: str | None) -> None:
    assert phone_from_keys(keys) == phone


@pytest.mark.parametrize(
    ("keys", "request_id"), [("000123#", 123), ("7", 7), ("0", None), ("", None), ("9" * 19, None)]
)
def test_request_id_from_keys(keys: str, request_id: int | None) -> None:
    assert request_id_from_keys(keys) == request_id


def test_numbers_are_read_one_character_at_a_time() -> None:
    assert prompts.spell("SR-000123") == "S R, 0, 0, 0, 1, 2, 3"
    assert prompts.spell_phone("+14155550199") == "plus 1, 4, 1, 5, 5, 5, 5, 0, 1, 9, 9"


def test_the_documented_rota_example_loads() -> None:
    example = re.search(r"```toml\n(.*?)```", rota.__doc__ or "", re.S)
    assert example is not None
    loaded = load_rota(tomllib.loads(example.group(1)))
    assert loaded.engineers[0] == Engineer("Linus", "+14155550190", "linus@example.com")
    assert (loaded.ring_seconds, loaded.non_technical_number) == (20, "+14155550199")


def test_no_rota_means_nobody_on_call() -> None:
    assert load_rota({}) == Rota()
    settings = load_settings(env={"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml")})
    assert load_rota(settings.policy) == Rota()


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"engineers": [{"name": "Linus"}]}, "engineer 1 must be a table of name, phone and email"),
        ({"engineers": [{"name": "Linus", "phone": "555-0190"}]}, "E.164"),
        ({"engineers": [{"name": "", "phone": "+14155550190"}]}, "needs a name"),
        ({"engineers": {"name": "Linus"}}, "must be a list"),
        ({"ring_seconds": 2}, "from 5 to 60"),
        ({"ring_seconds": True}, "from 5 to 60"),
        ({"non_technical_number": "call us"}, "non_technical_number"),
        ({"pager": "x"}, "unknown key 'pager'"),
    ],
)
def test_a_bad_rota_stops_start_up_with_a_sentence(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_rota({"rota": table})


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        ("2", Keys("2")),
        ("14155550101#", Keys("14155550101#")),
        ("say: severity one", Speech("severity one", 0.92)),
        ("say 0.4: severity two", Speech("severity two", 0.4)),
        ("", Silence()),
        ("hangup", HangUp()),
    ],
)
def test_what_the_simulator_makes_of_a_typed_line(typed: str, answer: object) -> None:
    assert parse_answer(typed) == answer


def test_the_rota_examples_of_the_readme_and_the_config_file_load() -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[rota]" in b)
    assert len(load_rota(tomllib.loads(block)).engineers) == 2
    config = (ROOT / "config" / "intake.toml").read_text()
    commented = config[config.index("# [rota]") :].splitlines()
    uncommented = "\n".join(line.removeprefix("# ") for line in commented)
    assert load_rota(tomllib.loads(uncommented)).non_technical_number == "+14155550199"


def test_every_state_of_a_call_has_its_prompt() -> None:
    assert set(twiml.BUILDERS) == set(STATES)
