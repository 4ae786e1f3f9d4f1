"""Signed values the gateway hands out: contacts' status links, and the tags in the Message-IDs
and reply addresses of our mail, which make a request number in a reply trustworthy."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from itsdangerous import BadSignature, URLSafeTimedSerializer

from parsers import SignedToken

STATUS_LINK_SALT = "intake.status-link"
STATUS_LINK_MAX_AGE = 90 * 24 * 3600  # a status link works for 90 days


def status_token(secret_key: str, request_number: str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=STATUS_LINK_SALT).dumps(request_number)


def request_number_from_status_token(
    secret_key: str, token: str, max_age: int = STATUS_LINK_MAX_AGE
) -> str | None:
    """The request number a status token was made for; None when tampered with or expired."""
    serializer = URLSafeTimedSerializer(secret_key, salt=STATUS_LINK_SALT)
    try:
        number = serializer.loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is a BadSignature too
        return None
    return number if isinstance(number, str) else None


def message_tag(secret_key: str, request_number: str) -> str:
    """A short HMAC of the request number, carried in the Message-IDs we send for it."""
    digest = hmac.new(secret_key.encode(), request_number.encode(), hashlib.sha256).hexdigest()
    return digest[:16]


def verified_numbers(secret_key: str, tokens: Iterable[SignedToken]) -> tuple[str, ...]:
    """The request numbers among ``tokens`` whose tag we made: anything else was guessed."""
    return tuple(
        t.number for t in tokens if hmac.compare_digest(message_tag(secret_key, t.number), t.tag)
    )


def reply_address(secret_key: str, request_number: str, support_address: str) -> str:
    """``support+sr-000123.<tag>@domain``: where a reply to our mail about a request goes."""
    local, _, domain = support_address.rpartition("@")
    token = f"{request_number.lower()}.{message_tag(secret_key, request_number)}"
    return f"{local.partition('+')[0]}+{token}@{domain}"


def status_url(public_url: str, secret_key: str, request_number: str) -> str:
    return f"{public_url.rstrip('/')}/status/{status_token(secret_key, request_number)}"
