"""Cut a parsed document into retrieval chunks that follow its structure.

A rule is only useful to the assistant together with the heading it sits under ("Damaged
items" under "Returns"), so chunks never straddle two sections and each carries its
heading path. Paragraphs, list items and table rows are kept whole when they fit; only a
block too long for one chunk is cut, at sentence boundaries first.

Output must be deterministic: ingestion resumes after a crash by chunk ordinal, so the
same blocks must always give the same chunks in the same order.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from apps.knowledge.parsing import CJK_RANGES, Block, BlockKind

Language = Literal["zh", "en", "mixed"]
TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk ready to embed and store; `ordinal` is its stable position in the document."""

    ordinal: int
    heading_path: tuple[str, ...]  # e.g. ("Returns and refunds", "Damaged items")
    text: str  # the chunk's text, without the heading path (the caller may prepend it for embedding)
    token_count: int
    language: Language


# --- Token estimate -------------------------------------------------------------------------

_TOKEN_UNIT_RE = re.compile(
    rf"(?P<cjk>[{CJK_RANGES}])|(?P<word>[^\W\d_{CJK_RANGES}]+)|(?P<number>\d+)|(?P<symbol>\S)"
)
# Tenths of a token per unit; see approx_token_count for where the numbers come from.
_CJK_TENTHS = 8
_WORD_TENTHS = 12
_DIGITS_PER_TOKEN = 3


def approx_token_count(text: str) -> int:
    """Estimate how many tokens an XLM-R sentencepiece tokenizer (multilingual-e5) makes.

    Each CJK character counts 0.8, each Latin word 1.2, each run of digits one per three
    digits, each other symbol (punctuation, "|") one; whitespace counts nothing. Measured
    against the e5 tokenizer, this overestimates slightly, which is the safe side for a
    512-position model: the tau-bench policy (1,279 real tokens) comes out ~10% high, the
    ABCD guidelines (16,728) ~6% high, Chinese policy sentences (0.69-0.79 real tokens per
    character, the tokenizer merging common words like 商品, 申请) ~10% high. A real tokenizer
    can be passed to chunks_build instead; this one costs no model load.
    """
    tenths = 0
    for unit in _TOKEN_UNIT_RE.finditer(text):
        if unit.group("cjk"):
            tenths += _CJK_TENTHS
        elif unit.group("word"):
            tenths += _WORD_TENTHS
        elif number := unit.group("number"):
            tenths += 10 * math.ceil(len(number) / _DIGITS_PER_TOKEN)
        else:
            tenths += 10
    return math.ceil(tenths / 10)


def _language(text: str) -> Language:
    """By the share of CJK characters among CJK characters plus Latin words: both are about
    one token each, so the share says how much of what the model reads is Chinese."""
    cjk = words = 0
    for unit in _TOKEN_UNIT_RE.finditer(text):
        cjk += bool(unit.group("cjk"))
        words += bool(unit.group("word"))
    if cjk + words == 0:
        return "mixed"  # numbers and symbols only: no language to search in
    share = cjk / (cjk + words)
    return "zh" if share >= 0.75 else "en" if share <= 0.25 else "mixed"


# --- Splitting a block that is too long ------------------------------------------------------

# Cuts look no further than this many characters per allowed token: no real token spans
# more, so a cut inside a huge unpunctuated block costs O(max_tokens), not O(block).
_MAX_CHARS_PER_TOKEN = 20


@dataclass(frozen=True)
class _Limits:
    max_tokens: int
    overlap_tokens: int
    min_tokens: int
    count: TokenCounter

    @property
    def max_chars(self) -> int:
        return self.max_tokens * _MAX_CHARS_PER_TOKEN

    def fits_text(self, text: str) -> bool:
        return self.count(text.strip()) <= self.max_tokens

    def fits(self, pieces: Sequence[_Piece], budget: int | None = None) -> bool:
        return self.count(_render(pieces)) <= (self.max_tokens if budget is None else budget)


