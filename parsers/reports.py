"""Read what a bounce says: the report type, each recipient's fate (RFC 3464 delivery status)
and the Message-IDs of the message it returns (a message/rfc822 or text/rfc822-headers part,
or, in a bounce that follows no standard, the ids quoted anywhere in it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32

from parsers.fields import read_fields
from parsers.headers import first_message_id

REPORT_CAP = 1024 * 1024  # bytes of a bounce read: the report and the returned headers
PARTS_CAP = 50
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([\w.-]+)", re.IGNORECASE)
_QUOTED_ID = re.compile(r"<[^<>\s]{1,250}@[^<>\s]{1,250}>")
_IDS_CAP = 50


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's line of a delivery status report."""

    address: str  # the Final-Recipient (else Original-Recipient), lower-case
    action: str  # failed, delayed, delivered, relayed, expanded; "" when not given
    status: str  # the enhanced status code, "5.1.1"

    @property
    def failed(self) -> bool:
        return self.action == "failed" or self.status.startswith("5")


@dataclass(frozen=True)
class DeliveryReport:
    report_type: str  # "delivery-status", "disposition-notification", ...; "" for none
    recipients: tuple[RecipientStatus, ...]
    message_ids: tuple[str, ...]  # of the returned message


def read_delivery_report(raw: bytes) -> DeliveryReport:
    """What the bounce ``raw`` reports; any bytes give a (possibly empty) report."""
    try:
        message = BytesParser(policy=compat32).parsebytes(raw[:REPORT_CAP])
        recipients, ids = _read_parts(message)
        report_type = _REPORT_TYPE.search(str(message.get("content-type", "")))
    except Exception:  # hostile input in stdlib code: nothing could be read from it
        return DeliveryReport("", (), ())
    if not ids:
        ids = _quoted_ids(raw[:REPORT_CAP])
    kind = report_type.group(1).lower() if report_type else ""
    return DeliveryReport(kind, tuple(recipients), tuple(dict.fromkeys(ids))[:_IDS_CAP])


def _read_parts(message: Message) -> tuple[list[RecipientStatus], list[str]]:
    recipients: list[RecipientStatus] = []
    ids: list[str] = []
    for part in _parts(message):
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            recipients += [s for block in _status_blocks(part) if (s := _status(block))]
        elif kind == "message/rfc822":
            ids += [first_message_id(str(m.get("message-id", ""))) for m in _payload_list(part)]
        elif kind == "text/rfc822-headers":
            ids.append(first_message_id(read_fields(_payload_bytes(part)).first("message-id")))
    return recipients, [i for i in ids if i]


def _parts(message: Message) -> Iterator[Message]:
    """The parts of the report's top two levels (the returned message is not walked)."""
    stack, seen = [(message, 0)], 0
    while stack and seen < PARTS_CAP:
        part, depth = stack.pop()
        seen += 1
        yield part
        if part.is_multipart() and depth < 2 and part.get_content_maintype() == "multipart":
            stack.extend((child, depth + 1) for child in reversed(_payload_list(part)))


def _payload_list(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _payload_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _status_blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status part (compat32 splits them; a base64-encoded
    part is split here)."""
    blocks = _payload_list(part)
    if blocks:
        return blocks
    text = _payload_bytes(part).decode("utf-8", "replace").replace("\r\n", "\n")
    return [HeaderParser(policy=compat32).parsestr(chunk) for chunk in text.split("\n\n")]


def _status(block: Message) -> RecipientStatus | None:
    recipient = str(block.get("final-recipient") or block.get("original-recipient") or "")
    if not recipient:
        return None
    address = recipient.partition(";")[2] or recipient
    return RecipientStatus(
        address=address.strip().strip("<>").lower()[:320],
        action=str(block.get("action", "")).strip().lower()[:20],
        status=str(block.get("status", "")).strip().split(" ", 1)[0][:20],
    )


def _quoted_ids(raw: bytes) -> list[str]:
    """The ids written in a bounce that returns the message as text ("Message-ID: <...>")."""
    text = raw.decode("utf-8", "replace")
    return [found.group(0) for found in _QUOTED_ID.finditer(text)][: _IDS_CAP * 4]
