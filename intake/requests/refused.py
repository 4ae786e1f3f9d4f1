"""A staff action that cannot be done.

Below the workflows and the quarantine alike, so both raise the same refusal, which the web
layer turns into 404, 409 or 422.
"""

from __future__ import annotations

from typing import Literal

from intake.errors import IntakeError

RefusalKind = Literal["not_found", "conflict", "invalid"]


class ActionRefused(IntakeError):
    """A staff action that cannot be done; the message says why in words."""

    def __init__(self, kind: RefusalKind, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
