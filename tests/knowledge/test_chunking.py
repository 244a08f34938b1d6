"""Chunking: sections stay apart, blocks stay whole where they fit, and output is stable."""

from __future__ import annotations

import random
from typing import Any

import pytest

from apps.knowledge.chunking import ChunkDraft, approx_token_count, chunks_build
from apps.knowledge.parsing import Block, BlockKind, document_parse
from tests.knowledge import samples


def heading(text: str, level: int = 1) -> Block:
    return Block("heading", text, level)


def paragraph(text: str) -> Block:
    return Block("paragraph", text)


def english_sentences(count: int, start: int = 0) -> list[str]:
    return [
        f"Rule {start + n} says parcel {start + n} ships within {n % 5 + 1} business days."
        for n in range(count)
    ]


# --- Token estimate and language -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n", 0),
        ("退货政策", 4),  # 4 hanzi x 0.8 = 3.2, rounded up
        ("Returns within thirty days", 5),  # 4 words x 1.2 = 4.8
        ("2024", 2),  # XLM-R: "▁20", "24"
        ("12345678", 3),
        ("a | b", 4),  # 2 words and a symbol: 3.4
    ],
)
def test_approx_token_count(text: str, tokens: int) -> None:
    assert approx_token_count(text) == tokens


def test_approx_token_count_of_mixed_text() -> None:
    # iPhone, Pro: 2.4; 15, 30: 2; 的退货政策是天: 7 x 0.8 = 5.6; total 10 (the e5 tokenizer says 11).
    assert approx_token_count("iPhone 15 Pro 的退货政策是30天") == 10


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (samples.RETURNS_ZH, "zh"),
        (samples.RETURNS_EN, "en"),
        ("iPhone 15 Pro 的退货政策是三十天", "zh"),
        ("退货政策 return policy", "mixed"),
        ("400-123-4567", "mixed"),
    ],
)
def test_language_by_cjk_share(text: str, language: str) -> None:
    [chunk] = chunks_build(blocks=[paragraph(text)])
    assert chunk.language == language


# --- Structure ----------------------------------------------------------------------------------


def test_small_blocks_of_a_section_are_packed_together_and_sections_stay_apart() -> None:
    blocks = [
        heading("Returns and refunds"),
        paragraph("Items can be returned within 30 days."),
        Block("list_item", "Keep the receipt."),
        heading("Damaged items", 2),
        paragraph("Damaged items are replaced free of charge."),
        heading("Shipping"),
        paragraph("Orders ship within two days."),
    ]
    chunks = chunks_build(blocks=blocks)
    assert [(chunk.ordinal, chunk.heading_path, chunk.text) for chunk in chunks] == [
        (0, ("Returns and refunds",), "Items can be returned within 30 days.\nKeep the receipt."),
        (1, ("Returns and refunds", "Damaged items"), "Damaged items are replaced free of charge."),
        (2, ("Shipping",), "Orders ship within two days."),
    ]
    assert all(chunk.token_count == approx_token_count(chunk.text) for chunk in chunks)


def test_text_before_the_first_heading_has_an_empty_path_and_empty_sections_make_no_chunk() -> None:
    blocks = [paragraph("Welcome."), heading("Policies"), heading("Returns", 2), paragraph("Thirty days.")]
    assert [(chunk.heading_path, chunk.text) for chunk in chunks_build(blocks=blocks)] == [
        ((), "Welcome."),
        (("Policies", "Returns"), "Thirty days."),
    ]


def test_blocks_stay_whole_when_they_fit() -> None:
    items = [Block("list_item", sentence) for sentence in english_sentences(12)]
    chunks = chunks_build(blocks=[heading("Rules"), *items], max_tokens=60, overlap_tokens=0)
    assert len(chunks) > 1
    lines = [line for chunk in chunks for line in chunk.text.split("\n")]
    assert lines == [item.text for item in items]


def test_long_english_paragraph_splits_at_sentences_with_overlap() -> None:
    sentences = english_sentences(30)
    chunks = chunks_build(
        blocks=[heading("Rules"), paragraph(" ".join(sentences))], max_tokens=80, overlap_tokens=20
    )
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.token_count <= 80
        assert chunk.text.startswith("Rule ") and chunk.text.endswith(".")  # cut between sentences only
    for previous, current in zip(chunks, chunks[1:], strict=False):
        last_sentence = next(sentence for sentence in sentences if previous.text.endswith(sentence))
        assert current.text.startswith(last_sentence)  # the tail sentence repeats as overlap
    assert all(any(sentence in chunk.text for chunk in chunks) for sentence in sentences)


