"""Signing contacts in to the portal: one-time links mailed to a registered address, and the
sessions they open.

A link's token and the asking browser's nonce are random; only their SHA-256 hashes are stored,
so the database alone signs nobody in. A link works once, within :data:`LINK_LIFETIME`, and only
in the browser holding the nonce (a mail scanner fetching the link does not use it up). Asking
is limited per address and per client; an unknown address is answered like a registered one and
only counted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from intake.store.contacts import find_contact_by_email
from intake.store.models import PortalLink, PortalSession, utcnow

LINK_LIFETIME = dt.timedelta(minutes=15)
SESSION_LIFETIME = dt.timedelta(hours=12)
RATE_WINDOW = dt.timedelta(minutes=15)
LINKS_PER_ADDRESS = 3  # within RATE_WINDOW
LINKS_PER_CLIENT = 10  # within RATE_WINDOW

LinkRefusal = Literal["unknown", "used", "expired", "other_browser"]


@dataclass(frozen=True)
class LinkRequest:
    """What asking for a link came to: a token to mail to ``contact_id``, or nothing to send
    (``limited`` says when a rate limit held it back)."""

    token: str | None = None
    contact_id: int | None = None
    limited: bool = False


@dataclass(frozen=True)
class Redemption:
    """A link's use: the contact it signs in, or why it does not."""

    contact_id: int | None = None
    refusal: LinkRefusal | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def request_link(
    session: Session, address: str, *, client: str, nonce: str, now: dt.datetime | None = None
) -> LinkRequest:
    """Note the request and, for a registered address within the limits, make a link."""
    now = now or utcnow()
    address = address.strip().lower()[:320]
    if _over_limits(session, address, client, now):
        return LinkRequest(limited=True)
    contact = find_contact_by_email(session, address)
    token = new_secret()
    session.add(
        PortalLink(
            token_hash=digest(token),
            nonce_hash=digest(nonce),
            address=address,
            client=client[:64],
            contact_id=contact.contact_id if contact else None,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
    )
    if contact is None:
        return LinkRequest()
    return LinkRequest(token=token, contact_id=contact.contact_id)


def _over_limits(session: Session, address: str, client: str, now: dt.datetime) -> bool:
    since = now - RATE_WINDOW
    return (
        _count(session, PortalLink.address == address, since) >= LINKS_PER_ADDRESS
        or _count(session, PortalLink.client == client, since) >= LINKS_PER_CLIENT
    )


def _count(session: Session, condition: ColumnElement[bool], since: dt.datetime) -> int:
    query = select(func.count()).select_from(PortalLink)
    return session.scalar(query.where(condition, PortalLink.created_at >= since)) or 0


def redeem_link(
    session: Session, token: str, nonce: str | None, now: dt.datetime | None = None
) -> Redemption:
    """Use a link: once, in time, from the browser that asked for it."""
    now = now or utcnow()
    link = session.scalar(
        select(PortalLink).where(PortalLink.token_hash == digest(token)).with_for_update()
    )
    if link is None or link.contact_id is None:
        return Redemption(refusal="unknown")
    if link.used_at is not None:
        return Redemption(refusal="used")
    if now >= link.expires_at:
        return Redemption(refusal="expired")
    if nonce is None or not secrets.compare_digest(digest(nonce), link.nonce_hash):
        return Redemption(refusal="other_browser")
    # Marked used only if nobody used it in the meantime (a double click races itself).
    used = session.execute(
        update(PortalLink)
        .where(PortalLink.id == link.id, PortalLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(used, "rowcount", 0) != 1:
        return Redemption(refusal="used")
    return Redemption(contact_id=link.contact_id)


def open_session(session: Session, contact_id: int, now: dt.datetime | None = None) -> str:
    """A new portal session for the contact; returns the token for the browser's cookie."""
    now = now or utcnow()
    token = new_secret()
    session.add(
        PortalSession(
            token_hash=digest(token),
            contact_id=contact_id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token


def session_contact(session: Session, token: str, now: dt.datetime | None = None) -> int | None:
    """The contact a live session's token belongs to, or None."""
    now = now or utcnow()
    return session.scalar(
        select(PortalSession.contact_id).where(
            PortalSession.token_hash == digest(token),
            PortalSession.ended_at.is_(None),
            PortalSession.expires_at > now,
        )
    )


def end_session(session: Session, token: str, now: dt.datetime | None = None) -> None:
    session.execute(
        update(PortalSession)
        .where(PortalSession.token_hash == digest(token), PortalSession.ended_at.is_(None))
        .values(ended_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
