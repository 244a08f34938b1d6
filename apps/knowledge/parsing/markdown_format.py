"""Markdown (CommonMark + tables) via markdown-it tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from apps.knowledge.parsing.core import Block
from apps.knowledge.parsing.html_format import _html_blocks
from apps.knowledge.parsing.text_structure import _wrap_joiner

_MARKDOWN = MarkdownIt("commonmark").enable("table")


@dataclass
class _OpenListItem:
    depth: int
    marker: str  # "3. " for ordered lists, so "step 3" survives; empty for bullets
    parts: list[str] = field(default_factory=list)


def _markdown_blocks(text: str) -> list[Block]:
    """Walk markdown-it's token stream: https://markdown-it-py.readthedocs.io/en/latest/using.html"""
    tokens = _MARKDOWN.parse(text)
    blocks: list[Block] = []
    items: list[_OpenListItem] = []  # list items still open, innermost last
    row: list[str] | None = None
    depth = -1
    for index, token in enumerate(tokens):
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            _flush_list_item(items, blocks)  # the parent item's own text comes before its sub-list
            depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif kind == "list_item_open":
            items.append(_OpenListItem(depth, f"{token.info}{token.markup} " if token.info else ""))
        elif kind == "list_item_close":
            _flush_list_item(items, blocks)
            items.pop()
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            blocks.append(Block("table_row", " | ".join(row)))
            row = None
        elif kind == "html_block":
            blocks.extend(_html_blocks(token.content))
        elif kind in ("inline", "fence", "code_block"):
            text_of_token = _markdown_inline_text(token) if kind == "inline" else token.content
            opener = tokens[index - 1] if index else token
            _place_markdown_text(text_of_token, opener, items, row, blocks)
    return blocks


def _place_markdown_text(
    text: str, opener: Token, items: list[_OpenListItem], row: list[str] | None, blocks: list[Block]
) -> None:
    if opener.type == "heading_open":
        blocks.append(Block("heading", text, int(opener.tag[1])))
    elif row is not None:
        row.append(text.strip())
    elif items:
        items[-1].parts.append(text)
    else:
        blocks.append(Block("paragraph", text))


def _flush_list_item(items: list[_OpenListItem], blocks: list[Block]) -> None:
    """Emit the innermost item's text so far; later paragraphs of it become another block."""
    if not items:
        return
    item = items[-1]
    if "".join(item.parts).strip():
        blocks.append(Block("list_item", item.marker + "\n".join(item.parts), item.depth))
        item.marker = ""
    item.parts = []


def _markdown_inline_text(token: Token) -> str:
    """Rendered text without markup: link text, image alt text, code; a soft break is a
    wrapped line (nothing between hanzi, else a space), a hard break a real one."""
    text = ""
    children = token.children or []
    for index, child in enumerate(children):
        if child.type in ("text", "code_inline", "image"):
            text += child.content
        elif child.type == "softbreak":
            following = children[index + 1].content if index + 1 < len(children) else ""
            text += _wrap_joiner(text, following)
        elif child.type == "hardbreak":
            text += "\n"
    return text
