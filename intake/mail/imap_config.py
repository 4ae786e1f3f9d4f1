"""The mailboxes the IMAP door polls, read from the settings: ``INTAKE_IMAP_URL`` (one URL or
several, comma-separated) and the config file's ``[[imap]]`` tables.

A URL names the server, the login and the folder: ``imaps://user:password@host/INBOX``.
``imaps://`` is TLS from the first byte; ``imap://`` must upgrade with STARTTLS (the door never
talks plain text). Without a password the login is XOAUTH2 with a token from the token command.
A URL's query may set a mailbox's own folders and after-action, as an ``[[imap]]`` table may:
``?processed=Done&quarantine=Broken&after=flag``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from intake.errors import ConfigError
from intake.settings import IMAP_AFTER, Settings

IMAPS_PORT, IMAP_PORT = 993, 143
TABLE_KEYS = (
    "url",
    "processed_folder",
    "quarantine_folder",
    "after",
    "max_attempts",
    "oauth2_token_command",
    "ca_file",
)
QUERY_KEYS = {"processed": "processed_folder", "quarantine": "quarantine_folder", "after": "after"}


@dataclass(frozen=True)
class MailboxConfig:
    """One mailbox to poll, and what to do with its messages once they are recorded."""

    host: str
    port: int
    implicit_tls: bool  # imaps://; otherwise STARTTLS, required
    user: str
    password: str  # empty: XOAUTH2 with the token command's token
    folder: str
    processed_folder: str
    quarantine_folder: str
    after: str  # "move" or "flag"
    max_attempts: int
    oauth2_token_command: str
    ca_file: str
    poll_interval: int

    @property
    def key(self) -> str:
        """The mailbox's name in the database (its state, its lease): no secret in it."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"[:300]

    @property
    def uses_oauth2(self) -> bool:
        return not self.password


def mailboxes(settings: Settings) -> list[MailboxConfig]:
    """Every configured mailbox: the URLs of INTAKE_IMAP_URL, then the [[imap]] tables."""
    urls = [u.strip() for u in settings.imap_url.split(",") if u.strip()]
    found = [mailbox_from_url(settings, url) for url in urls]
    tables = settings.policy.get("imap", [])
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError("The IMAP mailboxes of the config file are [[imap]] tables.")
    found += [_mailbox_from_table(settings, table) for table in tables]
    keys = [m.key for m in found]
    if len(set(keys)) != len(keys):
        raise ConfigError("The same IMAP mailbox is configured twice.")
    return found


def mailbox_from_url(
    settings: Settings, url: str, table: Mapping[str, Any] | None = None
) -> MailboxConfig:
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ConfigError("An IMAP mailbox URL starts with imaps:// or imap:// and names a host.")
    if not parts.username:
        raise ConfigError(f"The IMAP mailbox URL for {parts.hostname} names no user.")
    options = {QUERY_KEYS[k]: v[-1] for k, v in parse_qs(parts.query).items() if k in QUERY_KEYS}
    options |= {k: v for k, v in (table or {}).items() if k != "url"}
    implicit = parts.scheme == "imaps"
    mailbox = MailboxConfig(
        host=parts.hostname,
        port=parts.port or (IMAPS_PORT if implicit else IMAP_PORT),
        implicit_tls=implicit,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        processed_folder=str(options.get("processed_folder", settings.imap_processed_folder)),
        quarantine_folder=str(options.get("quarantine_folder", settings.imap_quarantine_folder)),
        after=str(options.get("after", settings.imap_after)),
        max_attempts=_whole(options.get("max_attempts", settings.imap_max_attempts)),
        oauth2_token_command=str(
            options.get("oauth2_token_command", settings.imap_oauth2_token_command)
        ),
        ca_file=str(options.get("ca_file", settings.imap_ca_file)),
        poll_interval=settings.imap_poll_interval,
    )
    _check(mailbox)
    return mailbox


def _mailbox_from_table(settings: Settings, table: Mapping[str, Any]) -> MailboxConfig:
    unknown = [k for k in table if k not in TABLE_KEYS]
    if unknown:
        raise ConfigError(f"[[imap]]: unknown key '{unknown[0]}'.")
    if not isinstance(table.get("url"), str):
        raise ConfigError("[[imap]] needs a url such as imaps://user@host/INBOX.")
    return mailbox_from_url(settings, table["url"], table)


def _whole(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ConfigError(f"[[imap]] max_attempts must be a whole number, not {value!r}.") from None


def _check(mailbox: MailboxConfig) -> None:
    where = f"IMAP mailbox {mailbox.key}"
    if mailbox.after not in IMAP_AFTER:
        raise ConfigError(f"{where}: after must be one of {', '.join(IMAP_AFTER)}.")
    if mailbox.uses_oauth2 and not mailbox.oauth2_token_command:
        raise ConfigError(
            f"{where} has no password: set one in its URL, or INTAKE_IMAP_OAUTH2_TOKEN_COMMAND "
            "for an XOAUTH2 login."
        )
    if mailbox.after == "move" and mailbox.processed_folder == mailbox.folder:
        raise ConfigError(f"{where}: the processed folder must not be the folder polled.")
    if not 1 <= mailbox.max_attempts <= 100:
        raise ConfigError(f"{where}: max_attempts must be between 1 and 100.")
