"""Signed values the gateway hands out: contacts' status links and the tokens in our Message-IDs."""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadSignature, URLSafeTimedSerializer

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


def status_url(public_url: str, secret_key: str, request_number: str) -> str:
    return f"{public_url.rstrip('/')}/status/{status_token(secret_key, request_number)}"