def test_long_chinese_paragraph_splits_at_chinese_sentence_ends() -> None:
    text = samples.RETURNS_ZH * 8
    chunks = chunks_build(blocks=[paragraph(text)], max_tokens=60, overlap_tokens=0, min_tokens=0)
    assert len(chunks) > 1
    assert all(chunk.text.endswith("。") and chunk.token_count <= 60 for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == text


def test_overlap_never_crosses_sections() -> None:
    blocks = [
        heading("A"),
        paragraph(" ".join(english_sentences(12))),
        heading("B"),
        paragraph(" ".join(english_sentences(12, start=100))),
    ]
    chunks = chunks_build(blocks=blocks, max_tokens=80, overlap_tokens=20)
    for chunk in chunks:
        numbers = {
            int(word) for word in chunk.text.replace(".", " ").split() if word.isdigit() and int(word) > 5
        }
        assert all((n >= 100) == (chunk.heading_path == ("B",)) for n in numbers)


def test_a_long_sentence_splits_at_clauses_then_hard_cuts_between_words() -> None:
    clauses = "，".join(["未使用且包装完好的商品可以申请退货"] * 12) + "。"
    [*zh_chunks] = chunks_build(blocks=[paragraph(clauses)], max_tokens=40, overlap_tokens=0, min_tokens=0)
    assert all(chunk.text.endswith(("，", "。")) and chunk.token_count <= 40 for chunk in zh_chunks)

    words = " ".join(f"word{n}" for n in range(200))  # no punctuation at all
    en_chunks = chunks_build(blocks=[paragraph(words)], max_tokens=30, overlap_tokens=0, min_tokens=0)
    assert all(chunk.token_count <= 30 for chunk in en_chunks)
    assert " ".join(chunk.text for chunk in en_chunks) == words  # no word was cut in two


def test_table_rows_repeat_the_header_row_in_later_chunks() -> None:
    header = Block("table_row", "Region | Fee | Delivery days")
    rows = [Block("table_row", f"Region {n} | {n} yuan | {n % 4 + 1}") for n in range(40)]
    chunks = chunks_build(blocks=[heading("Shipping fees"), header, *rows], max_tokens=60)
    assert len(chunks) > 2
    assert all(chunk.text.split("\n")[0] == header.text for chunk in chunks)
    body_rows = [line for chunk in chunks for line in chunk.text.split("\n")[1:]]
    assert body_rows == [row.text for row in rows]


def test_a_tiny_tail_takes_pieces_from_the_chunk_before() -> None:
    # Sentences of 13 tokens: greedy packing puts 8 (100 tokens) in the first chunk and
    # leaves the 9th alone, below min_tokens; the tail borrows until it is not tiny.
    sentences = english_sentences(9)
    chunks = chunks_build(
        blocks=[paragraph(" ".join(sentences))], max_tokens=100, overlap_tokens=0, min_tokens=40
    )
    assert [chunk.token_count for chunk in chunks] == [62, 50]
    assert chunks[0].text + " " + chunks[1].text == " ".join(sentences)


def test_custom_token_counter_is_used() -> None:
    def words(text: str) -> int:
        return len(text.split())

    chunks = chunks_build(
        blocks=[paragraph(" ".join(english_sentences(20)))], max_tokens=50, count_tokens=words
    )
    assert all(chunk.token_count == words(chunk.text) <= 50 for chunk in chunks)


@pytest.mark.parametrize(
    "arguments", [{"max_tokens": 0}, {"overlap_tokens": 320}, {"overlap_tokens": -1}, {"min_tokens": -1}]
)
def test_invalid_limits_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        chunks_build(blocks=[paragraph("x")], **arguments)


# --- Invariants on generated documents -----------------------------------------------------------


def random_document(seed: int) -> list[Block]:
    rng = random.Random(seed)
    pieces = [samples.RETURNS_ZH, samples.RETURNS_EN, samples.SHIPPING_ZH, *english_sentences(5)]
    blocks: list[Block] = []
    for section in range(rng.randint(1, 6)):
        blocks.append(heading(f"Section {seed}-{section}", rng.randint(1, 3)))
        for _ in range(rng.randint(0, 8)):
            kinds: list[BlockKind] = ["paragraph", "list_item", "table_row"]
            kind = rng.choice(kinds)
            blocks.append(Block(kind, " ".join(rng.choices(pieces, k=rng.randint(1, 6)))))
    return blocks


@pytest.mark.parametrize("seed", range(25))
def test_invariants(seed: int) -> None:
    blocks = random_document(seed)
    chunks = chunks_build(blocks=blocks, max_tokens=120, overlap_tokens=30, min_tokens=20)
    assert chunks == chunks_build(
        blocks=blocks, max_tokens=120, overlap_tokens=30, min_tokens=20
    )  # deterministic
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    headings = {block.text for block in blocks if block.kind == "heading"}
    for chunk in chunks:
        assert chunk.text and chunk.token_count <= 120
        assert set(chunk.heading_path) <= headings
        assert not headings & set(chunk.text.split("\n"))  # heading text is in the path, not the body


def test_parsed_markdown_document_end_to_end() -> None:
    parsed = document_parse(data=samples.markdown_bytes(), filename="policy.md")
    chunks: list[ChunkDraft] = chunks_build(blocks=parsed.blocks)
    assert [(chunk.heading_path, chunk.language) for chunk in chunks] == [
        (("Returns policy",), "en"),
        (("Returns policy", "Conditions"), "en"),
        (("Returns policy", "退货"), "zh"),
    ]
    assert chunks[1].text.split("\n") == [
        "1. Unused items",
        "tags still attached",
        "2. Original packaging",
        "Item | Window",
        "Clothing | 30 days",
        "Electronics | 15 days",
    ]
