"""PDF: text per page, running headers and footers dropped, then the plain-text structure."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable

import pypdf

from apps.knowledge.parsing.core import _T, Block, DocumentRejected
from apps.knowledge.parsing.text_structure import _PAGE_NUMBER_RE, _display_width, _group_blocks

_RUNNING_LINE_MIN_PAGES = 3
_SENTENCE_ENDINGS = tuple("。！？.!?")


def _pdf_blocks(data: bytes) -> list[Block]:
    pages = [[line.strip() for line in page.splitlines()] for page in _pdf_page_texts(data)]
    lines = _drop_running_lines(
        [[line for line in page if not _PAGE_NUMBER_RE.match(line)] for page in pages]
    )
    return [block for group in _pdf_paragraph_groups(lines) for block in _group_blocks(group)]


def _pdf_page_texts(data: bytes) -> list[str]:
    # pypdf repairs what it can; an incomplete file has no end-of-file marker at all.
    if b"%%EOF" not in data[-2048:]:
        raise DocumentRejected(
            "the PDF is damaged or incomplete (it was cut short); upload the whole file again"
        )
    reader = _pdf_guarded(lambda: pypdf.PdfReader(io.BytesIO(data)))
    if reader.is_encrypted:
        # Even with an empty user password: the owner's restrictions usually forbid copying
        # text, and decrypting AES needs an optional crypto library.
        raise DocumentRejected("the PDF is password-protected")
    return _pdf_guarded(lambda: [page.extract_text() for page in reader.pages])


def _pdf_guarded(read: Callable[[], _T]) -> _T:
    try:
        return read()
    except Exception as error:  # noqa: BLE001 - pypdf's failures on hostile input are not a closed set
        raise DocumentRejected("the PDF is damaged and could not be read") from error


def _drop_running_lines(pages: list[list[str]]) -> list[str]:
    """Drop headers and footers repeated at the top or bottom of most pages."""
    edges = Counter(line for page in map(_non_blank, pages) if page for line in {page[0], page[-1]})
    threshold = max(_RUNNING_LINE_MIN_PAGES, (len(pages) + 1) // 2)
    running = {line for line, count in edges.items() if count >= threshold}
    return [line for page in pages for line in page if line not in running]


def _non_blank(lines: list[str]) -> list[str]:
    return [line for line in lines if line]


def _pdf_paragraph_groups(lines: list[str]) -> list[list[str]]:
    """PDF text has no blank lines between paragraphs; a line that ends a sentence well
    short of the text width is the last line of one."""
    width = max((_display_width(line) for line in lines), default=0)
    groups: list[list[str]] = [[]]
    for line in lines:
        if line:
            groups[-1].append(line)
        ends_paragraph = line.endswith(_SENTENCE_ENDINGS) and _display_width(line) < 0.8 * width
        if (not line or ends_paragraph) and groups[-1]:
            groups.append([])
    return [group for group in groups if group]
