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

import codecs
import io
import itertools
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal, TypeVar

import docx
import lxml.html
import pypdf
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree
from markdown_it import MarkdownIt
from markdown_it.token import Token

BlockKind = Literal["heading", "paragraph", "list_item", "table_row"]
DocumentFormat = Literal["pdf", "docx", "html", "markdown", "text"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Block:
    """One structural unit; chunking packs these and never splits one it can keep whole."""

    kind: BlockKind
    text: str
    level: int = 0  # heading level 1..6 for headings; nesting depth (0 = top) for list items


@dataclass(frozen=True)
class ParsedDocument:
    """What the ingestion stores about a file before chunking it."""

    format: DocumentFormat
    title: str | None
    blocks: list[Block]
    encoding: str | None = None  # for text formats: the detected encoding


class DocumentRejected(Exception):
    """Raised with a human-readable reason an admin can act on (shown on the document)."""

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- Limits -----------------------------------------------------------------------------

# A .docx is a ZIP: these bound what python-docx would inflate into memory. Real policy
# documents are a few MB unpacked with tens of parts; a zip bomb is far beyond either.
DOCX_MAX_UNPACKED_BYTES = 100 * 1024 * 1024
DOCX_MAX_PARTS = 1000
# XML deflates 5-30:1; only bombs (runs of one byte) reach hundreds to one. The ratio is
# judged only above a size where it matters, so a tiny, very repetitive part passes.
DOCX_MAX_RATIO = 100
DOCX_RATIO_CHECKED_ABOVE_BYTES = 10 * 1024 * 1024

_MB = 1024 * 1024

# --- Format detection ---------------------------------------------------------------------

_EXPECTED_BY_EXTENSION = {
    ".pdf": "a PDF",
    ".docx": "a Word document",
    ".doc": "a Word document",
    ".html": "an HTML page",
    ".htm": "an HTML page",
    ".md": "a Markdown file",
    ".markdown": "a Markdown file",
    ".txt": "a text file",
}
_MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown", ".mdown", ".mkd"})

_LEGACY_OFFICE_ADVICE = "; save it as an unprotected .docx or PDF and upload that"
# (offset, magic, what it looks like, advice). Magic numbers: https://en.wikipedia.org/wiki/List_of_file_signatures
_BINARY_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x7fELF", "a Linux executable", ""),
    (0, b"\xfe\xed\xfa\xce", "a macOS executable", ""),
    (0, b"\xfe\xed\xfa\xcf", "a macOS executable", ""),
    (0, b"\xce\xfa\xed\xfe", "a macOS executable", ""),
    (0, b"\xcf\xfa\xed\xfe", "a macOS executable", ""),
    (0, b"\xca\xfe\xba\xbe", "a macOS or Java executable", ""),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image", ""),
    (0, b"\xff\xd8\xff", "a JPEG image", ""),
    (0, b"GIF87a", "a GIF image", ""),
    (0, b"GIF89a", "a GIF image", ""),
    (0, b"II*\x00", "a TIFF image", ""),
    (0, b"MM\x00*", "a TIFF image", ""),
    (0, b"RIFF", "an image or media file", ""),
    (4, b"ftyp", "a photo or video file", ""),
    (0, b"\x1f\x8b", "a gzip archive", ""),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", ""),
    (0, b"Rar!\x1a\x07", "a RAR archive", ""),
    (0, b"\xfd7zXZ\x00", "an XZ archive", ""),
    (4, b"1AY&SY", "a bzip2 archive", ""),
    (0, b"\x28\xb5\x2f\xfd", "a Zstandard archive", ""),
    (257, b"ustar", "a tar archive", ""),
    # Word 97-2003 files and password-protected .docx files are both OLE compound files.
    (
        0,
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "a legacy (.doc) or password-protected Office file",
        _LEGACY_OFFICE_ADVICE,
    ),
    (0, b"{\\rtf", "an RTF document", "; save it as .docx or PDF and upload that"),
)

