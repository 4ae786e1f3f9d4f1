"""The SMTP door's wording: an enhanced status code (RFC 3463, RFC 2034) on every reply that
aiosmtpd words without one, and the HELP texts (RFC 5321 4.1.1.8).

The greeting, the replies to HELO and EHLO and the 354 that invites the data carry none: RFC 2034
leaves them out, and a 3xx reply has no enhanced class.
"""

from __future__ import annotations

import re

ENHANCED = re.compile(r"^\d{3}[ -]\d\.\d{1,3}\.\d{1,3}(\s|$)")
# Enhanced codes for aiosmtpd's own replies, by the start of their text; then by reply code.
BY_TEXT = (
    ("503 ", "5.5.1"),  # a command out of order
    ("500 Error: command", "5.5.1"),  # not recognised
    ("500 ", "5.5.2"),  # syntax, a line too long
    ("501 ", "5.5.4"),  # bad arguments
    ("502 ", "5.5.1"),  # not implemented
    ("504 ", "5.5.4"),
    ("555 ", "5.5.4"),  # MAIL or RCPT parameters not recognised
    ("530 ", "5.7.0"),
    ("554 ", "5.7.0"),
    ("454 ", "4.7.0"),  # TLS not available
    ("221 ", "2.0.0"),
    ("220 Ready to start TLS", "2.0.0"),
    ("252 ", "2.0.0"),
)
BY_CLASS = {"2": "2.0.0", "4": "4.0.0", "5": "5.0.0"}

HELP_TOPICS = {
    "EHLO": "EHLO <your host name>: starts a session and lists the extensions offered",
    "HELO": "HELO <your host name>: starts a session without extensions",
    "MAIL": "MAIL FROM:<address> [SIZE=<bytes>] [BODY=8BITMIME]: starts a message "
    "from that envelope sender (<> for a bounce)",
    "RCPT": "RCPT TO:<address>: adds a recipient; only the support addresses take mail",
    "DATA": "DATA: then the message, ended by a line holding only a dot",
    "RSET": "RSET: forgets the message begun",
    "NOOP": "NOOP: does nothing",
    "QUIT": "QUIT: ends the session",
    "HELP": "HELP [command]: the commands, or how to use one",
    "VRFY": "VRFY <address>: answers 252 (addresses are not confirmed)",
    "STARTTLS": "STARTTLS: turns the session into a TLS one",
}


def with_enhanced_code(reply: str) -> str:
    """``reply`` with an enhanced status code after its reply code, unless it has one or is
    a 3xx reply (nothing else is changed)."""
    if len(reply) < 4 or not reply[:3].isdigit() or reply[0] == "3" or ENHANCED.match(reply):
        return reply
    code = next((c for start, c in BY_TEXT if reply.startswith(start)), BY_CLASS.get(reply[0]))
    if code is None:
        return reply
    return f"{reply[:4]}{code} {reply[4:]}" if len(reply) > 4 else f"{reply[:3]} {code}"


def help_reply(topic: str, offered: list[str]) -> str:
    """HELP's answer: the commands ``offered``, or how to use one of them."""
    if not topic:
        return "214 2.0.0 Commands: " + " ".join(offered) + "; HELP <command> says more"
    name = topic.strip().upper()
    if name in offered:
        return f"214 2.0.0 {HELP_TOPICS[name]}"
    return f"504 5.5.4 No help for {topic.strip()[:40]}; commands: " + " ".join(offered)
