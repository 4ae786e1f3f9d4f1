"""Find the severity (1 to 4) a customer proposed, in the subject or in a body line."""

from __future__ import annotations

import re

BODY_LINES = 200
_SUBJECT = re.compile(
    r"\[\s*sev(?:erity)?[\s_-]*([1-4])\s*\]"  # [Sev1] [Sev 2] [Severity 3] [SEV-1]
    r"|\bsev(?:erity)?[\s_-]*([1-4])\s*:",  # Sev4: Severity 2:
    re.IGNORECASE,
)
_BODY_LINE = re.compile(r"[ \t]*severity[ \t]*:[ \t]*([1-4])(?![0-9])", re.IGNORECASE)


def severity_from_subject(subject: str) -> int | None:
    """The severity a subject names ("[Sev1]", "[Sev 2]", "[Severity 3]", "Sev4:"), or None."""
    found = _SUBJECT.search(subject)
    return int(found.group(1) or found.group(2)) if found else None


def severity_from_body(text: str) -> int | None:
    """The severity of the first "Severity: N" line among the first 200 lines, or None."""
    for line in text.split("\n", BODY_LINES)[:BODY_LINES]:
        found = _BODY_LINE.match(line)
        if found:
            return int(found.group(1))
    return None
