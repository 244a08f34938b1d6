"""Plain-text structure: headings, paragraphs and lists recognised in plain text and PDF text."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from apps.knowledge.parsing.core import _CJK_CHAR_RE, Block, BlockKind

_TERMINAL_PUNCTUATION = "。．.！!？?；;：:，,、"
_MAX_HEADING_CHARS = 60
_WRAP_WIDTH = 60  # display columns: narrower lines were broken on purpose, not wrapped
_ZH_NUMERAL = "一二三四五六七八九十百千零〇两"
_ZH_SECTION_RE = re.compile(rf"^第[{_ZH_NUMERAL}\d]+\s*([编篇部章节条款])")
_ZH_SECTION_LEVELS = {"编": 1, "篇": 1, "部": 1, "章": 1, "节": 2, "条": 3, "款": 3}
_ZH_ENUMERATION_RE = re.compile(rf"^(?:([{_ZH_NUMERAL}]+)、|[（(][{_ZH_NUMERAL}]+[）)])")
_NUMBERED_RE = re.compile(r"^(\d{1,2}(?:\.\d{1,2})+)\.?\s*(?=\D)|^(\d{1,2})[.、．]\s*(?=\D)")
_LIST_ITEM_RE = re.compile(
    r"^(?P<indent>[ \t]*)(?:[-*+•·▪◦●○■□]|(?P<number>\d{1,2}[.)、]|[a-z][.)]|[（(]\d{1,2}[)）]))"
    r"(?:[ \t]+|(?<=、))(?P<text>\S.*)$"
)
_PAGE_NUMBER_RE = re.compile(
    r"^(?:page\s*)?\d+(?:\s*(?:/|of)\s*\d+)?$|^-\s*\d+\s*-$|^第\s*\d+\s*页(?:\s*共\s*\d+\s*页)?$", re.I
)


@dataclass
class _Pending:
    """A paragraph or list item whose lines are still being collected."""

    kind: BlockKind
    lines: list[str] = field(default_factory=list)
    level: int = 0


def _plain_text_blocks(text: str) -> list[Block]:
    groups = [
        list(lines) for is_blank, lines in itertools.groupby(text.splitlines(), key=_is_blank) if not is_blank
    ]
    blocks: list[Block] = []
    for index, group in enumerate(groups):
        # A short line standing alone with text after it is a heading ("Returns"); alone at
        # the end of the file it is just a closing line.
        standalone = len(group) == 1 and index < len(groups) - 1
        blocks.extend(_group_blocks(group, standalone_heading=standalone))
    return blocks


def _is_blank(line: str) -> bool:
    return not line.strip()


def _group_blocks(lines: Sequence[str], *, standalone_heading: bool = False) -> list[Block]:
    """Headings, list items and paragraphs out of one run of non-blank lines."""
    blocks: list[Block] = []
    pending: _Pending | None = None
    indents: list[int] = []  # indentation of the open list levels, to derive nesting depth
    for index, line in enumerate(lines):
        heading_level = _heading_level(line.strip(), lines, index, standalone_heading)
        item = _LIST_ITEM_RE.match(line)
        if heading_level or item or pending is None:
            if pending:
                blocks.append(_flush(pending))
            pending = None
        if heading_level:
            blocks.append(Block("heading", line.strip(), heading_level))
        elif item:
            pending = _Pending(
                "list_item", [_item_text(item)], _list_depth(indents, _indent(item.group("indent")))
            )
        elif pending is None:
            pending = _Pending("paragraph", [line.strip()])
        else:
            pending.lines.append(line.strip())
    if pending:
        blocks.append(_flush(pending))
    return blocks


def _item_text(item: re.Match[str]) -> str:
    # Numbers carry meaning ("step 2"); bullets do not.
    return f"{item.group('number')} {item.group('text')}" if item.group("number") else item.group("text")


def _indent(whitespace: str) -> int:
    return len(whitespace.expandtabs(4))


def _list_depth(indents: list[int], indent: int) -> int:
    while indents and indents[-1] > indent:
        indents.pop()
    if not indents or indents[-1] < indent:
        indents.append(indent)
    return len(indents) - 1


def _flush(pending: _Pending) -> Block:
    return Block(pending.kind, _join_wrapped(pending.lines), pending.level)


def _heading_level(line: str, lines: Sequence[str], index: int, standalone: bool) -> int | None:
    """Modest heuristics: a heading is short, does not end like a sentence, and is numbered
    ("1.", "2.3", "第三章", "一、"), written in capitals, or stands alone. ("# Returns" never
    gets here: it makes the file Markdown.)"""
    if len(line) > _MAX_HEADING_CHARS or line[-1] in _TERMINAL_PUNCTUATION or not _has_letters(line):
        return None
    if section := _ZH_SECTION_RE.match(line):
        return _ZH_SECTION_LEVELS[section.group(1)]
    if enumeration := _ZH_ENUMERATION_RE.match(line):
        return 1 if enumeration.group(1) else 2
    if numbered := _NUMBERED_RE.match(line):
        # "1. Pack the item" next to "2. Print the label" is a list, not two sections.
        return (
            None
            if _next_to_list_item(lines, index)
            else (numbered.group(1) or numbered.group(2)).count(".") + 1
        )
    if _LIST_ITEM_RE.match(line):
        return None
    if _is_all_caps_latin(line):
        return 1
    return 1 if standalone else None


def _is_all_caps_latin(line: str) -> bool:
    # "VIP会员权益" is upper-case too, as far as str.upper() can tell; hanzi lines are not shouted.
    letters = [ch for ch in line if ch.isalpha()]
    return len(letters) >= 2 and all(ch.isascii() and ch.isupper() for ch in letters)


def _has_letters(line: str) -> bool:
    return any(ch.isalpha() for ch in line)


def _next_to_list_item(lines: Sequence[str], index: int) -> bool:
    neighbours = (lines[i] for i in (index - 1, index + 1) if 0 <= i < len(lines))
    return any(_LIST_ITEM_RE.match(line) for line in neighbours)


def _join_wrapped(lines: Sequence[str]) -> str:
    """Re-join lines that were wrapped for width; keep breaks that were meant (short lines)."""
    if max(_display_width(line) for line in lines) < _WRAP_WIDTH:
        return "\n".join(lines)
    joined = lines[0]
    for line in lines[1:]:
        joined += _wrap_joiner(joined, line) + line
    return joined


def _wrap_joiner(left: str, right: str) -> str:
    """What a wrapped line break stood for: nothing between hanzi, a space elsewhere."""
    return "" if left and right and _is_cjk(left[-1]) and _is_cjk(right[0]) else " "


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _is_cjk(ch: str) -> bool:
    return bool(_CJK_CHAR_RE.match(ch))
