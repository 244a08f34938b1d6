"""HTML: block elements become blocks; navigation, scripts and the like are dropped."""

from __future__ import annotations

from collections.abc import Iterator

import lxml.html
from lxml import etree

from apps.knowledge.parsing.core import _CJK_LINE_BREAK_RE, _WHITESPACE_RE, Block

# Page chrome and code, not policy text.
_HTML_DROPPED = frozenset("script style noscript template nav footer svg iframe button head".split())
_HTML_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_HTML_LISTS = frozenset("ul ol menu".split())
_HTML_TEXT_BLOCKS = frozenset("p pre dt dd figcaption caption address summary legend".split())
_HTML_CONTAINERS = frozenset(
    "html body div section article main header aside blockquote figure details dl form fieldset center li".split()
)
_HTML_BLOCKS = _HTML_HEADINGS | _HTML_LISTS | _HTML_TEXT_BLOCKS | _HTML_CONTAINERS | {"table", "tr", "hr"}


def _html_blocks(text: str) -> list[Block]:
    # The text is already decoded; tell lxml the bytes we hand it are UTF-8 so a stale
    # <meta charset> inside cannot make it decode them a second time.
    parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    except etree.ParserError:  # nothing but whitespace or comments
        return []
    body = root.find("body")
    return list(_html_element_blocks(body if body is not None else root, depth=-1))


def _html_element_blocks(element: lxml.html.HtmlElement, depth: int) -> Iterator[Block]:
    tag = element.tag
    if tag in _HTML_DROPPED:
        return
    if tag in _HTML_HEADINGS:
        yield Block("heading", _html_text(element), int(tag[1]))
    elif tag in _HTML_LISTS:
        yield from _html_list_blocks(element, depth + 1)
    elif tag == "table":
        yield from (Block("table_row", row) for row in _html_table_rows(element))
    elif tag == "pre":
        yield Block("paragraph", element.text_content())
    elif tag in _HTML_TEXT_BLOCKS and not any(child.tag in _HTML_BLOCKS for child in element):
        yield Block("paragraph", _html_text(element))
    else:
        yield from _html_children_blocks(element, depth)


def _html_children_blocks(element: lxml.html.HtmlElement, depth: int) -> Iterator[Block]:
    """Block children become blocks; loose text and inline elements between them become
    paragraphs (pages often put text straight into <div>s)."""
    inline = [_squash(element.text)]
    for child in element:
        if child.tag in _HTML_BLOCKS:
            yield Block("paragraph", "".join(inline))
            inline = []
            yield from _html_element_blocks(child, depth)
        else:
            inline.append(_html_inline_text(child))
        inline.append(_squash(child.tail))
    yield Block("paragraph", "".join(inline))


def _html_list_blocks(html_list: lxml.html.HtmlElement, depth: int) -> Iterator[Block]:
    for child in html_list:
        if child.tag != "li":  # e.g. a <ul> straight inside a <ul>: one level deeper
            yield from _html_element_blocks(child, depth)
            continue
        yield Block("list_item", _html_text(child, skip=_HTML_LISTS), depth)
        for nested in child.iterdescendants(*_HTML_LISTS):
            if next(nested.iterancestors("li")) is child:  # only lists directly under this item
                yield from _html_list_blocks(nested, depth + 1)


def _html_table_rows(table: lxml.html.HtmlElement) -> Iterator[str]:
    for row in table.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr"):
        yield " | ".join(_html_text(cell).replace("\n", " ").strip() for cell in row.xpath("./th|./td"))


def _html_text(element: lxml.html.HtmlElement, skip: frozenset[str] = frozenset()) -> str:
    """Text as a browser lays it out: source whitespace collapses, <br> breaks the line."""
    parts = [_squash(element.text)]
    for child in element:
        parts.append(_html_inline_text(child, skip))
        parts.append(_squash(child.tail))
    return "".join(parts)


def _html_inline_text(element: lxml.html.HtmlElement, skip: frozenset[str] = frozenset()) -> str:
    if element.tag == "br":
        return "\n"
    return "" if element.tag in _HTML_DROPPED or element.tag in skip else _html_text(element, skip)


def _squash(text: str | None) -> str:
    """Source whitespace as HTML treats it: any run is one space (none across a break in hanzi)."""
    return _WHITESPACE_RE.sub(" ", _CJK_LINE_BREAK_RE.sub("", text)) if text else ""
