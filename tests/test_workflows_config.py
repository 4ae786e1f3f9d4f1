"""The workflows' settings: defaults, the documented example in config/intake.toml, and one
sentence naming the key for every bad entry."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from intake.errors import ConfigError
from intake.workflows.config import Manager, WorkflowConfig, load_workflow_config
from tests.conftest import ROOT


def test_the_defaults() -> None:
    config = load_workflow_config({})
    assert config == WorkflowConfig()
    assert (config.met_by, config.warn_at) == ("both", (50, 80, 100))
    assert (config.report_every(1), config.report_every(2), config.report_every(3)) == (4, 8, None)
    assert config.notice_on("resolved") and config.manager_at(1) is None


def test_the_commented_example_in_the_config_file_loads() -> None:
    text = (ROOT / "config" / "intake.toml").read_text(encoding="utf-8")
    tables = re.findall(
        r"^# (\[(?:goal|notices|status_reports|escalation)\]\n(?:#.*\n)*)", text, re.M
    )
    assert len(tables) == 4
    example = "\n".join(re.sub(r"^# ?", "", t, flags=re.M) for t in tables)
    config = load_workflow_config(tomllib.loads(example))
    assert config.notify == "desk@example.com"
    assert config.manager_at(2) == Manager("Edsger", "edsger@example.com", "", 2)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"goal": {"met_by": "ack"}}, r"\[goal\] met_by must be one of"),
        ({"goal": {"warn_at": [50, 80]}}, r"warn_at must list percentages .* including 100"),
        ({"goal": {"warn_at": [0, 100]}}, r"warn_at must list percentages from 1 to 100"),
        ({"goal": {"when": 1}}, r"\[goal\]: unknown key 'when'"),
        ({"notices": {"resolved": "yes"}}, r"\[notices\] resolved must be true or false"),
        ({"status_reports": {"1": 0}}, r"\[status_reports\] 1 must be a whole number"),
        ({"escalation": {"managers": [{"name": "G"}]}}, r"manager 1 needs name, email and level"),
        (
            {"escalation": {"managers": [{"name": "G", "email": "g", "level": 1}]}},
            r"email 'g' is not an address",
        ),
        (
            {
                "escalation": {
                    "managers": [
                        {"name": "G", "email": "g@x", "level": 1},
                        {"name": "H", "email": "h@x", "level": 1},
                    ]
                }
            },
            r"each level has one manager",
        ),
    ],
)
def test_a_bad_entry_is_named(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_workflow_config(tables)