# Each pattern matches the end of a unit, trailing space included, so the slices between
# matches add back up to the original text exactly. English needs a space after the stop
# ("3.5 kg" stays whole); "e.g. " still ends a "sentence", a harmless extra cut point.
_SENTENCE_END_RE = re.compile(r"[。！？；]+[”’」』）)】]*\s*|[.!?]+[\"'”’)\]]*\s+|\n\s*")
_CLAUSE_END_RE = re.compile(r"[，、：]\s*|[,;:]\s+")


def _split_at(text: str, boundary: re.Pattern[str]) -> list[str]:
    cuts = [match.end() for match in boundary.finditer(text) if match.end() < len(text)]
    return [text[start:end] for start, end in itertools.pairwise([0, *cuts, len(text)])]


def _split_sentences(text: str) -> list[str]:
    return _split_at(text, _SENTENCE_END_RE)


def _split_clauses(text: str) -> list[str]:
    return _split_at(text, _CLAUSE_END_RE)


_SPLITTERS = (_split_sentences, _split_clauses)


def _split_to_fit(text: str, limits: _Limits, level: int = 0) -> list[str]:
    """Slices of `text` that each fit: sentences, then clauses, then a hard cut."""
    if limits.fits_text(text):
        return [text]
    if level == len(_SPLITTERS):
        return _hard_cut(text, limits)
    return [part for piece in _SPLITTERS[level](text) for part in _split_to_fit(piece, limits, level + 1)]


def _hard_cut(text: str, limits: _Limits) -> list[str]:
    """Cut text without usable punctuation into the longest slices that fit."""
    parts = []
    while text:
        end = _longest_fitting_prefix(text, limits)
        end = _word_boundary(text, end) if end < len(text) else end
        parts.append(text[:end])
        text = text[end:]
    return [part for part in parts if part.strip()]


def _longest_fitting_prefix(text: str, limits: _Limits) -> int:
    # Counts grow with the prefix, so binary search; a prefix of one character is always
    # taken so the loop advances even if a single character does not fit.
    low, high = 1, min(len(text), limits.max_chars)
    while low < high:
        middle = (low + high + 1) // 2
        if limits.fits_text(text[:middle]):
            low = middle
        else:
            high = middle - 1
    return low


def _word_boundary(text: str, end: int) -> int:
    """Move a cut inside a Latin word back to the space before it, if there is one."""
    if not (
        text[end - 1].isascii() and text[end - 1].isalnum() and text[end].isascii() and text[end].isalnum()
    ):
        return end
    space = max(text.rfind(" ", 0, end), text.rfind("\n", 0, end))
    return space + 1 if space > 0 else end


# --- Sections and pieces -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """What the packer never splits: a whole block, or one slice of a block too long."""

    raw: str  # exact slice of the block's text, so slices of one block re-join without guessing
    block: int  # index of the source block: slices of one block join directly, blocks by "\n"
    kind: BlockKind
    table_header: _Piece | None = None  # for a table row: its table's first row, repeated as context


@dataclass(frozen=True)
class _Section:
    path: tuple[str, ...]
    pieces: tuple[_Piece, ...]


def _sections(blocks: Sequence[Block], limits: _Limits) -> list[_Section]:
    """Group blocks under their heading path; a heading closes every deeper or equal one."""
    sections: list[_Section] = []
    path: list[tuple[int, str]] = []
    pieces: list[_Piece] = []
    header: _Piece | None = None
    for index, block in enumerate(blocks):
        if block.kind == "heading":
            if pieces:
                sections.append(_Section(tuple(text for _, text in path), tuple(pieces)))
            path = [(level, text) for level, text in path if level < block.level] + [
                (block.level, block.text)
            ]
            pieces, header = [], None
            continue
        first_row = block.kind == "table_row" and (index == 0 or blocks[index - 1].kind != "table_row")
        if block.kind != "table_row" or first_row:
            header = None
        block_pieces = [
            _Piece(raw, index, block.kind, header) for raw in _split_to_fit(block.text, limits) if raw.strip()
        ]
        if first_row and len(block_pieces) == 1:
            header = block_pieces[0]  # a table's first row names its columns for the rows after it
        pieces.extend(block_pieces)
    if pieces:
        sections.append(_Section(tuple(text for _, text in path), tuple(pieces)))
    return sections


