"""The secret key that signs sessions, status links and reply tokens.

INTAKE_SECRET_KEY when set; otherwise one generated into var/secret_key on first start, so every
process sharing that var/ signs alike.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from intake.settings import Settings

KEY_FILE = "secret_key"


def with_secret_key(settings: Settings) -> Settings:
    """The settings with ``secret_key`` filled in (read from var/ or generated there)."""
    if settings.secret_key:
        return settings
    return settings.replace(secret_key=_read_or_create(settings.var_path / KEY_FILE))


def _read_or_create(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: when two processes start at once, one writes and the other reads its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key
