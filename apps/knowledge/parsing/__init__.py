"""Turn an uploaded policy document into a flat list of structural blocks.

Admins upload whatever their shop has: PDFs, Word files, saved web pages, Markdown or
plain text, in Chinese or English. Chunking needs the structure (which heading a rule sits
under), not the layout, so every format is reduced to headings, paragraphs, list items and
table rows. Anything we cannot read faithfully is refused with a reason the admin can act
on, rather than indexed as garbage that would later be quoted to customers.

This module is pure Python (no Django) so the Celery ingestion task and tests can call it
directly.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from apps.knowledge.parsing.core import (
    _MB,
    CJK_RANGES,
    Block,
    BlockKind,
    DocumentFormat,
    DocumentRejected,
    ParsedDocument,
    _sniff,
    _Sniffed,
    _tidy,
    detect_format,
)
from apps.knowledge.parsing.html_format import _html_blocks
from apps.knowledge.parsing.markdown_format import _markdown_blocks
from apps.knowledge.parsing.pdf import _pdf_blocks
from apps.knowledge.parsing.text_structure import _plain_text_blocks
from apps.knowledge.parsing.word import (
    DOCX_MAX_PARTS,
    DOCX_MAX_RATIO,
    DOCX_MAX_UNPACKED_BYTES,
    DOCX_RATIO_CHECKED_ABOVE_BYTES,
    _docx_blocks,
)

__all__ = [
    "Block",
    "BlockKind",
    "CJK_RANGES",
    "DOCX_MAX_PARTS",
    "DOCX_MAX_RATIO",
    "DOCX_MAX_UNPACKED_BYTES",
    "DOCX_RATIO_CHECKED_ABOVE_BYTES",
    "DocumentFormat",
    "DocumentRejected",
    "ParsedDocument",
    "detect_format",
    "document_parse",
]


def document_parse(*, data: bytes, filename: str, max_bytes: int = 20 * _MB) -> ParsedDocument:
    """Parse an uploaded document into blocks, or raise DocumentRejected saying why not."""
    if not data:
        raise DocumentRejected("the file is empty")
    if len(data) > max_bytes:
        raise DocumentRejected(f"the file is {len(data) / _MB:.1f} MB; the limit is {max_bytes / _MB:g} MB")
    sniffed = _sniff(data, filename)
    blocks = _tidy(_blocks_for(sniffed, data))
    if not blocks:
        raise DocumentRejected(
            "no text could be extracted; scanned PDFs need OCR"
            if sniffed.format == "pdf"
            else "the document contains no text"
        )
    title = next((block.text for block in blocks if block.kind == "heading"), None)
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    return ParsedDocument(
        format=sniffed.format, title=title or stem or None, blocks=blocks, encoding=sniffed.encoding
    )


def _blocks_for(sniffed: _Sniffed, data: bytes) -> list[Block]:
    if sniffed.format == "pdf":
        return _pdf_blocks(data)
    if sniffed.format == "docx":
        return _docx_blocks(data)
    text = sniffed.text or ""
    if sniffed.format == "html":
        return _html_blocks(text)
    if sniffed.format == "markdown":
        return _markdown_blocks(text)
    return _plain_text_blocks(text)
