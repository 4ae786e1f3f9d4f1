"""Settings: built-in defaults, then the TOML file, then the environment, into one frozen object.

A bad value stops start-up with one sentence naming the key (see the README's Configuration).
"""

from __future__ import annotations

import os
import re
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from intake.errors import ConfigError
from parsers.addresses import split_server

ENV_PREFIX = "INTAKE_"
# Twilio's variables keep Twilio's own names in the environment.
UNPREFIXED_ENV = ("twilio_account_sid", "twilio_auth_token", "twilio_phone_number")
# Tables that only the TOML file can hold; they are read by the policy module (and the
# ``[[imap]]`` mailboxes by the IMAP door).
POLICY_TABLES = (
    "severity",
    "calendar",
    "rota",
    "default_severity",
    "voice",
    "imap",
    "goal",
    "notices",
    "escalation",
    "status_reports",
)
IMAP_AFTER = ("move", "flag")
SENDER_AUTH_MODES = ("enforce", "monitor", "off")
LOG_FORMATS = ("text", "json")
REFUSAL_MODES = ("reject", "accept_and_log")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
PORT_SETTINGS = ("smtp_port", "web_port")
MAX_SMTP_PROCESSES = 64
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
# Settings with a range: (lowest, highest).
RANGES = {
    "web_connection_limit": (10, 100_000),
    "web_client_connection_limit": (0, 100_000),
    "web_header_timeout": (1, 3600),
    "web_idle_timeout": (1, 86400),
    "web_max_request_body": (1024, 1024 * 1024 * 1024),
    "smtp_processes": (0, MAX_SMTP_PROCESSES),  # 0: as many as suit the machine
}
ACK_LIMIT_WINDOWS = {"minute": 60, "hour": 3600, "day": 86400}
# Durations in seconds and the range each may take.
SECONDS_RANGES = {
    "sweep_interval": (1, 3600),
    "job_timeout": (1, 3600),
    "storage_timeout": (1, 600),
    "stall_seconds": (2, 3600),
}


@dataclass(frozen=True)
class Settings:
    """Every setting of the gateway; built once by :func:`load_settings` and passed down."""

    config: str = "config/intake.toml"
    var_dir: str = "var"
    database_url: str = "sqlite:///var/intake.db"
    redis_url: str = ""  # empty: an embedded Redis under var/
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_hostname: str = ""  # the name in the SMTP greeting; empty: this machine's name
    # Behind a TCP load balancer: every connection starts with a PROXY header (v1 or v2)
    # naming the client, whose address the caps, SPF and the intake log then use.
    smtp_proxy_protocol: bool = False
    # SMTP listeners on the one port; 0 (unset): one for `intake smtp`, and for `intake run`
    # one per core on PostgreSQL, one on SQLite.
    smtp_processes: int = 0
    smtp_max_sessions: int = 200  # SMTP sessions at once; past it a new one gets 421 4.7.0
    smtp_max_sessions_per_ip: int = 20  # the same, from one client address
    smtp_max_data_in_flight: int = 200 * 1024 * 1024  # bytes of DATA being received at once
    refusals: str = "reject"  # or "accept_and_log": 250 for refused senders (behind a relay)
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    # The web server's limits (web/server.py): idle and slow clients cannot hold it.
    web_connection_limit: int = 1000
    web_client_connection_limit: int = 100  # per client address; 0: no cap (behind a proxy)
    web_header_timeout: int = 10  # seconds from a request's first byte to its last header
    web_idle_timeout: int = 60  # seconds a connection may send nothing
    web_max_request_body: int = 4 * 1024 * 1024
    web_trusted_proxy: str = ""  # the reverse proxy's address: its X-Forwarded-For is believed
    public_url: str = "http://127.0.0.1:8080"
    support_addresses: tuple[str, ...] = ("support@intake.localhost",)
    outbound_smtp_url: str = ""  # empty: acknowledgments go to the maildir var/outbox/
    ack_from: str = "support@intake.localhost"
    imap_url: str = ""  # one mailbox URL or several, comma-separated; or [[imap]] tables
    imap_ca_file: str = ""  # PEM CA certificates the IMAP server's certificate is checked against
    imap_oauth2_token_command: str = ""  # prints an OAuth2 access token (XOAUTH2 login)
    imap_processed_folder: str = "Processed"
    imap_quarantine_folder: str = "Quarantine"
    imap_after: str = "move"  # "move" to the processed folder, or "flag" in place
    imap_max_attempts: int = 3  # failures before a message goes to the quarantine folder
    imap_poll_interval: int = 60  # seconds between polls where the server has no IDLE
    sender_auth: str = "enforce"
    dns_resolver: str = ""  # host[:port] of the name server for sender checks; empty: the system's
    trusted_authserv_ids: tuple[str, ...] = ()  # border servers whose Authentication-Results count
    trusted_arc_sealers: tuple[str, ...] = ()  # forwarders whose ARC seal may vouch for a message
    ack_limit: str = "20/hour"
    secret_key: str = ""  # empty: generated into var/ on first start
    max_message_size: int = 25 * 1024 * 1024
    log_level: str = "INFO"
    log_format: str = "text"
    queue_name: str = "intake"
    sweep_interval: int = 30  # seconds between outbox sweeps (re-enqueueing what Redis lost)
    job_timeout: int = 120  # seconds a job may run; one started longer ago is taken for dead
    storage_timeout: int = 5  # seconds the SMTP door waits for the database before a 451
    stall_seconds: int = 10  # work waiting this long with no progress: the door is stuck
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_phone_number: str = ""
    twilio_api_base: str = ""
    tls_cert_file: str = ""  # PEM certificate (chain) for STARTTLS on the SMTP door; empty: none
    tls_key_file: str = ""  # its private key (empty: the key is in the certificate file)
    policy: Mapping[str, Any] = field(default_factory=dict)

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)

    @property
    def smtp_process_count(self) -> int:
        """The SMTP listeners `intake run` starts on the one port: the setting, or where it
        is 0, one per core on PostgreSQL (at most 8) and one on SQLite, whose single writer
        several processes would only queue for."""
        if self.smtp_processes:
            return self.smtp_processes
        if self.database_url.startswith("sqlite"):
            return 1
        return max(1, min(8, os.cpu_count() or 1))

    @property
    def ack_limit_count_and_window(self) -> tuple[int, int]:
        count, _, unit = self.ack_limit.partition("/")
        return int(count), ACK_LIMIT_WINDOWS[unit]

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed, validated like a fresh load."""
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        return _validated(Settings(**values))


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read defaults, the TOML file named by INTAKE_CONFIG, then the environment, then overrides."""
    env = os.environ if env is None else env
    config_path = env.get(ENV_PREFIX + "CONFIG", Settings.config)
    values: dict[str, Any] = {"config": config_path}
    file_values = _read_toml(Path(config_path), required=ENV_PREFIX + "CONFIG" in env)
    policy = {k: file_values.pop(k) for k in POLICY_TABLES if k in file_values}
    values |= {k: _coerce(k, v, "in " + config_path) for k, v in file_values.items()}
    values |= _from_environment(env)
    values |= {k: _coerce(k, v, "given") for k, v in (overrides or {}).items()}
    values["policy"] = policy
    return _validated(Settings(**values))


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(Settings) if f.name != "policy"}


