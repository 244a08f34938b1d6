"""Real documents built in memory for parsing, chunking and ingestion tests.

Every sample is generated rather than checked in, so a test shows exactly what its file
contains and the repository carries no binaries.
"""

from __future__ import annotations

import functools
import io
import random
import zipfile
from collections.abc import Iterator, Sequence

import docx
import pypdf
from docx.document import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph

RETURNS_EN = (
    "Items can be returned within 30 days of delivery. They must be unused and in their "
    "original packaging. Refunds go back to the original payment method within 5 to 7 business days."
)
RETURNS_ZH = (
    "自签收之日起七天内，未使用且包装完好的商品可申请无理由退货。"
    "定制商品、贴身衣物及已拆封的数码产品不适用无理由退货。"
    "退款将在仓库确认收货后三至五个工作日内原路退回。"
)
SHIPPING_ZH = "订单在付款后四十八小时内发货。偏远地区的配送时间可能延长两至三天，运费以结算页面为准。"


# --- PDF ----------------------------------------------------------------------------------


def pdf_bytes(lines: Sequence[str], *, lines_per_page: int = 45) -> bytes:
    """A valid PDF that draws `lines` top to bottom, any Unicode text included.

    Text is shown through one Type0 font with Identity-H encoding and a ToUnicode CMap
    mapping each glyph id to its character, which is how real PDFs carry Chinese. No glyph
    program is embedded: viewers would show boxes, but text extraction is exact.
    """
    alphabet = sorted({ch for line in lines for ch in line})
    glyph = {ch: index + 1 for index, ch in enumerate(alphabet)}
    pages = [list(lines[i : i + lines_per_page]) for i in range(0, len(lines), lines_per_page)] or [[]]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (6 + 2 * i) for i in range(len(pages))), len(pages)),
        3: b"<< /Type /Font /Subtype /Type0 /BaseFont /Sample /Encoding /Identity-H "
        b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
        4: b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Sample /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 >>",
        5: _pdf_stream(_to_unicode_cmap(glyph)),
    }
    for index, page in enumerate(pages):
        shown = b"\n".join(
            b"<%s> Tj T*" % "".join(f"{glyph[ch]:04X}" for ch in line).encode() for line in page
        )
        objects[6 + 2 * index] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (7 + 2 * index)
        )
        objects[7 + 2 * index] = _pdf_stream(b"BT /F1 10 Tf 12 TL 40 800 Td\n" + shown + b"\nET")
    return _pdf_file(objects)


def _to_unicode_cmap(glyph: dict[str, int]) -> bytes:
    entries = "".join(f"<{gid:04X}> <{ch.encode('utf-16-be').hex().upper()}>\n" for ch, gid in glyph.items())
    return (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Sample def /CMapType 2 def\n"
        "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        f"{len(glyph)} beginbfchar\n{entries}endbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()


def _pdf_stream(content: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)


def _pdf_file(objects: dict[int, bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, objects[number]))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offsets[number] for number in sorted(objects)))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def policy_pdf_lines() -> list[str]:
    """A bilingual policy as a PDF shows it: numbered headings, wrapped lines, a page number."""
    return [
        "1. Returns",
        "Items can be returned within 30 days of delivery. They must be unused and in their original",
        "packaging. Refunds take 5 to 7 business days.",
        "Damaged items are replaced free of charge.",
        "2. Shipping",
        "Orders ship within two business days.",
        "第三章 退货",
        "自签收之日起七天内，未使用且包装完好的商品可申请无理由退货。",
        "1",
    ]


