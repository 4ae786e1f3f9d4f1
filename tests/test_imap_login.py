"""How the IMAP door connects and logs in: TLS always (implicit or STARTTLS), the certificate
checked against a private CA, a password or XOAUTH2 with a token from a command; and how the
mailboxes are configured."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest
from imapclient.exceptions import LoginError

from intake.errors import ConfigError
from intake.mail.imap_config import mailboxes
from intake.mail.imap_connect import ImapSetupError, oauth2_token, open_session
from intake.settings import Settings, load_settings
from intake.store.db import Database
from intake.supervisor import components
from tests.conftest import ROOT
from tests.dovecot import Dovecot
from tests.imap_support import imap_settings, mail, poller, rows


def test_starttls_is_used_for_imap_urls(settings: Settings, db: Database, dovecot: Dovecot) -> None:
    settings = imap_settings(settings, dovecot, dovecot.imap_url())
    dovecot.deliver(mail())
    poller(settings, db).poll_once()
    assert len(rows(db)) == 1
    assert "TLS" in dovecot.log_file.read_text().split("Login: user=<support>")[-1].split("\n")[0]


def test_a_server_certificate_no_trusted_ca_signed_is_refused(
    settings: Settings, dovecot: Dovecot
) -> None:
    settings = imap_settings(settings, dovecot).replace(imap_ca_file="")
    with pytest.raises(ssl.SSLCertVerificationError):
        open_session(mailboxes(settings)[0])


def test_the_certificate_must_name_the_host(settings: Settings, dovecot: Dovecot) -> None:
    url = dovecot.imaps_url().replace("@localhost:", "@127.0.0.1:")  # not in the certificate
    settings = imap_settings(settings, dovecot, url)
    with pytest.raises(ssl.SSLCertVerificationError):
        open_session(mailboxes(settings)[0])


def test_a_wrong_password_is_a_login_error(settings: Settings, dovecot: Dovecot) -> None:
    url = dovecot.imaps_url().replace(dovecot.password, "wrong")
    settings = imap_settings(settings, dovecot, url)
    with pytest.raises(LoginError):
        open_session(mailboxes(settings)[0])


def _token_command(tmp_path: Path, token: str) -> str:
    """A token refresher stand-in: prints what the file holds (the operator's tool would
    fetch a fresh token from the identity provider)."""
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return f"{sys.executable} -c \"print(open('{path}').read().strip())\""


def test_xoauth2_logs_in_with_the_token_the_command_prints_and_rereads_it(
    settings: Settings, db: Database, dovecot: Dovecot, tmp_path: Path
) -> None:
    dovecot.validator.tokens["token-1"] = dovecot.user
    command = _token_command(tmp_path, "token-1")
    url = dovecot.imaps_url(auth="xoauth2")  # no password: XOAUTH2
    settings = imap_settings(settings, dovecot, url).replace(imap_oauth2_token_command=command)
    assert mailboxes(settings)[0].uses_oauth2
    dovecot.deliver(mail())
    poller(settings, db).poll_once()
    assert len(rows(db)) == 1
    assert dovecot.validator.asked == 1  # Dovecot asked the token validator
    assert "method=XOAUTH2" in dovecot.log_file.read_text()
    # The token expires; the refresher has a new one; the next login uses it.
    dovecot.validator.tokens = {"token-2": dovecot.user}
    with pytest.raises(LoginError):
        poller(settings, db).poll_once()
    _token_command(tmp_path, "token-2")
    dovecot.deliver(mail())
    poller(settings, db).poll_once()
    assert len(rows(db)) == 2


def test_a_token_command_that_fails_says_why(tmp_path: Path) -> None:
    with pytest.raises(ImapSetupError, match="no token: expired refresh token"):
        oauth2_token(f"{sys.executable} -c \"import sys; sys.exit('expired refresh token')\"")
    with pytest.raises(ImapSetupError, match="could not run"):
        oauth2_token(str(tmp_path / "missing-command"))


def _settings(tmp_path: Path, toml: str = "", **env: str) -> Settings:
    config = tmp_path / "intake.toml"
    config.write_text(toml)
    return load_settings(
        {"INTAKE_CONFIG": str(config)} | {f"INTAKE_{k.upper()}": v for k, v in env.items()}
    )


def test_mailboxes_come_from_the_url_list_and_imap_tables(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        '[[imap]]\nurl = "imap://desk@mail.example/Support"\nafter = "flag"\n'
        'oauth2_token_command = "get-token"\nmax_attempts = 5\n',
        imap_url="imaps://a%40corp.example:p%40ss@mail.example/INBOX,"
        "imaps://b@mail.example:1993/Help?processed=Done&quarantine=Bad",
        imap_oauth2_token_command="fetch-token",
    )
    first, second, third = mailboxes(settings)
    assert (first.user, first.password, first.port, first.implicit_tls) == (
        "a@corp.example",
        "p@ss",
        993,
        True,
    )
    assert (first.processed_folder, first.quarantine_folder, first.after) == (
        "Processed",
        "Quarantine",
        "move",
    )
    assert (second.port, second.folder, second.processed_folder, second.quarantine_folder) == (
        1993,
        "Help",
        "Done",
        "Bad",
    )
    assert second.uses_oauth2 and second.oauth2_token_command == "fetch-token"
    assert (third.port, third.implicit_tls, third.folder, third.after, third.max_attempts) == (
        143,
        False,
        "Support",
        "flag",
        5,
    )
    assert third.oauth2_token_command == "get-token"
    assert "p@ss" not in first.key  # the key names the mailbox, never the secret
    assert components(settings)[-1] == "imap"
    assert "imap" not in components(_settings(tmp_path))


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("", {"imap_url": "pop3://a@mail.example"}, "imap_url"),
        ("", {"imap_url": "imaps://a@mail.example"}, "no password"),
        ("", {"imap_url": "imaps://a:b@mail.example", "imap_after": "delete"}, "imap_after"),
        ("", {"imap_url": "imaps://a:b@m.example,imaps://a:c@m.example"}, "configured twice"),
        ('[[imap]]\nurl = "imaps://a:b@m.example"\nfolder = "X"\n', {}, "unknown key 'folder'"),
        ('[[imap]]\nprocessed_folder = "X"\n', {}, "needs a url"),
        ("", {"imap_url": "imaps://:b@m.example"}, "names no user"),
        ("", {"imap_url": "imaps://a:b@m.example/Done?processed=Done"}, "must not be the folder"),
    ],
)
def test_bad_mailbox_settings_are_refused_with_a_sentence(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        mailboxes(_settings(tmp_path, toml, **env))


def test_the_readme_documents_the_imap_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in (
        "INTAKE_IMAP_URL",
        "INTAKE_IMAP_CA_FILE",
        "INTAKE_IMAP_OAUTH2_TOKEN_COMMAND",
        "INTAKE_IMAP_PROCESSED_FOLDER",
        "INTAKE_IMAP_QUARANTINE_FOLDER",
        "INTAKE_IMAP_AFTER",
        "INTAKE_IMAP_MAX_ATTEMPTS",
        "INTAKE_IMAP_POLL_INTERVAL",
        "[[imap]]",
    ):
        assert name in readme, name


def test_a_refused_mailbox_url_is_quoted_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings(tmp_path, imap_url="pop3://desk:hunter2@mail.example/INBOX")
    assert "imap_url" in str(refused.value) and "hunter2" not in str(refused.value)
