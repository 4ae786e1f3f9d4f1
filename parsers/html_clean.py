"""Sanitise the HTML of a mail for showing it, with an allow-list (nh3, the Rust ammonia).

What is kept is formatting: no scripts, styles, event handlers, forms or frames; links only to
http, https and mailto; images only from the message itself (``cid:``), because a remote image
tells its sender when and where the mail was read.
"""

from __future__ import annotations

import nh3

SANITISED_CAP = 500_000  # characters of markup sanitised; the text version has all of it
_TAGS = nh3.ALLOWED_TAGS - {"area", "map", "bdo", "bdi"}  # no image maps; no bidi overrides
_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items() if tag in _TAGS}
_URL_SCHEMES = {"http", "https", "mailto", "cid"}


def sanitise_html(markup: str) -> str:
    """``markup`` with only allow-listed tags, attributes and URLs left."""
    if not markup.strip():
        return ""
    return nh3.clean(
        markup[:SANITISED_CAP],
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        attribute_filter=_only_inline_images,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _only_inline_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("cid:"):
        return None
    if attribute == "href" and value.lower().startswith("cid:"):
        return None
    return value
