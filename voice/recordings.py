"""A voicemail's recording, fetched from Twilio's Recordings API on the server's side.

Twilio serves a recording only with the account's credentials (HTTP Basic, account SID and auth
token), which must never reach a browser: the staff page plays the recording through a route
of ours that calls this module. The URL is built from the recording's SID and our own account
(at ``INTAKE_TWILIO_API_BASE`` when that is set), never taken from stored data, so no stored
value can send the credentials to another host.
"""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from intake.errors import IntakeError
from intake.settings import Settings

TWILIO_API = "https://api.twilio.com"
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
HTTP_TIMEOUT = 15  # seconds
MAX_BYTES = 25 * 1024 * 1024  # a voicemail of an hour in MP3 is far less


class RecordingUnavailable(IntakeError):
    """The recording cannot be fetched; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Recording:
    content_type: str
    data: bytes


def recording_url(settings: Settings, recording_sid: str) -> str:
    """The MP3 of a recording of our account."""
    base = (settings.twilio_api_base or TWILIO_API).rstrip("/")
    account = settings.twilio_account_sid
    return f"{base}/2010-04-01/Accounts/{account}/Recordings/{recording_sid}.mp3"


def fetch_recording(settings: Settings, recording_sid: str) -> Recording:
    """The recording's bytes, or RecordingUnavailable saying why not."""
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise RecordingUnavailable(
            "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).", 503
        )
    if not RECORDING_SID.fullmatch(recording_sid):
        raise RecordingUnavailable("This voicemail has no recording SID of Twilio's form.", 404)
    url = recording_url(settings, recording_sid)  # http(s) only: the settings check the base
    request = urllib.request.Request(url, headers={"Authorization": _basic_auth(settings)})  # noqa: S310
    opener = urllib.request.build_opener(_CredentialsStayHome)
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT) as answer:
            data = answer.read(MAX_BYTES + 1)
            content_type = answer.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raise _unavailable(exc.code) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RecordingUnavailable(f"Twilio could not be reached: {exc}", 502) from exc
    if len(data) > MAX_BYTES:
        raise RecordingUnavailable("The recording is larger than 25 MB.", 502)
    return Recording(content_type if content_type.startswith("audio/") else "audio/mpeg", data)


class _CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Follows a redirect (Twilio may send the media to a storage host) without taking the
    account's credentials to another host, as urllib would by default."""

    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def _basic_auth(settings: Settings) -> str:
    pair = f"{settings.twilio_account_sid}:{settings.twilio_auth_token}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _unavailable(status: int) -> RecordingUnavailable:
    if status == 404:
        return RecordingUnavailable("Twilio no longer has this recording (it was deleted).", 404)
    return RecordingUnavailable(f"Twilio answered {status} for the recording.", 502)
