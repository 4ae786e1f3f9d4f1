"""Who answers the phone: the on-call rota for Severity 1 calls, from the ``[rota]`` table.

```toml
[rota]
ring_seconds = 20                  # how long each engineer's phone rings before the next is tried
non_technical_number = "+14155550199"   # read to callers who cannot be identified (optional)
engineers = [
  { name = "Linus", phone = "+14155550190", email = "linus@example.com" },   # tried first
  { name = "Margaret", phone = "+14155550191" },
]
```

An empty or missing table means nobody is on call: Severity 1 callers are not offered a
connection, and their request is opened and acknowledged as any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from intake.errors import ConfigError
from parsers.phones import normalise_phone

DEFAULT_RING_SECONDS = 20
RING_SECONDS_RANGE = (5, 60)
ROTA_KEYS = ("engineers", "ring_seconds", "non_technical_number")
ENGINEER_KEYS = frozenset({"name", "phone", "email"})


@dataclass(frozen=True)
class Engineer:
    name: str
    phone: str  # E.164
    email: str = ""  # where the breach watch writes when this engineer is on call


@dataclass(frozen=True)
class Rota:
    engineers: tuple[Engineer, ...] = ()
    ring_seconds: int = DEFAULT_RING_SECONDS
    non_technical_number: str = ""  # E.164, or empty when none is configured


def load_rota(tables: Mapping[str, Any]) -> Rota:
    """The rota from the config file's policy tables; a bad entry raises ConfigError."""
    table = tables.get("rota", {})
    if not isinstance(table, Mapping):
        raise ConfigError("[rota] must be a table with engineers, ring_seconds and more.")
    for key in table:
        if key not in ROTA_KEYS:
            raise ConfigError(f"[rota]: unknown key '{key}' (known: {', '.join(ROTA_KEYS)}).")
    engineers = table.get("engineers", [])
    if not isinstance(engineers, list):
        raise ConfigError("[rota] engineers must be a list such as [{name = ..., phone = ...}].")
    return Rota(
        tuple(_engineer(i, entry) for i, entry in enumerate(engineers, start=1)),
        _ring_seconds(table.get("ring_seconds", DEFAULT_RING_SECONDS)),
        _optional_phone("non_technical_number", table.get("non_technical_number", "")),
    )


def _engineer(position: int, entry: Any) -> Engineer:
    where = f"[rota] engineer {position}"
    if not isinstance(entry, Mapping) or not {"name", "phone"} <= set(entry) <= ENGINEER_KEYS:
        example = '{name = "…", phone = "+1…", email = "…"}'
        raise ConfigError(f"{where} must be a table of name, phone and email: {example}.")
    name, phone = entry["name"], entry["phone"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} needs a name.")
    e164 = normalise_phone(phone) if isinstance(phone, str) else None
    if e164 is None:
        raise ConfigError(f"{where} ({name}): phone {phone!r} is not a number in E.164 form.")
    email = entry.get("email", "")
    if not isinstance(email, str) or (email and "@" not in email):
        raise ConfigError(f"{where} ({name}): email {email!r} is not an address.")
    return Engineer(name.strip(), e164, email.strip())


def _ring_seconds(value: Any) -> int:
    low, high = RING_SECONDS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[rota] ring_seconds must be a whole number from {low} to {high}.")
    return value


def _optional_phone(key: str, value: Any) -> str:
    if value == "":
        return ""
    e164 = normalise_phone(value) if isinstance(value, str) else None
    if e164 is None:
        raise ConfigError(f"[rota] {key}: {value!r} is not a phone number in E.164 form.")
    return e164
