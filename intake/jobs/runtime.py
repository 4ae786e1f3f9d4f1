"""The process's runtime: settings, database and policy, built once per process.

RQ jobs are module-level functions that take ids (RQ's own guidance); they reach the database
through this runtime, which the worker sets up at start (or builds from the environment).
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.policy import Policy, load_policy
from intake.secret import with_secret_key
from intake.settings import Settings, load_settings
from intake.store.db import Database
from intake.workflows.config import load_workflow_config


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    policy: Policy


_current: Runtime | None = None


def build_runtime(settings: Settings) -> Runtime:
    settings = with_secret_key(settings)
    policy = load_policy(settings.policy)
    load_workflow_config(settings.policy)  # a bad [goal], [escalation]... stops start-up here
    return Runtime(settings, Database.from_settings(settings), policy)


def install(runtime: Runtime) -> None:
    global _current  # noqa: PLW0603 - one runtime per process, set once at start
    _current = runtime


def current() -> Runtime:
    if _current is None:
        install(build_runtime(load_settings()))
    assert _current is not None
    return _current
