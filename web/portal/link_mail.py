"""The mail that carries a portal sign-in link, written to the outbox for the worker to send.

It is marked as machine-sent and as ours (like the acknowledgments), so an auto-reply to it is
suppressed and a copy coming back is recognised as a loop.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid

from intake.settings import Settings
from intake.store.models import OutboxMessage
from parsers import LOOP_HEADER
from web.portal.sign_in import LINK_LIFETIME

PURPOSE = "portal_sign_in"


def sign_in_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/portal/sign-in/{token}"


def sign_in_row(settings: Settings, *, name: str, address: str, token: str) -> OutboxMessage:
    """The outbox row of the sign-in mail to ``address``."""
    message = sign_in_mail(settings, name=name, address=address, token=token)
    utf8 = not address.isascii()
    return OutboxMessage(
        channel="email",
        purpose=PURPOSE,
        recipient=address,
        message_id=str(message["Message-ID"]),
        payload=message.as_bytes(policy=SMTPUTF8 if utf8 else SMTP),
    )


def sign_in_mail(settings: Settings, *, name: str, address: str, token: str) -> EmailMessage:
    domain = settings.ack_from.rpartition("@")[2] or "intake.localhost"
    minutes = int(LINK_LIFETIME.total_seconds() // 60)
    message = EmailMessage()
    message["From"] = settings.ack_from
    message["To"] = address
    message["Subject"] = "Your sign-in link to the support portal"
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid("portal", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = settings.ack_from
    message.set_content(
        f"Hello {name},\n\n"
        "someone (we hope you) asked to sign in to the support portal with this address.\n"
        "Open this link in the same browser to sign in:\n\n"
        f"{sign_in_url(settings.public_url, token)}\n\n"
        f"It works once, within {minutes} minutes. If you did not ask for it, ignore this mail:\n"
        "nobody can sign in without opening the link.\n"
    )
    return message