def _render(pieces: Sequence[_Piece]) -> str:
    groups = (
        "".join(piece.raw for piece in group).strip()
        for _, group in itertools.groupby(pieces, lambda p: p.block)
    )
    return "\n".join(group for group in groups if group)


# --- Packing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Packed:
    context: tuple[_Piece, ...]  # repeated from before: overlap sentences or the table header row
    own: tuple[_Piece, ...]  # what this chunk adds

    @property
    def pieces(self) -> tuple[_Piece, ...]:
        return self.context + self.own


def _pack(pieces: Sequence[_Piece], limits: _Limits) -> list[_Packed]:
    """Greedily fill chunks of one section up to max_tokens, each after the first
    opening with context from the one before."""
    packed: list[_Packed] = []
    context: tuple[_Piece, ...] = ()
    own: list[_Piece] = []
    for piece in pieces:
        if own and limits.fits([*context, *own, piece]):
            own.append(piece)
            continue
        if own:
            packed.append(_Packed(context, tuple(own)))
            context = _context(own, [piece], limits)
        own = [piece]
    if own:
        packed.append(_Packed(context, tuple(own)))
    return _rebalance_tail(packed, limits)


def _context(previous: Sequence[_Piece], following: Sequence[_Piece], limits: _Limits) -> tuple[_Piece, ...]:
    """The table header row when a chunk continues a table, else the previous chunk's last
    sentences up to overlap_tokens; nothing when it would not fit with what follows."""
    header = following[0].table_header
    context = (header,) if header is not None else _overlap(previous, limits)
    return context if limits.fits([*context, *following]) else ()


def _overlap(previous: Sequence[_Piece], limits: _Limits) -> tuple[_Piece, ...]:
    """Whole sentences from the end of `previous`, as many as fit in overlap_tokens."""
    tail: list[_Piece] = []
    for piece in reversed(previous):
        if piece.kind == "table_row":  # rows are not sentences; tables get their header instead
            break
        sentences = _split_sentences(piece.raw)
        taken = 0
        while taken < len(sentences):
            candidate = replace(piece, raw="".join(sentences[-(taken + 1) :]))
            if not limits.fits([candidate, *tail], limits.overlap_tokens):
                break
            taken += 1
        if taken:
            tail.insert(0, replace(piece, raw="".join(sentences[-taken:])))
        if taken < len(sentences):
            break
    return tuple(tail)


def _rebalance_tail(packed: list[_Packed], limits: _Limits) -> list[_Packed]:
    """Give a tiny last chunk (< min_tokens of its own) pieces from the chunk before it.

    Greedy packing already put the tail into the previous chunk if it fitted there, so the
    useful move left is the other way: shift the previous chunk's last pieces forward while
    the tail is tiny and everything still fits. Atomic pieces that cannot move leave the
    tail as it is: it still carries its heading path.
    """
    if len(packed) < 2:
        return packed
    previous, last = list(packed[-2].own), list(packed[-1].own)
    moved = False
    while (
        len(previous) > 1
        and limits.count(_render(last)) < limits.min_tokens
        and limits.fits([previous[-1], *last])
    ):
        last.insert(0, previous.pop())
        moved = True
    if not moved:
        return packed
    return [
        *packed[:-2],
        _Packed(packed[-2].context, tuple(previous)),
        _Packed(_context(previous, last, limits), tuple(last)),
    ]


# --- Entry point ----------------------------------------------------------------------------------


def chunks_build(
    *,
    blocks: Sequence[Block],
    max_tokens: int = 320,
    overlap_tokens: int = 40,
    min_tokens: int = 40,
    count_tokens: TokenCounter = approx_token_count,
) -> list[ChunkDraft]:
    """Chunk a document's blocks section by section; deterministic for the same input."""
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens or min_tokens < 0:
        raise ValueError("need max_tokens >= 1, 0 <= overlap_tokens < max_tokens and min_tokens >= 0")
    limits = _Limits(max_tokens, overlap_tokens, min_tokens, count_tokens)
    drafts: list[ChunkDraft] = []
    for section in _sections(blocks, limits):
        for packed in _pack(section.pieces, limits):
            text = _render(packed.pieces)
            drafts.append(ChunkDraft(len(drafts), section.path, text, count_tokens(text), _language(text)))
    return drafts
