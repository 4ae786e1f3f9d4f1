"""Opening an IMAP session: TLS always (``imaps://`` from the first byte, ``imap://`` with
STARTTLS, required), the server's certificate verified (against the configured CA file where a
private CA signed it), then a login by password or by XOAUTH2.

The XOAUTH2 token comes from the configured command (an operator's token refresher: it prints
the current access token); it is run again for every login, so a refreshed token is picked up
when the old one expires or the server refuses it.
"""

from __future__ import annotations

import shlex
import socket
import ssl
import subprocess

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError

from intake.errors import IntakeError
from intake.mail.imap_config import MailboxConfig

CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0  # longer than any command the server needs; IDLE sets its own
TOKEN_COMMAND_TIMEOUT = 60
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 20, 4


class ImapSetupError(IntakeError):
    """The session could not be made safe or logged in (no STARTTLS, no token, ...)."""


def tls_context(mailbox: MailboxConfig) -> ssl.SSLContext:
    """Verify the certificate and the host name; against the CA file where one is set."""
    context = ssl.create_default_context(cafile=mailbox.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def open_session(mailbox: MailboxConfig) -> IMAPClient:
    """A logged-in client; the connection is closed again when anything fails."""
    context = tls_context(mailbox)
    client = IMAPClient(
        mailbox.host,
        mailbox.port,
        ssl=mailbox.implicit_tls,
        ssl_context=context,
        timeout=READ_TIMEOUT,
    )
    try:
        if not mailbox.implicit_tls:
            _start_tls(client, context)
        _keep_alive(client.socket())
        _log_in(client, mailbox)
    except BaseException:
        client.shutdown()
        raise
    return client


def _start_tls(client: IMAPClient, context: ssl.SSLContext) -> None:
    """STARTTLS or nothing: a server that does not offer it gets no password in plain text."""
    try:
        client.starttls(context)
    except CapabilityError:
        raise ImapSetupError(
            "the server does not offer STARTTLS; the door never logs in over plain text "
            "(use imaps:// where the server has implicit TLS)"
        ) from None


def _keep_alive(sock: socket.socket) -> None:
    """TCP keepalive: a connection a NAT or firewall dropped silently is noticed in minutes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _log_in(client: IMAPClient, mailbox: MailboxConfig) -> None:
    if mailbox.uses_oauth2:
        client.oauth2_login(mailbox.user, oauth2_token(mailbox.oauth2_token_command))
    else:
        client.login(mailbox.user, mailbox.password)


def oauth2_token(command: str) -> str:
    """The access token the command prints (its first line); run afresh for every login."""
    try:
        done = subprocess.run(
            shlex.split(command),
            capture_output=True,
            text=True,
            timeout=TOKEN_COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImapSetupError(f"the OAuth2 token command could not run: {exc}") from None
    token = (done.stdout.strip().splitlines() or [""])[0].strip()
    if done.returncode != 0 or not token:
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise ImapSetupError(f"the OAuth2 token command gave no token: {why}")
    return token
