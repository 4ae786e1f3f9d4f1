"""Make an attachment's declared filename safe to show and to store: a short, plain basename."""

from __future__ import annotations

import unicodedata

FILENAME_CAP = 200
DEFAULT_NAME = "attachment"
# Cc: control characters; Cf: format characters, among them the bidi marks, embeddings,
# overrides and isolates (U+200E, U+202A-U+202E, U+2066-U+2069) that make "fdp.exe" show as
# "exe.pdf"; Zl, Zp: line and paragraph separators; Cs: lone surrogates.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def safe_filename(name: str | None) -> str:
    """``name`` without a directory part, control or bidi characters, at most 200 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(ch for ch in base if _allowed(ch))
    kept = kept.strip().strip(".").strip()
    return _shorten(kept) if kept else DEFAULT_NAME


def _allowed(ch: str) -> bool:
    return unicodedata.category(ch) not in _REMOVED_CATEGORIES


def _shorten(name: str) -> str:
    """At most ``FILENAME_CAP`` characters, keeping a short extension."""
    if len(name) <= FILENAME_CAP:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and len(ext) <= 16:
        return stem[: FILENAME_CAP - len(ext) - 1] + "." + ext
    return name[:FILENAME_CAP]