def encrypted_pdf_bytes(lines: Sequence[str] = ("Secret policy",), user_password: str = "") -> bytes:
    """Encrypted the way pypdf does it; an empty user password still means encrypted."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf_bytes(lines))))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf_bytes() -> bytes:
    """A page with nothing to extract, like a scan without OCR."""
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_pdf_bytes() -> bytes:
    """An upload cut short half-way."""
    data = pdf_bytes(policy_pdf_lines())
    return data[: len(data) // 2]


# --- DOCX ---------------------------------------------------------------------------------


def docx_bytes() -> bytes:
    """A Word policy using the structures admins use: Title, Heading 1/2, a Chinese "标题 2"
    style, a custom style based on Heading 2, bullets (two levels), direct numbering and a
    table with a header row and a merged cell."""
    document = docx.Document()
    document.add_heading("Shop policy", level=0)
    document.add_heading("Returns and refunds", level=1)
    document.add_paragraph(RETURNS_EN)
    document.add_paragraph("Keep the receipt", style="List Bullet")
    document.add_paragraph("Photos help for damaged items", style="List Bullet 2")
    _numbered(document.add_paragraph("Print the return label"), level=1)
    custom = document.styles.add_style("Policy Subheading", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = document.styles["Heading 2"]
    document.add_paragraph("Damaged items", style="Policy Subheading")
    document.add_paragraph("Damaged items are replaced free of charge.")
    chinese_heading = document.styles.add_style("标题 2", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("退货政策", style=chinese_heading)
    document.add_paragraph(RETURNS_ZH)
    document.add_heading("Shipping fees", level=1)
    table = document.add_table(rows=3, cols=3)
    header, mainland, remote = ("Region", "Fee", "Days"), ("Mainland", "Free", "2"), ("Remote", "", "")
    for row, cells in zip(table.rows, (header, mainland, remote), strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    remote_cells = table.rows[2].cells
    remote_cells[1].merge(remote_cells[2]).text = "Quoted at checkout"
    return _docx_save(document)


def _numbered(paragraph: Paragraph, level: int) -> None:
    """Direct numbering (w:numPr) as Word writes it for a list typed into Normal text."""
    properties = paragraph._p.get_or_add_pPr()
    numbering = OxmlElement("w:numPr")
    for tag, value in (("w:ilvl", str(level)), ("w:numId", "1")):
        element = OxmlElement(tag)
        element.set(qn("w:val"), value)
        numbering.append(element)
    properties.append(numbering)


def _docx_save(document: WordDocument) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def malformed_docx_bytes() -> bytes:
    """A real .docx whose main XML part was cut off mid-tag."""
    return _replace_zip_entry(
        docx_bytes(), "word/document.xml", b'<?xml version="1.0"?><w:document><w:body><w:p'
    )


def _replace_zip_entry(data: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            target.writestr(
                entry.filename, content if entry.filename == name else source.read(entry.filename)
            )
    return out.getvalue()


@functools.cache
def zip_bomb_docx_bytes(unpacked_mb: int = 300) -> bytes:
    """A .docx-shaped ZIP whose document.xml inflates to `unpacked_mb` MB of one byte.

    Streamed from a generator so building it never holds the big part in memory; the
    result is a few hundred KB. Cached: deflating 300 MB still takes a moment.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            for chunk in _repeat(b" " * (1024 * 1024), unpacked_mb):
                part.write(chunk)
    return out.getvalue()


def _repeat(chunk: bytes, times: int) -> Iterator[bytes]:
    for _ in range(times):
        yield chunk


def non_docx_zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("photos/readme.txt", "holiday photos")
    return out.getvalue()


# --- HTML, Markdown, text -------------------------------------------------------------------


def gb18030_html_bytes() -> bytes:
    """A GB2312-declared page (as many Chinese shop CMSes still emit), with navigation,
    scripts and a footer that must not end up in the knowledge base."""
    page = f"""<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>售后服务</title><style>body {{ color: red }}</style></head>
<body>
<nav><a href="/">首页</a> <a href="/cart">购物车</a></nav>
<script>var tracking = "不应出现";</script>
<h1>售后服务政策</h1>
<h2>退货</h2>
<p>{RETURNS_ZH[:31]}
{RETURNS_ZH[31:]}</p>
<ul><li>保留购物凭证<ul><li>电子发票亦可</li></ul></li><li>商品包装完好</li></ul>
<h2>运费</h2>
<table><tr><th>地区</th><th>运费</th></tr><tr><td>江浙沪</td><td>免运费</td></tr></table>
<div>客服电话：400-123-4567<br>工作时间：九点至二十一点</div>
<footer>版权所有 © 示例商店</footer>
</body></html>"""
    return page.encode("gb18030")


def markdown_bytes() -> bytes:
    return f"""# Returns policy

{RETURNS_EN}

## Conditions

1. Unused items
   - tags still attached
2. Original packaging

| Item | Window |
|------|--------|
| Clothing | 30 days |
| Electronics | 15 days |

## 退货

{RETURNS_ZH[:31]}
{RETURNS_ZH[31:]}
""".encode()


def policy_text() -> str:
    """A bilingual plain-text policy with the heading styles plain text uses."""
    return (
        f"Returns\n\n{RETURNS_EN}\n\n1. Shipping\n\nOrders ship within two business days.\n\n"
        f"第三章 退货\n\n{RETURNS_ZH}\n"
    )


def gb18030_text_bytes() -> bytes:
    return f"第一章 配送\n\n{SHIPPING_ZH}\n\n第二章 退货\n\n{RETURNS_ZH}\n".encode("gb18030")


def utf16_text_bytes() -> bytes:
    return policy_text().encode("utf-16")  # Python writes the BOM


def shift_jis_text_bytes() -> bytes:
    """Japanese in Shift-JIS: decodes as GB18030 without error, into nonsense hanzi."""
    return "返品ポリシー：商品到着後三十日以内であれば、未使用品に限り返品を受け付けます。".encode(
        "shift_jis"
    )


def random_bytes(size: int = 4096, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


# --- Executables ----------------------------------------------------------------------------


def elf_bytes() -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + bytes(56) + random_bytes(512)


def pe_bytes() -> bytes:
    """A DOS stub pointing (e_lfanew at 0x3C) to a PE header, as every Windows .exe has."""
    header = bytearray(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(48))
    header[0x3C:0x40] = (0x80).to_bytes(4, "little")
    return bytes(header) + bytes(0x80 - len(header)) + b"PE\x00\x00" + random_bytes(512)
