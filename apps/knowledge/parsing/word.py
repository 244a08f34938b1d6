"""Word (.docx): styles give headings and lists; zip-bomb limits are checked before unpacking."""

from __future__ import annotations

import io
import re
import zipfile
import zlib

import docx
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from apps.knowledge.parsing.core import (
    _MB,
    Block,
    DocumentRejected,
)

# What zipfile and python-docx raise on damaged archives and packages.
_DAMAGED_DOCX_ERRORS = (
    KeyError,
    ValueError,
    EOFError,
    NotImplementedError,
    zlib.error,
    zipfile.BadZipFile,
    OpcError,
)
_DOCX_HEADING_STYLE_RE = re.compile(r"^(?:heading|标题)\s*([1-9])$", re.IGNORECASE)
_DOCX_TITLE_STYLES = frozenset({"title", "标题"})
_DOCX_LIST_STYLE_RE = re.compile(
    r"^(?:list(?: bullet| number)?|列表(?:项目符号|编号)?)(?: ([2-9]))?$", re.IGNORECASE
)

# A .docx is a ZIP: these bound what python-docx would inflate into memory. Real policy
# documents are a few MB unpacked with tens of parts; a zip bomb is far beyond either.
DOCX_MAX_UNPACKED_BYTES = 100 * 1024 * 1024
DOCX_MAX_PARTS = 1000
# XML deflates 5-30:1; only bombs (runs of one byte) reach hundreds to one. The ratio is
# judged only above a size where it matters, so a tiny, very repetitive part passes.
DOCX_MAX_RATIO = 100
DOCX_RATIO_CHECKED_ABOVE_BYTES = 10 * 1024 * 1024


def _docx_blocks(data: bytes) -> list[Block]:
    _check_zip_limits(data)
    try:
        # python-docx parses with resolve_entities=False, so XML entity bombs do not expand.
        document = docx.Document(io.BytesIO(data))
        return [block for item in document.iter_inner_content() for block in _docx_item_blocks(item)]
    except etree.XMLSyntaxError as error:
        raise DocumentRejected("the Word file is damaged: its XML is malformed") from error
    except _DAMAGED_DOCX_ERRORS as error:
        raise DocumentRejected("the Word file is damaged and could not be read") from error


def _check_zip_limits(data: bytes) -> None:
    """Judge the ZIP by its directory before inflating anything. Declared sizes suffice:
    zipfile never inflates an entry past its declared size (ZipExtFile._read1 truncates
    to it and the CRC check then fails), so a lying header cannot smuggle a bomb through."""
    entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    if len(entries) > DOCX_MAX_PARTS:
        raise DocumentRejected(f"the Word file has {len(entries)} parts; the limit is {DOCX_MAX_PARTS}")
    unpacked = sum(entry.file_size for entry in entries)
    packed = max(sum(entry.compress_size for entry in entries), 1)
    if unpacked > DOCX_RATIO_CHECKED_ABOVE_BYTES and unpacked / packed > DOCX_MAX_RATIO:
        raise DocumentRejected(
            f"the Word file unpacks {unpacked // packed}:1, far beyond real documents (it may be a zip bomb)"
        )
    if unpacked > DOCX_MAX_UNPACKED_BYTES:
        raise DocumentRejected(
            f"the Word file would unpack to {unpacked // _MB} MB, more than the {DOCX_MAX_UNPACKED_BYTES // _MB} MB limit"
        )


def _docx_item_blocks(item: Paragraph | Table) -> list[Block]:
    if isinstance(item, Table):
        return [Block("table_row", text) for text in _docx_table_rows(item)]
    styles = _docx_style_names(item)
    heading = next((level for name in styles if (level := _docx_heading_level(name))), None)
    if heading:
        return [Block("heading", item.text, heading)]
    list_level = _docx_list_level(item, styles)
    if list_level is not None:
        return [Block("list_item", item.text, list_level)]
    return [Block("paragraph", item.text)]


def _docx_style_names(paragraph: Paragraph) -> list[str]:
    """The paragraph's style and the styles it is based on: "My heading" may inherit
    from Heading 2."""
    names: list[str] = []
    style = paragraph.style
    while style is not None and len(names) < 10:  # bounded: a damaged file may loop
        names.append((style.name or "").strip().lower())
        style = style.base_style
    return names


def _docx_heading_level(style_name: str) -> int | None:
    if style_name in _DOCX_TITLE_STYLES:
        return 1
    match = _DOCX_HEADING_STYLE_RE.match(style_name)
    return min(int(match.group(1)), 6) if match else None


def _docx_list_level(paragraph: Paragraph, styles: list[str]) -> int | None:
    """Direct numbering (w:numPr with its w:ilvl) first, then list styles ("List Bullet 2")."""
    numbering = paragraph._p.xpath("./w:pPr/w:numPr")
    if numbering and numbering[0].xpath("./w:numId/@w:val") != ["0"]:  # numId 0 switches numbering off
        level = numbering[0].xpath("./w:ilvl/@w:val")
        return int(level[0]) if level and level[0].isdigit() else 0
    for name in styles:
        if match := _DOCX_LIST_STYLE_RE.match(name):
            return int(match.group(1)) - 1 if match.group(1) else 0
    return None


def _docx_table_rows(table: Table) -> list[str]:
    rows = []
    for row in table.rows:
        grid = row.cells
        # A merged cell comes back once per grid column it spans; keep one copy.
        cells = [cell for index, cell in enumerate(grid) if index == 0 or cell._tc is not grid[index - 1]._tc]
        rows.append(" | ".join(cell.text.replace("\n", " ").strip() for cell in cells))
    return [row for row in rows if row.replace("|", "").strip()]
