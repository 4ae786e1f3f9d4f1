"""The parsers package stands alone: it imports none of the gateway's other layers or servers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import parsers

FORBIDDEN = ("intake", "web", "voice", "flask", "sqlalchemy", "redis", "rq", "twilio", "aiosmtpd")
PACKAGE = Path(parsers.__file__).resolve().parent


def imported_names(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_module_of_the_package_imports_a_forbidden_one() -> None:
    for source in sorted(PACKAGE.glob("*.py")):
        tops = {name.split(".", 1)[0] for name in imported_names(source)}
        assert not tops & set(FORBIDDEN), source.name


def test_importing_parsers_loads_nothing_forbidden() -> None:
    probe = "import sys, parsers; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    ).stdout.split()
    tops = {name.split(".", 1)[0] for name in loaded}
    assert not tops & set(FORBIDDEN)