# HTML is recognised by how it starts (after a BOM, XML declaration or comments), so a
# Markdown file that merely mentions a tag further down stays Markdown.
_HTML_START_RE = re.compile(
    r"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
    r"<(?:!doctype\s+html|html|head|body|meta|title|h[1-6]|p|div|table|ul|ol|section|article|main)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)
# Structure plain text never has by accident: ATX headings, table delimiter rows, fences,
# links, setext "===" underlines. Bullets alone are ambiguous (plain text uses them too).
_MARKDOWN_SIGNAL_RE = re.compile(
    r"^#{1,6}[ \t]+\S"
    r"|^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$"
    r"|^(?:```|~~~)"
    r"|\[[^\]\n]+\]\([^)\s]+\)"
    r"|^\S[^\n]*\n=+[ \t]*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class _Sniffed:
    format: DocumentFormat
    text: str | None = None  # decoded content, for the text formats
    encoding: str | None = None


def detect_format(data: bytes, filename: str = "") -> DocumentFormat:
    """Say what the bytes are, judged by content: names lie, renamed executables do too.

    Raises DocumentRejected for anything we do not ingest (executables, images, archives,
    undecodable text), naming what the file looks like.
    """
    return _sniff(data, filename).format


def _sniff(data: bytes, filename: str) -> _Sniffed:
    if b"%PDF-" in data[:1024]:  # readers accept the header anywhere in the first 1 KB
        return _Sniffed("pdf")
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _Sniffed(_zip_format(data, filename))
    _reject_binary(data, filename)
    if _HTML_START_RE.match(_ascii_preview(data)):
        text, encoding = _decode_html(data)
        return _Sniffed("html", text, encoding)
    text, encoding = _decode_text(data)
    is_markdown = bool(_MARKDOWN_SIGNAL_RE.search(text)) or _extension(filename) in _MARKDOWN_EXTENSIONS
    return _Sniffed("markdown" if is_markdown else "text", text, encoding)


def _extension(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def _looks_like(what: str, filename: str, advice: str = "") -> DocumentRejected:
    expected = _EXPECTED_BY_EXTENSION.get(_extension(filename), "a document")
    return DocumentRejected(f"the file looks like {what}, not {expected}{advice}")


def _reject_binary(data: bytes, filename: str) -> None:
    for offset, magic, what, advice in _BINARY_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            raise _looks_like(what, filename, advice)
    # "MZ" alone could start a text line; a DOS/PE header also has NUL bytes right away.
    if data.startswith(b"MZ") and b"\x00" in data[:64]:
        raise _looks_like("a Windows executable", filename)


def _zip_format(data: bytes, filename: str) -> DocumentFormat:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, NotImplementedError) as error:  # the latter: an unknown ZIP version
        raise DocumentRejected("the file is a damaged ZIP archive and could not be opened") from error
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        raise _looks_like("an Excel workbook", filename)
    if "ppt/presentation.xml" in names:
        raise _looks_like("a PowerPoint presentation", filename)
    raise _looks_like("a ZIP archive", filename)


def _ascii_preview(data: bytes) -> str:
    """The first 4 KB as text good enough to spot ASCII tags, whatever the encoding."""
    head = data[:4096]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="ignore")
    return head.removeprefix(codecs.BOM_UTF8).decode("latin-1")


# --- Text decoding ------------------------------------------------------------------------

_BOM_CODECS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ENCODING_REJECTED = "the text encoding could not be recognised; save the file as UTF-8"
# Western punctuation Windows-1252 files carry besides letters (smart quotes, dashes, ...).
_CP1252_PUNCTUATION = frozenset("‘’“”–—…•€™©®°±×÷§¶·«»¡¿\u00a0")


# C0/C1 control characters other than whitespace, and the replacement character.
_MISDECODED_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
# Mis-decoding shows throughout a file, so judging how plausible the characters are on a
# prefix is as good as on the whole, and keeps a 20 MB upload quick.
_PLAUSIBILITY_SAMPLE_CHARS = 200_000
_NON_ASCII_RE = re.compile("[^\x00-\x7f]")


def _is_clean(text: str) -> bool:
    """Mis-decoded bytes show up as control characters or U+FFFD; real text has almost none."""
    bad = len(_MISDECODED_RE.findall(text))
    return bad * 1000 <= len(text) if len(text) >= 1000 else bad == 0


def _is_plausible_chinese(text: str) -> bool:
    """GB18030 decodes most byte soup (Shift-JIS included) into rare hanzi; real Chinese
    text is overwhelmingly made of the ~7,000 common characters that GB2312 holds."""
    non_ascii = Counter(_NON_ASCII_RE.findall(text[:_PLAUSIBILITY_SAMPLE_CHARS]))
    common = sum(count for ch, count in non_ascii.items() if _encodes(ch, "gb2312"))
    return _is_clean(text) and common >= 0.8 * non_ascii.total()


def _is_plausible_western(text: str) -> bool:
    """Windows-1252 decodes almost anything; accept it only for mostly-ASCII text whose
    few other characters are letters or Western punctuation (a Windows-saved English file)."""
    sample = text[:_PLAUSIBILITY_SAMPLE_CHARS]
    non_ascii = _NON_ASCII_RE.findall(sample)
    plausible = all(ch.isalpha() or ch in _CP1252_PUNCTUATION for ch in set(non_ascii))
    return _is_clean(text) and plausible and len(non_ascii) <= 0.1 * len(sample)


def _encodes(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _is_damaged_utf8(text: str) -> bool:
    """UTF-8 with a stray bad byte (at most 1 in 1,000 characters) still has its valid
    multi-byte characters; Windows-1252 bytes almost never form one."""
    return _is_clean(text) and any(ord(ch) > 0x7F and ch != "\ufffd" for ch in text)


# Tried in order after the BOMs. A fixed list beats a statistical detector here: the shops
# write Chinese or English, and the same bytes must always decode the same way. Reading
# damaged UTF-8 with a replacement character beats refusing a policy over one byte.
_FALLBACK_DECODERS: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("utf-8", "strict", _is_clean),
    ("gb18030", "strict", _is_plausible_chinese),
    ("utf-8", "replace", _is_damaged_utf8),
    ("cp1252", "strict", _is_plausible_western),
)


def _decode_text(data: bytes) -> tuple[str, str]:
    for bom, codec in _BOM_CODECS:
        if data.startswith(bom):
            text = _decode(data, codec)
            if text is None or not _is_clean(text):
                raise DocumentRejected(_ENCODING_REJECTED)
            return text, codec
    for codec, errors, plausible in _FALLBACK_DECODERS:
        text = _decode(data, codec, errors)
        if text is not None and plausible(text):
            return text, codec
    raise DocumentRejected(_ENCODING_REJECTED)


def _decode(data: bytes, codec: str, errors: str = "strict") -> str | None:
    try:
        return data.decode(codec, errors)
    except UnicodeDecodeError:
        return None


_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.IGNORECASE)
# Labels whose bytes a better codec reads correctly, as browsers do (WHATWG Encoding
# Standard): GB2312/GBK pages routinely contain GB18030-only characters.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "ascii": "cp1252",
}


