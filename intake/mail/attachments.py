"""Keep the files attached to an inbound mail, within caps on their count and sizes.

The caps bound what one message can make the database hold; the nesting depth and the number
of parts looked at are the parsers' own caps (``parsers.body.DEPTH_CAP`` and ``PARTS_CAP``). A
file over a size cap still gets its row, with its name, type, size and why its bytes were left
out: staff see that it was there, and the raw message in the intake log has every byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from intake.store.models import IntakeAttachment
from parsers import AttachmentInfo, clean_text

MIB = 1024 * 1024


@dataclass(frozen=True)
class Caps:
    count: int = 20  # files that get a row; the rest are only counted
    each: int = 10 * MIB  # bytes of one file kept
    total: int = 25 * MIB  # bytes of one message's files kept


DEFAULT_CAPS = Caps()


def keep_attachments(
    session: Session,
    intake_id: int,
    attachments: Sequence[AttachmentInfo],
    caps: Caps = DEFAULT_CAPS,
) -> dict[str, Any]:
    """Store the files of intake row ``intake_id``; returns what an event says of them
    (empty when there are none)."""
    kept = _within_caps(attachments, caps)
    rows = [_row(intake_id, position, a, note) for position, a, note in kept]
    if rows:
        session.execute(insert(IntakeAttachment), rows)
    if not attachments:
        return {}
    listed = [{k: r[k] for k in ("filename", "content_type", "size", "note")} for r in rows]
    left_out = len(attachments) - len(rows)
    return {"attachments": listed} | ({"attachments_left_out": left_out} if left_out else {})


def _within_caps(
    attachments: Sequence[AttachmentInfo], caps: Caps
) -> Iterator[tuple[int, AttachmentInfo, str]]:
    """The first ``caps.count`` files, each with why its bytes are not kept ("" if they are)."""
    total = 0
    for position, attachment in enumerate(attachments[: caps.count]):
        if attachment.size > caps.each:
            note = f"not kept: larger than {caps.each:,} bytes"
        elif total + attachment.size > caps.total:
            note = f"not kept: the message's files exceed {caps.total:,} bytes in all"
        else:
            total += attachment.size
            note = ""
        yield position, attachment, note


def _row(intake_id: int, position: int, attachment: AttachmentInfo, note: str) -> dict[str, Any]:
    return {
        "intake_id": intake_id,
        "position": position,
        "filename": clean_text(attachment.filename)[:255],
        "content_type": attachment.content_type[:255],
        "size": attachment.size,
        "data": None if note else attachment.data,
        "note": note,
    }
