"""Read the author out of From headers: the first address, its display name, and how many."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses

from parsers.encoded_words import decode_words
from parsers.fields import collapse

VALUE_CAP = 2048  # characters of one From header that are parsed (real ones are < 300)
HEADERS_PARSED = 4  # From headers beyond these are counted, not parsed
NAME_CAP = 200
COMMENTS_CAP = 16  # more "(" than this in one From header is not a real author's address
_ONE_MAILBOX = re.compile(r"([^<>\",;()]*)<([^<>]*)>")
_NOT_IN_ADDRESS = frozenset(' \t\r\n<>,;"()[]\\')


@dataclass(frozen=True)
class Author:
    """The (first) From address, lower-cased ("" when unusable), its name and the count."""

    address: str
    name: str
    count: int


def read_author(values: list[str]) -> Author:
    """The author named by the values of the From headers, in order."""
    parsed = [_addresses(value) for value in values[:HEADERS_PARSED]]
    count = sum(max(1, len(found)) for found in parsed) + max(0, len(values) - HEADERS_PARSED)
    first = next((pair for found in parsed for pair in found), ("", ""))
    return Author(address=usable_address(first[1]), name=_name(first[0]), count=count)


def usable_address(address: str) -> str:
    """``address`` lower-cased when it looks like an addr-spec (local@domain), else ""."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or _NOT_IN_ADDRESS.intersection(domain):
        return ""
    if any(ch.isspace() or ord(ch) < 32 for ch in local):
        return ""
    return f"{local}@{domain}".lower()


def _addresses(value: str) -> list[tuple[str, str]]:
    value = value[:VALUE_CAP].strip()
    single = _ONE_MAILBOX.fullmatch(value)
    if single:  # "alice@example.com <bob@example.com>" is one mailbox, not two
        return [(single.group(1).strip(), single.group(2).strip())]
    if value.count("(") > COMMENTS_CAP:  # getaddresses recurses per nested "("
        return []
    try:
        pairs = getaddresses([value])
    except Exception:  # hostile input in stdlib code: no usable address, never an error
        return []
    return [(name, addr) for name, addr in pairs if name or addr]


def _name(raw: str) -> str:
    return collapse(decode_words(raw))[:NAME_CAP]


def split_server(server: str) -> tuple[str, int]:
    """``host[:port]`` (``[v6]:port`` for an IPv6 address) to host and port (53 by default)."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        return host, int(port)
    return server, 53