def _read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise ConfigError(f"INTAKE_CONFIG names {path}, which does not exist.")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from exc
    known = set(_field_types()) | set(POLICY_TABLES)
    for key in data:
        if key not in known or key == "config":
            raise ConfigError(f"{path}: unknown setting '{key}'.")
    return data


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _field_types():
        if name in ("config", "policy"):
            continue
        env_name = name.upper() if name in UNPREFIXED_ENV else ENV_PREFIX + name.upper()
        if env_name in env:
            values[name] = _coerce(name, env[env_name], "in " + env_name)
    return values


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _field_types().get(name)
    if kind is None:
        raise ConfigError(f"Unknown setting '{name}' {where}.")
    if kind == "int":
        return _in_range(name, _as_int(name, value, where), where)
    if kind == "bool":
        return _as_bool(name, value, where)
    if name == "log_level" and isinstance(value, str):
        _check_choice(name, value.strip().upper(), LOG_LEVELS, where)
    if kind.startswith("tuple"):
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(i).strip().lower() for i in items if str(i).strip())
    if not isinstance(value, str):
        raise ConfigError(f"Setting '{name}' {where} must be a string, not {value!r}.")
    return value.strip()


def _as_bool(name: str, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ConfigError(f"Setting '{name}' {where} must be true or false, not {value!r}.")


def _as_int(name: str, value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(
            f"Setting '{name}' {where} must be a whole number, not {value!r}."
        ) from None


def _in_range(name: str, value: int, where: str = "") -> int:
    """``value`` when the setting allows it; the sentence names where it was given."""
    at = f" {where}" if where else ""
    if name in PORT_SETTINGS and not 1 <= value <= 65535:
        raise ConfigError(f"Setting '{name}'{at} must be a port between 1 and 65535, not {value}.")
    low, high = RANGES.get(name, (None, None))
    if low is not None and high is not None and not low <= value <= high:
        raise ConfigError(f"Setting '{name}'{at} must be between {low} and {high}, not {value}.")
    return value


def _validated(s: Settings) -> Settings:
    for name in (*PORT_SETTINGS, *RANGES):
        _in_range(name, getattr(s, name))
    _check_choice("log_level", s.log_level.upper(), LOG_LEVELS)
    _check_url("database_url", s.database_url, ("sqlite", "postgresql", "postgresql+psycopg"))
    if s.redis_url:
        _check_url("redis_url", s.redis_url, ("redis", "rediss", "unix"))
    _check_url("public_url", s.public_url, ("http", "https"))
    if s.outbound_smtp_url:
        _check_url("outbound_smtp_url", s.outbound_smtp_url, ("smtp", "smtps"))
    _check_imap(s)
    if s.twilio_api_base:
        _check_url("twilio_api_base", s.twilio_api_base, ("http", "https"))
    _check_choice("sender_auth", s.sender_auth, SENDER_AUTH_MODES)
    _check_choice("log_format", s.log_format, LOG_FORMATS)
    _check_choice("refusals", s.refusals, REFUSAL_MODES)
    _check_smtp_limits(s)
    _check_dns_resolver(s.dns_resolver)
    if not re.fullmatch(r"[1-9]\d*/(minute|hour|day)", s.ack_limit):
        raise ConfigError(f"Setting 'ack_limit' must look like '20/hour', not {s.ack_limit!r}.")
    if not s.support_addresses or not all("@" in a for a in s.support_addresses):
        raise ConfigError("Setting 'support_addresses' must list one or more email addresses.")
    for name, (low, high) in SECONDS_RANGES.items():
        if not low <= getattr(s, name) <= high:
            raise ConfigError(f"Setting '{name}' must be between {low} and {high} seconds.")
    if s.max_message_size < 1024:
        raise ConfigError("Setting 'max_message_size' must be at least 1024 bytes.")
    _check_tls_files(s.tls_cert_file, s.tls_key_file)
    return s


def _check_smtp_limits(s: Settings) -> None:
    if not 1 <= s.smtp_max_sessions <= 100_000:
        raise ConfigError("Setting 'smtp_max_sessions' must be between 1 and 100000.")
    if not 1 <= s.smtp_max_sessions_per_ip <= s.smtp_max_sessions:
        raise ConfigError(
            "Setting 'smtp_max_sessions_per_ip' must be between 1 and 'smtp_max_sessions' "
            f"({s.smtp_max_sessions})."
        )
    if s.smtp_max_data_in_flight < s.max_message_size:
        raise ConfigError(
            "Setting 'smtp_max_data_in_flight' must be at least 'max_message_size' "
            f"({s.max_message_size} bytes), or no message that large could be received."
        )
    if s.smtp_hostname and not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", s.smtp_hostname):
        raise ConfigError(
            f"Setting 'smtp_hostname' must be a host name (letters, digits, dots and hyphens), "
            f"not {s.smtp_hostname!r}."
        )


def _check_dns_resolver(server: str) -> None:
    """``host[:port]``: a host name or address, and a port when one is given."""
    try:
        host, port = split_server(server) if server else ("-", 53)
    except ValueError:
        host, port = "", 0
    if not host or not 1 <= port <= 65535:
        raise ConfigError(
            f"Setting 'dns_resolver' must look like 'host' or 'host:port'; got {server!r}."
        )


def _check_imap(s: Settings) -> None:
    for imap_url in (u.strip() for u in s.imap_url.split(",") if u.strip()):
        try:
            _check_url("imap_url", imap_url, ("imap", "imaps"))
        except ConfigError as exc:  # the sentence quotes the URL: never its password
            raise ConfigError(_without_password(str(exc), imap_url)) from None
    _check_choice("imap_after", s.imap_after, IMAP_AFTER)
    if not 1 <= s.imap_max_attempts <= 100:
        raise ConfigError("Setting 'imap_max_attempts' must be between 1 and 100.")
    if not 1 <= s.imap_poll_interval <= 3600:
        raise ConfigError("Setting 'imap_poll_interval' must be between 1 and 3600 seconds.")


def _without_password(sentence: str, url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return sentence.replace(password, "***") if password else sentence


def _check_tls_files(cert_file: str, key_file: str) -> None:
    """A key needs a certificate; both must be readable and match (the SMTP door's STARTTLS)."""
    if key_file and not cert_file:
        raise ConfigError("Setting 'tls_key_file' is set but 'tls_cert_file' is not.")
    if not cert_file:
        return
    for name, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file)):
        if path and not Path(path).is_file():
            raise ConfigError(f"Setting '{name}' names {path}, which is not a readable file.")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            cert_file,
            key_file or None,
            password="",  # an encrypted key fails, never prompts
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"Settings 'tls_cert_file'/'tls_key_file' do not hold a usable certificate and "
            f"key: {exc}."
        ) from None


def _check_url(name: str, url: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise ConfigError(f"Setting '{name}' is not a valid URL ({exc}): {url!r}.") from None
    if parts.scheme not in schemes:
        wanted = ", ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"Setting '{name}' must be a URL starting with {wanted}; got {url!r}.")
    if parts.scheme in ("http", "https", "smtp", "smtps", "imap", "imaps") and not parts.hostname:
        raise ConfigError(f"Setting '{name}' must name a host: {url!r}.")


def _check_choice(name: str, value: str, choices: tuple[str, ...], where: str = "") -> None:
    if value not in choices:
        at = f" {where}" if where else ""
        raise ConfigError(
            f"Setting '{name}'{at} must be one of {', '.join(choices)}; got {value!r}."
        )
