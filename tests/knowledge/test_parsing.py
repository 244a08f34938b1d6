"""Parsing real files built in memory: what each format yields, and why bad uploads are refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from apps.knowledge import parsing
from apps.knowledge.parsing import Block, DocumentRejected, ParsedDocument, detect_format, document_parse
from tests.knowledge import samples


def parse(data: bytes, filename: str) -> ParsedDocument:
    return document_parse(data=data, filename=filename)


def rejection(data: bytes, filename: str, **kwargs: int) -> str:
    with pytest.raises(DocumentRejected) as caught:
        document_parse(data=data, filename=filename, **kwargs)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def texts(blocks: list[Block], kind: str) -> list[str]:
    return [block.text for block in blocks if block.kind == kind]


# --- Format detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (samples.pdf_bytes(["Returns"]), "policy.txt", "pdf"),
        (samples.docx_bytes(), "policy.pdf", "docx"),
        (samples.gb18030_html_bytes(), "policy.txt", "html"),
        (samples.markdown_bytes(), "policy.txt", "markdown"),
        (
            samples.policy_text().encode(),
            "policy.md",
            "markdown",
        ),  # no Markdown structure: the name breaks the tie
        (samples.policy_text().encode(), "policy.txt", "text"),
        (b"# Returns\n\nWithin 30 days.\n", "policy.txt", "markdown"),  # structure beats the name
    ],
)
def test_detect_format_judges_content_not_the_name(data: bytes, filename: str, expected: str) -> None:
    assert detect_format(data, filename) == expected


def test_detect_format_refuses_executables() -> None:
    with pytest.raises(DocumentRejected, match="Windows executable"):
        detect_format(samples.pe_bytes(), "setup.pdf")


# --- Bad uploads ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "reason"),
    [
        (b"", "policy.pdf", "the file is empty"),
        (samples.elf_bytes(), "policy.pdf", "the file looks like a Linux executable, not a PDF"),
        (samples.pe_bytes(), "policy.pdf", "the file looks like a Windows executable, not a PDF"),
        (samples.pe_bytes(), "policy", "the file looks like a Windows executable, not a document"),
        (
            b"\x89PNG\r\n\x1a\n" + bytes(64),
            "policy.docx",
            "the file looks like a PNG image, not a Word document",
        ),
        (b"\x1f\x8b\x08" + bytes(64), "policy.txt", "the file looks like a gzip archive, not a text file"),
        (
            samples.non_docx_zip_bytes(),
            "policy.docx",
            "the file looks like a ZIP archive, not a Word document",
        ),
        (samples.truncated_pdf_bytes(), "policy.pdf", "the PDF is damaged or incomplete"),
        (
            b"%PDF-1.7\n" + samples.random_bytes(2000) + b"\n%%EOF\n",
            "policy.pdf",
            "the PDF is damaged and could not be read",
        ),
        (samples.encrypted_pdf_bytes(user_password=""), "policy.pdf", "the PDF is password-protected"),
        (samples.encrypted_pdf_bytes(user_password="1234"), "policy.pdf", "the PDF is password-protected"),
        (samples.scanned_pdf_bytes(), "scan.pdf", "no text could be extracted; scanned PDFs need OCR"),
        (samples.malformed_docx_bytes(), "policy.docx", "the Word file is damaged: its XML is malformed"),
        (samples.random_bytes(), "policy.txt", "the text encoding could not be recognised"),
        (samples.shift_jis_text_bytes(), "policy.txt", "the text encoding could not be recognised"),
        (b"Returns\x00\x01\x02 within 30 days", "policy.txt", "the text encoding could not be recognised"),
        (b" \n\t\r\n", "policy.txt", "the document contains no text"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_bad_uploads_are_rejected_with_a_reason(data: bytes, filename: str, reason: str) -> None:
    assert rejection(data, filename).startswith(reason)


def test_legacy_office_files_get_advice() -> None:
    reason = rejection(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "policy.docx")
    assert "save it as an unprotected .docx or PDF" in reason


def test_size_limit_is_named_in_megabytes() -> None:
    assert rejection(b"x" * (5 * 1024 * 1024 + 1), "big.txt", max_bytes=5 * 1024 * 1024) == (
        "the file is 5.0 MB; the limit is 5 MB"
    )
    assert rejection(b"x" * (21 * 1024 * 1024), "big.txt").endswith("the limit is 20 MB")


def test_zip_bomb_is_rejected_before_inflating() -> None:
    bomb = samples.zip_bomb_docx_bytes()
    assert len(bomb) < 5 * 1024 * 1024
    assert "zip bomb" in rejection(bomb, "policy.docx")


def test_docx_unpacking_past_the_limit_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # Incompressible parts: no suspicious ratio, just more than the limit (lowered to keep
    # the test light) to unpack.
    monkeypatch.setattr(parsing.word, "DOCX_MAX_UNPACKED_BYTES", 1024 * 1024)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
        archive.writestr("word/media/image1.png", samples.random_bytes(2 * 1024 * 1024))
    assert (
        rejection(out.getvalue(), "policy.docx")
        == "the Word file would unpack to 2 MB, more than the 1 MB limit"
    )


def test_docx_with_too_many_parts_is_rejected() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
        for index in range(1001):
            archive.writestr(f"customXml/item{index}.xml", b"<a/>")
    assert rejection(out.getvalue(), "policy.docx") == "the Word file has 1002 parts; the limit is 1000"


def test_zip_that_is_an_excel_workbook_says_so() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", b"<workbook/>")
    assert (
        rejection(out.getvalue(), "prices.docx")
        == "the file looks like an Excel workbook, not a Word document"
    )


# --- PDF ------------------------------------------------------------------------------------


def test_pdf_headings_paragraphs_and_chinese() -> None:
    parsed = parse(samples.pdf_bytes(samples.policy_pdf_lines()), "policy.pdf")
    assert parsed.format == "pdf"
    assert parsed.title == "1. Returns"
    assert [(block.kind, block.text[:24]) for block in parsed.blocks] == [
        ("heading", "1. Returns"),
        ("paragraph", "Items can be returned wi"),  # two wrapped lines joined into one paragraph
        ("paragraph", "Damaged items are replac"),
        ("heading", "2. Shipping"),
        ("paragraph", "Orders ship within two b"),
        ("heading", "第三章 退货"),
        ("paragraph", "自签收之日起七天内，未使用且包装完好的商品可申请"),
    ]
    assert parsed.blocks[1].text.endswith("original packaging. Refunds take 5 to 7 business days.")
    assert all(block.text != "1" for block in parsed.blocks)  # the page number is gone


def test_pdf_running_headers_are_dropped_and_paragraphs_continue_across_pages() -> None:
    page = [
        "ACME Store policy",
        "1. Returns",
        "Items can be returned within 30 days of delivery when they are",
        "unused.",
    ]
    parsed = parse(samples.pdf_bytes(page * 3, lines_per_page=4), "policy.pdf")
    assert "ACME Store policy" not in [block.text for block in parsed.blocks]
    assert texts(parsed.blocks, "heading") == ["1. Returns"] * 3


def test_pdf_numbered_list_is_not_mistaken_for_headings() -> None:
    lines = ["How to return", "1. Pack the item", "2. Print the label", "3. Drop it at a post office"]
    parsed = parse(samples.pdf_bytes(lines), "steps.pdf")
    assert texts(parsed.blocks, "list_item") == [
        "1. Pack the item",
        "2. Print the label",
        "3. Drop it at a post office",
    ]


# --- DOCX -----------------------------------------------------------------------------------


def test_docx_structure() -> None:
    parsed = parse(samples.docx_bytes(), "policy.docx")
    assert parsed.format == "docx"
    assert parsed.title == "Shop policy"
    headings = [(block.text, block.level) for block in parsed.blocks if block.kind == "heading"]
    assert headings == [
        ("Shop policy", 1),  # Title
        ("Returns and refunds", 1),
        ("Damaged items", 2),  # a custom style based on Heading 2
        ("退货政策", 2),  # a style named "标题 2", as WPS writes them
        ("Shipping fees", 1),
    ]
    items = [(block.text, block.level) for block in parsed.blocks if block.kind == "list_item"]
    assert items == [
        ("Keep the receipt", 0),
        ("Photos help for damaged items", 1),
        ("Print the return label", 1),
    ]
    assert texts(parsed.blocks, "table_row") == [
        "Region | Fee | Days",
        "Mainland | Free | 2",
        "Remote | Quoted at checkout",  # the merged cell appears once
    ]
    assert samples.RETURNS_ZH in texts(parsed.blocks, "paragraph")


# --- HTML -----------------------------------------------------------------------------------


def test_gb18030_html_decodes_chinese_and_drops_page_chrome() -> None:
    parsed = parse(samples.gb18030_html_bytes(), "service.html")
    assert (parsed.format, parsed.encoding, parsed.title) == ("html", "gb18030", "售后服务政策")
    all_text = "\n".join(block.text for block in parsed.blocks)
    for chrome in ("首页", "购物车", "不应出现", "color: red", "版权所有"):
        assert chrome not in all_text
    assert texts(parsed.blocks, "heading") == ["售后服务政策", "退货", "运费"]
    # The source wrapped the paragraph mid-sentence; no space may appear between hanzi.
    assert texts(parsed.blocks, "paragraph")[0] == samples.RETURNS_ZH
    assert [(block.text, block.level) for block in parsed.blocks if block.kind == "list_item"] == [
        ("保留购物凭证", 0),
        ("电子发票亦可", 1),
        ("商品包装完好", 0),
    ]
    assert texts(parsed.blocks, "table_row") == ["地区 | 运费", "江浙沪 | 免运费"]
    assert "客服电话：400-123-4567\n工作时间：九点至二十一点" in texts(parsed.blocks, "paragraph")


def test_html_without_a_charset_is_detected() -> None:
    page = f"<html><body><h1>退货</h1><p>{samples.RETURNS_ZH}</p></body></html>".encode("gb18030")
    parsed = parse(page, "page.htm")
    assert parsed.encoding == "gb18030"
    assert texts(parsed.blocks, "paragraph") == [samples.RETURNS_ZH]


def test_html_declared_gb2312_but_saved_as_utf8_is_still_read() -> None:
    page = f'<html><head><meta charset="gb2312"></head><body><p>{samples.RETURNS_ZH}</p></body></html>'
    parsed = parse(page.encode(), "page.html")
    assert (parsed.encoding, texts(parsed.blocks, "paragraph")) == ("utf-8", [samples.RETURNS_ZH])


def test_html_bom_beats_a_wrong_meta_charset() -> None:
    page = (
        b"\xef\xbb\xbf"
        + '<html><head><meta charset="gbk"></head><body><p>退货政策</p></body></html>'.encode()
    )
    assert texts(parse(page, "page.html").blocks, "paragraph") == ["退货政策"]


# --- Markdown -------------------------------------------------------------------------------


def test_markdown_structure() -> None:
    parsed = parse(samples.markdown_bytes(), "policy.md")
    assert (parsed.format, parsed.title) == ("markdown", "Returns policy")
    assert [
        (block.kind, block.text, block.level) for block in parsed.blocks if block.kind != "paragraph"
    ] == [
        ("heading", "Returns policy", 1),
        ("heading", "Conditions", 2),
        ("list_item", "1. Unused items", 0),
        ("list_item", "tags still attached", 1),
        ("list_item", "2. Original packaging", 0),
        ("table_row", "Item | Window", 0),
        ("table_row", "Clothing | 30 days", 0),
        ("table_row", "Electronics | 15 days", 0),
        ("heading", "退货", 2),
    ]
    # A soft line break between hanzi joins without a space.
    assert texts(parsed.blocks, "paragraph")[-1] == samples.RETURNS_ZH


def test_markdown_inline_markup_is_dropped_and_html_blocks_kept_as_text() -> None:
    source = "# Fees\n\nSee **the** [rate card](https://example.com) for `EXPRESS`.\n\n<div><p>Remote areas cost more.</p></div>\n"
    parsed = parse(source.encode(), "fees.md")
    assert texts(parsed.blocks, "paragraph") == ["See the rate card for EXPRESS.", "Remote areas cost more."]


# --- Plain text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (samples.policy_text().encode(), "utf-8"),
        (samples.policy_text().encode("utf-8-sig"), "utf-8-sig"),
        (samples.utf16_text_bytes(), "utf-16"),
        (samples.policy_text().encode("gb18030"), "gb18030"),
    ],
)
def test_text_encodings(data: bytes, encoding: str) -> None:
    parsed = parse(data, "policy.txt")
    assert (parsed.format, parsed.encoding, parsed.title) == ("text", encoding, "Returns")
    assert texts(parsed.blocks, "heading") == ["Returns", "1. Shipping", "第三章 退货"]
    assert texts(parsed.blocks, "paragraph") == [
        samples.RETURNS_EN,
        "Orders ship within two business days.",
        samples.RETURNS_ZH,
    ]


def test_gb18030_chinese_text() -> None:
    parsed = parse(samples.gb18030_text_bytes(), "配送.txt")
    assert parsed.encoding == "gb18030"
    assert texts(parsed.blocks, "heading") == ["第一章 配送", "第二章 退货"]
    assert texts(parsed.blocks, "paragraph") == [samples.SHIPPING_ZH, samples.RETURNS_ZH]


def test_utf8_with_a_stray_bad_byte_is_read_rather_than_refused() -> None:
    data = ((samples.RETURNS_EN + samples.RETURNS_ZH + "\n\n") * 5).encode()
    damaged = data[:100] + b"\xff" + data[101:]
    parsed = parse(damaged, "policy.txt")
    assert parsed.encoding == "utf-8"
    assert sum(block.text.count("\ufffd") for block in parsed.blocks) == 1


def test_windows_1252_english_text_is_read() -> None:
    text = "Returns\n\nOur “no quibble” policy: unused items – shoes, bags, café mugs – come back within 30 days.\n"
    parsed = parse(text.encode("cp1252"), "policy.txt")
    assert parsed.encoding == "cp1252"
    assert "“no quibble”" in parsed.blocks[1].text


def test_text_lists_wrapping_and_short_lines() -> None:
    text = (
        "HOW TO RETURN\n\n"
        "1. Pack the item\n2. Print the label\n   - free for members\n\n"
        "Refunds are issued to the original payment method once the warehouse has checked the\n"
        "returned item, usually within five business days.\n\n"
        "Contact us\n\nEmail: help@example.com\nPhone: 400-123-4567\n"
    )
    parsed = parse(text.encode(), "howto.txt")
    assert [(block.kind, block.text, block.level) for block in parsed.blocks] == [
        ("heading", "HOW TO RETURN", 1),
        ("list_item", "1. Pack the item", 0),
        ("list_item", "2. Print the label", 0),
        ("list_item", "free for members", 1),
        (
            "paragraph",
            "Refunds are issued to the original payment method once the warehouse has checked the "
            "returned item, usually within five business days.",
            0,
        ),
        ("heading", "Contact us", 1),
        ("paragraph", "Email: help@example.com\nPhone: 400-123-4567", 0),  # short lines keep their breaks
    ]


def test_chinese_heading_styles_in_text() -> None:
    text = f"一、退货政策\n{samples.RETURNS_ZH}\n\n（一）质量问题\n运费由本店承担。\n\n第五条 本办法自发布之日起施行。\n"
    parsed = parse(text.encode(), "policy.txt")
    assert [(block.text, block.level) for block in parsed.blocks if block.kind == "heading"] == [
        ("一、退货政策", 1),
        ("（一）质量问题", 2),
    ]
    assert "第五条 本办法自发布之日起施行。" in texts(parsed.blocks, "paragraph")  # a sentence, not a heading


def test_whitespace_is_normalised_without_touching_fullwidth_punctuation() -> None:
    text = "退货\n\n\u3000\u3000商品（未使用）可退，运费：十元。\u200b  Items   are\u00a0accepted.\n"
    parsed = parse(text.encode(), "policy.txt")
    assert parsed.blocks[-1].text == "商品（未使用）可退，运费：十元。 Items are accepted."


def test_title_falls_back_to_the_file_name() -> None:
    parsed = parse(b"Refunds take five business days.", "uploads/退款说明.txt")
    assert parsed.title == "退款说明"
