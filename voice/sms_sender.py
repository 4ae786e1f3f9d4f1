"""SMS through Twilio's Messages API with the twilio library's REST client: the sender that
``intake worker`` registers for outbox rows of the "sms" channel.

``INTAKE_TWILIO_API_BASE`` points the client at another base URL than Twilio's own (the tests'
local stand-in for the API). A 400 answer (an invalid or unreachable number, an opted-out
recipient) is permanent and the row waits for a person; anything else (429, 5xx, a timeout)
is raised for the job to retry with backoff.
"""

from __future__ import annotations

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from intake.errors import IntakeError
from intake.outbox.delivery import PermanentDeliveryError, register_sender
from intake.settings import Settings

HTTP_TIMEOUT = 15  # seconds for one API request
PERMANENT_STATUS = 400


class SmsNotSent(IntakeError):
    """The Messages API did not take the message this time (retried by the job)."""


def twilio_client(settings: Settings) -> Client:
    """The REST client for our account, at INTAKE_TWILIO_API_BASE when that is set."""
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT),
    )
    if settings.twilio_api_base:
        # The Messages API lives on the "api" domain; its base URL is the one thing to move.
        # Edge and region (TWILIO_EDGE, TWILIO_REGION) would rewrite that host: not here.
        client.api.base_url = settings.twilio_api_base.rstrip("/")
        client.edge = client.region = None
    return client


def send_sms(settings: Settings, recipient: str, payload: bytes) -> str:
    """Send one text from our Twilio number; returns ``twilio:<message sid>``."""
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise SmsNotSent("Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    client = twilio_client(settings)
    try:
        message = client.messages.create(
            to=recipient, from_=settings.twilio_phone_number, body=payload.decode("utf-8")
        )
    except TwilioRestException as exc:
        refusal = f"Twilio answered {exc.status} (error {exc.code}): {exc.msg}"
        if exc.status == PERMANENT_STATUS:
            raise PermanentDeliveryError(refusal) from exc
        raise SmsNotSent(refusal) from exc
    return f"twilio:{message.sid}"


def register() -> None:
    """Send this process's "sms" outbox rows with :func:`send_sms`."""
    register_sender("sms", send_sms)