def _decode_html(data: bytes) -> tuple[str, str]:
    """A BOM wins, then the page's own <meta charset>, then the same detection as text."""
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        declared = _META_CHARSET_RE.search(data[:4096])
        codec = _known_codec(declared.group(1).decode("ascii").lower()) if declared else None
        text = _decode(data, codec) if codec else None
        # Templates often keep a gb2312 meta after the content was re-saved as UTF-8.
        if codec and text is not None and (codec != "gb18030" or _is_plausible_chinese(text)):
            return text, codec
    return _decode_text(data)


def _known_codec(label: str) -> str | None:
    label = _CHARSET_ALIASES.get(label, label)
    if label.startswith("utf-16"):  # a page that can be read to find this meta is not UTF-16
        return "utf-8"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


# --- Normalisation ------------------------------------------------------------------------

# Regex character-class ranges of the CJK scripts (kana, hanzi, hangul); chunking counts
# tokens and detects language with the same ranges.
CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_OR_FULLWIDTH = CJK_RANGES + "\u3000-\u303f\uff00-\uffef"
_INVISIBLE_RE = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")
_SPACES_RE = re.compile(r"[^\S\n]+")
# A line break inside Chinese text is not a space: wrapped HTML source must not gain one.
_CJK_LINE_BREAK_RE = re.compile(rf"(?<=[{_CJK_OR_FULLWIDTH}])[^\S\n]*\n\s*(?=[{_CJK_OR_FULLWIDTH}])")
_WHITESPACE_RE = re.compile(r"\s+")
_CJK_CHAR_RE = re.compile(f"[{_CJK_OR_FULLWIDTH}]")


def _normalise(text: str, *, single_line: bool = False) -> str:
    """Collapse whitespace but keep explicit line breaks. No NFKC: it would turn Chinese
    full-width punctuation (，：（）) into ASCII and change what customers are quoted."""
    text = _INVISIBLE_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if single_line:
        text = text.replace("\n", " ")
    text = _SPACES_RE.sub(" ", text)
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


def _tidy(blocks: Iterable[Block]) -> list[Block]:
    """Normalise every block's text and drop the ones left empty."""
    tidied = (
        Block(
            block.kind,
            _normalise(block.text, single_line=block.kind in ("heading", "table_row")),
            block.level,
        )
        for block in blocks
    )
    return [block for block in tidied if block.text]


# --- Entry point --------------------------------------------------------------------------


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


# --- Plain-text structure (plain text and PDF) ---------------------------------------------

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


# --- PDF ----------------------------------------------------------------------------------

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


# --- DOCX ---------------------------------------------------------------------------------

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


# --- HTML ---------------------------------------------------------------------------------

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


# --- Markdown -----------------------------------------------------------------------------

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
