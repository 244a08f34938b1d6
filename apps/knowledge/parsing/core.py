"""Blocks, format detection, text decoding and normalisation shared by every format."""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal, TypeVar

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


_MB = 1024 * 1024


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
