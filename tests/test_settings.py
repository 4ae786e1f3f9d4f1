"""Settings: defaults, then the TOML file, then the environment, then explicit overrides.

Every test passes its own environment and config file; the real process environment and the
working directory's config/ never leak in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from intake.errors import ConfigError
from intake.policy import load_policy
from intake.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent

WriteToml = Callable[[str], dict[str, str]]


@pytest.fixture
def no_file(write_toml: WriteToml) -> dict[str, str]:
    """The environment of an empty config file: only defaults and what a test adds."""
    return write_toml("")


@pytest.fixture
def write_toml(tmp_path: Path) -> WriteToml:
    """Write a config file and return the environment that names it."""

    def write(text: str) -> dict[str, str]:
        path = tmp_path / "intake.toml"
        path.write_text(text, encoding="utf-8")
        return {"INTAKE_CONFIG": str(path)}

    return write


def test_defaults_without_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default INTAKE_CONFIG is relative; from an empty directory there is no file, which is
    # fine as long as INTAKE_CONFIG was not given explicitly.
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.config == "config/intake.toml"
    assert s.database_url == "sqlite:///var/intake.db"
    assert s.redis_url == ""
    assert (s.smtp_host, s.smtp_port) == ("127.0.0.1", 2525)
    assert (s.web_host, s.web_port) == ("127.0.0.1", 8080)
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.support_addresses == ("support@intake.localhost",)
    assert s.outbound_smtp_url == ""
    assert s.ack_from == "support@intake.localhost"
    assert s.imap_url == ""
    assert s.sender_auth == "enforce"
    assert s.dns_resolver == ""
    assert s.ack_limit == "20/hour"
    assert s.ack_limit_count_and_window == (20, 3600)
    assert s.secret_key == ""
    assert s.max_message_size == 25 * 1024 * 1024
    assert (s.twilio_account_sid, s.twilio_auth_token, s.twilio_phone_number) == ("", "", "")
    assert s.twilio_api_base == ""
    assert s.policy == {}
    assert s.var_path == Path("var")


def test_an_empty_config_file_gives_the_defaults(no_file: dict[str, str]) -> None:
    assert load_settings(env=no_file) == Settings(config=no_file["INTAKE_CONFIG"])


def test_toml_overrides_defaults(write_toml: WriteToml) -> None:
    env = write_toml(
        'database_url = "postgresql://intake@db.example/intake"\n'
        "smtp_port = 2626\n"
        'support_addresses = ["Help@Example.com", "support@example.com"]\n'
        'sender_auth = "monitor"\n'
        'ack_limit = "5/minute"\n'
    )
    s = load_settings(env=env)
    assert s.database_url == "postgresql://intake@db.example/intake"
    assert s.smtp_port == 2626
    assert s.support_addresses == ("help@example.com", "support@example.com")
    assert s.sender_auth == "monitor"
    assert s.ack_limit_count_and_window == (5, 60)
    assert s.web_port == 8080  # untouched keys keep their defaults


def test_environment_overrides_toml(write_toml: WriteToml) -> None:
    env = write_toml('smtp_port = 2626\nsender_auth = "monitor"\nack_from = "a@file.example"\n')
    s = load_settings(env=env | {"INTAKE_SMTP_PORT": "2727", "INTAKE_SENDER_AUTH": "off"})
    assert s.smtp_port == 2727
    assert s.sender_auth == "off"
    assert s.ack_from == "a@file.example"  # not in the environment: the file's value


def test_overrides_win_over_environment(write_toml: WriteToml) -> None:
    env = write_toml("web_port = 9000\n") | {"INTAKE_WEB_PORT": "9001"}
    assert load_settings(env=env, overrides={"web_port": 9002}).web_port == 9002


def test_policy_tables_are_kept_apart_from_settings(write_toml: WriteToml) -> None:
    env = write_toml(
        "default_severity = 2\n"
        "[severity.4]\nbusiness_days = 10\n"
        '[calendar]\ntimezone = "Europe/Berlin"\n'
    )
    s = load_settings(env=env)
    assert s.policy == {
        "default_severity": 2,
        "severity": {"4": {"business_days": 10}},
        "calendar": {"timezone": "Europe/Berlin"},
    }
    assert load_policy(s.policy).level(4).goal_amount == 10


def test_the_shipped_config_file_loads() -> None:
    s = load_settings(env={"INTAKE_CONFIG": str(ROOT / "config" / "intake.toml")})
    policy = load_policy(s.policy)
    assert [policy.level(n).describe_goal() for n in (1, 2, 3, 4)] == [
        "1 hour",
        "2 hours",
        "3 days",
        "5 business days",
    ]


def test_missing_config_file_named_by_intake_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="INTAKE_CONFIG") as caught:
        load_settings(env={"INTAKE_CONFIG": str(missing)})
    assert str(missing) in str(caught.value)


def test_a_config_path_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_settings(env={"INTAKE_CONFIG": str(tmp_path)})


def test_invalid_toml(write_toml: WriteToml) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env=write_toml("smtp_port = = 1\n"))


@pytest.mark.parametrize("key", ["colour", "config", "INTAKE_SMTP_PORT", "policy"])
def test_unknown_key_in_toml_is_named(write_toml: WriteToml, key: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown setting '{key}'"):
        load_settings(env=write_toml(f'{key} = "x"\n'))


def test_unknown_override_is_named() -> None:
    with pytest.raises(ConfigError, match="'colour'"):
        load_settings(env={}, overrides={"colour": "blue"})


def test_unknown_environment_variables_are_ignored(no_file: dict[str, str]) -> None:
    env = no_file | {"INTAKE_COLOUR": "blue", "PATH": "/bin"}
    assert load_settings(env=env) == Settings(config=no_file["INTAKE_CONFIG"])


# (environment variable, bad value, the key the message must name, a phrase it must contain)
BAD_VALUES = [
    ("INTAKE_SMTP_PORT", "0", "smtp_port", "between 1 and 65535"),
    ("INTAKE_SMTP_PORT", "65536", "smtp_port", "between 1 and 65535"),
    ("INTAKE_WEB_PORT", "-1", "web_port", "between 1 and 65535"),
    ("INTAKE_WEB_PORT", "eighty", "web_port", "whole number"),
    ("INTAKE_DATABASE_URL", "postgresql://host:notaport/db", "database_url", "not a valid URL"),
    ("INTAKE_DATABASE_URL", "mysql://host/db", "database_url", "postgresql://"),
    ("INTAKE_DATABASE_URL", "var/intake.db", "database_url", "sqlite://"),
    ("INTAKE_REDIS_URL", "http://127.0.0.1:6379", "redis_url", "redis://"),
    ("INTAKE_REDIS_URL", "redis://127.0.0.1:99999/0", "redis_url", "not a valid URL"),
    ("INTAKE_PUBLIC_URL", "ftp://gateway.example", "public_url", "http://"),
    ("INTAKE_PUBLIC_URL", "https://", "public_url", "must name a host"),
    ("INTAKE_OUTBOUND_SMTP_URL", "smtp://relay:port/", "outbound_smtp_url", "not a valid URL"),
    ("INTAKE_IMAP_URL", "pop3://user:pw@mail.example/INBOX", "imap_url", "imap://"),
    ("INTAKE_TWILIO_API_BASE", "api.twilio.com", "twilio_api_base", "http://"),
    ("INTAKE_SENDER_AUTH", "strict", "sender_auth", "enforce, monitor, off"),
    ("INTAKE_SENDER_AUTH", "ENFORCE", "sender_auth", "enforce, monitor, off"),
    ("INTAKE_LOG_FORMAT", "xml", "log_format", "text, json"),
    ("INTAKE_ACK_LIMIT", "20/week", "ack_limit", "20/hour"),
    ("INTAKE_ACK_LIMIT", "0/hour", "ack_limit", "20/hour"),
    ("INTAKE_ACK_LIMIT", "many", "ack_limit", "20/hour"),
    ("INTAKE_ACK_LIMIT", "20", "ack_limit", "20/hour"),
    ("INTAKE_SUPPORT_ADDRESSES", "support", "support_addresses", "email addresses"),
    ("INTAKE_SUPPORT_ADDRESSES", " , ", "support_addresses", "email addresses"),
    ("INTAKE_MAX_MESSAGE_SIZE", "100", "max_message_size", "at least 1024"),
    ("INTAKE_LOG_LEVEL", "LOUD", "log_level", "in INTAKE_LOG_LEVEL"),
    ("INTAKE_SMTP_PORT", "70000", "smtp_port", "in INTAKE_SMTP_PORT"),
    ("INTAKE_WEB_CONNECTION_LIMIT", "5", "web_connection_limit", "between 10 and"),
    ("INTAKE_WEB_CLIENT_CONNECTION_LIMIT", "-1", "web_client_connection_limit", "between 0"),
    ("INTAKE_WEB_HEADER_TIMEOUT", "0", "web_header_timeout", "between 1 and 3600"),
    ("INTAKE_WEB_IDLE_TIMEOUT", "0", "web_idle_timeout", "between 1 and 86400"),
    ("INTAKE_WEB_MAX_REQUEST_BODY", "10", "web_max_request_body", "between 1024"),
]


@pytest.mark.parametrize(("variable", "value", "key", "phrase"), BAD_VALUES)
def test_bad_value_is_refused_naming_the_key(
    no_file: dict[str, str], variable: str, value: str, key: str, phrase: str
) -> None:
    env = no_file | {variable: value}
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert f"'{key}'" in str(caught.value)
    assert phrase in str(caught.value)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("smtp_port = 70000", "smtp_port"),
        ('smtp_port = "2525x"', "smtp_port"),
        ("database_url = 5", "database_url"),
        ('sender_auth = "loose"', "sender_auth"),
        ('ack_limit = "20 per hour"', "ack_limit"),
    ],
)
def test_bad_value_in_toml_is_refused_naming_the_key(
    write_toml: WriteToml, line: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_settings(env=write_toml(line + "\n"))


def test_numbers_from_the_environment_are_trimmed(no_file: dict[str, str]) -> None:
    assert load_settings(env=no_file | {"INTAKE_WEB_PORT": " 8081 "}).web_port == 8081


def test_twilio_variables_keep_their_own_names(no_file: dict[str, str]) -> None:
    env = no_file | {
        "TWILIO_ACCOUNT_SID": "AC123",
        "TWILIO_AUTH_TOKEN": "secret",
        "TWILIO_PHONE_NUMBER": "+14155550100",
        "INTAKE_TWILIO_API_BASE": "http://127.0.0.1:9999",
    }
    s = load_settings(env=env)
    assert s.twilio_account_sid == "AC123"
    assert s.twilio_auth_token == "secret"
    assert s.twilio_phone_number == "+14155550100"
    assert s.twilio_api_base == "http://127.0.0.1:9999"


def test_prefixed_twilio_credentials_are_not_read(no_file: dict[str, str]) -> None:
    env = no_file | {"INTAKE_TWILIO_ACCOUNT_SID": "AC999"}
    assert load_settings(env=env).twilio_account_sid == ""


def test_support_addresses_from_a_comma_list(no_file: dict[str, str]) -> None:
    env = no_file | {"INTAKE_SUPPORT_ADDRESSES": " Support@Example.com,help@example.com ,, "}
    assert load_settings(env=env).support_addresses == ("support@example.com", "help@example.com")


def test_settings_are_frozen(no_file: dict[str, str]) -> None:
    s = load_settings(env=no_file)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.smtp_port = 1  # type: ignore[misc]


def test_replace_validates_like_a_fresh_load(no_file: dict[str, str]) -> None:
    s = load_settings(env=no_file)
    assert s.replace(web_port=8181).web_port == 8181
    assert s.web_port == 8080
    with pytest.raises(ConfigError, match="'web_port'"):
        s.replace(web_port=0)
