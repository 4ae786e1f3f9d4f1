"""Turn an HTML mail part into readable plain text with the standard library's HTML parser.

Scripts, styles and other non-content elements are dropped; link text is kept; block elements
become line breaks; runs of white space collapse as a browser would collapse them.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

HTML_CAP = 2_000_000  # characters of markup parsed
_SKIPPED = frozenset({"script", "style", "template", "title", "object", "svg"})
# fmt: off
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "table", "td", "th", "tr", "ul",
})
# fmt: on
# A "<" that cannot start a complete tag, comment, declaration or processing instruction. The
# stdlib parser re-scans to the end of the input for each one (quadratic time on hostile mail
# before Python 3.13.4); as "&lt;" it is plain text. Each look-ahead stops at the next "<".
_STRAY_LT = re.compile(r"<(?!/?[A-Za-z][^<>]*>|!--|![^<>]*>|\?[^<>]*>)")
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")
_RUN_OF_SPACES = re.compile(r" {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextCollector(HTMLParser):
    """Collects the text outside skipped elements, with a newline for each block boundary."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip_depth += 1
        elif tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.chunks.append(_SPACES.sub(" ", data))


def html_to_text(markup: str) -> str:
    """The readable text of ``markup``: no scripts or styles, link text kept, tidy lines."""
    collector = _TextCollector()
    try:
        collector.feed(defuse(markup[:HTML_CAP]))
        collector.close()
    except (AssertionError, ValueError, IndexError):  # old parsers assert on odd declarations
        pass
    return _tidy("".join(collector.chunks))


def defuse(markup: str) -> str:
    """``markup`` that the stdlib parser gets through in linear time, with the same text.

    Stray "<" become "&lt;"; an unclosed comment, which would run to the end anyway, is cut.
    """
    last_close = markup.rfind("-->")
    unclosed = markup.find("<!--", last_close + 3 if last_close >= 0 else 0)
    if unclosed >= 0:
        markup = markup[:unclosed]
    return _STRAY_LT.sub("&lt;", markup)


def _tidy(text: str) -> str:
    lines = (_RUN_OF_SPACES.sub(" ", line.strip()) for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
