"""Find which problem area an end user's subject names: the platform or a recording."""

from __future__ import annotations

import re

_AREA = re.compile(r"\b(platform|recording)\b", re.IGNORECASE)


def end_user_category(subject: str) -> str | None:
    """The area a subject names ("[Platform]", "[Recording]" or the word) in lower case, or None."""
    found = _AREA.search(subject)
    return found.group(1).lower() if found else None
