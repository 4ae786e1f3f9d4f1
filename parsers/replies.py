"""Strip a follow-up down to what its author just wrote: without the quoted earlier mail, the
signature and the disclaimers, with mail-parser-reply (MIT; multilingual "On ... wrote:",
"-----Original Message-----", "Von:/Gesendet:" and the like).

The full text is always kept by the caller; this is what a person reading the request's
timeline wants to see first.
"""

from __future__ import annotations

import re

from mailparser_reply.parser import EmailMessage as ReplyThread

# The languages whose reply headers and signatures the library knows.
LANGUAGES = ("en", "de", "fr", "it", "nl", "pl", "sv", "da", "ja", "es", "cs", "ko", "zh")
# Characters handed to the library: its expressions cost about 2 ms per 1,000 characters, and
# a reply someone typed sits at the top.
REPLY_INPUT_CAP = 100_000
QUOTE_HEADER_LINES = 3  # "On <date>, <name> <address> wrote:" wrapped by the mailer
_HEADER_WORDS = re.compile(r"@|\d")
_WROTE = re.compile(
    r"(wrote|schrieb|a écrit|escribió|scrisse|schreef|napisał|написал|skrev|kirjoitti)\s*:\s*$",
    re.IGNORECASE,
)


def strip_reply(text: str) -> str:
    """The newest reply in ``text``; the text itself when nothing would be left of it."""
    head = text[:REPLY_INPUT_CAP]
    if not head.strip():
        return ""
    try:
        # keep_hyphen_lists: a "- step" list is what support mail is made of, not a signature
        thread = ReplyThread(text=head, languages=list(LANGUAGES), keep_hyphen_lists=True)
        replies = thread.read().replies
        reply = replies[0].body if replies else ""
    except Exception:  # a bug in the library must not cost the message its text
        reply = ""
    reply = without_trailing_quote(reply.strip() or head.strip())
    return reply or head.strip()


def without_trailing_quote(text: str) -> str:
    """``text`` without the "> " lines at its end (a quote whose header is in a language the
    library does not know), and without the header line(s) announcing a quote ("... wrote:")."""
    lines = text.rstrip().split("\n")
    kept = list(lines)
    while kept and (kept[-1].startswith(">") or not kept[-1].strip()):
        kept.pop()
    quoted = len(kept) < len(lines)
    if kept and kept[-1].rstrip().endswith(":") and (quoted or _WROTE.search(kept[-1])):
        kept = kept[: len(kept) - _header_lines(kept)]
    return "\n".join(kept).rstrip()


def _header_lines(lines: list[str]) -> int:
    """How many lines at the end form a quote header: up to three (mailers wrap it), each
    naming an address or a date, which a sentence of the reply rarely does."""
    count = 0
    while count < min(QUOTE_HEADER_LINES, len(lines)) and _HEADER_WORDS.search(lines[-1 - count]):
        count += 1
    return count
