"""What the workflows need from the process, in one value: the settings, the support policy,
the workflows' own settings and the on-call rota (all read from the config file at start)."""

from __future__ import annotations

from dataclasses import dataclass

from intake.policy import Policy
from intake.rota import Rota, load_rota
from intake.settings import Settings
from intake.workflows.config import WorkflowConfig, load_workflow_config


@dataclass(frozen=True)
class Desk:
    settings: Settings
    policy: Policy
    config: WorkflowConfig
    rota: Rota


def desk_for(settings: Settings, policy: Policy) -> Desk:
    """The desk of a process's settings and policy; a bad table raises ConfigError."""
    return Desk(settings, policy, load_workflow_config(settings.policy), load_rota(settings.policy))
