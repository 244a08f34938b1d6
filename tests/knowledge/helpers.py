"""Shared steps of the knowledge-base tests: a knowledge base, uploads, waiting for the worker."""

from __future__ import annotations

import io
import time

import docx

from apps.knowledge.models import Document, KnowledgeBase
from apps.knowledge.services import UploadResult, document_upload, knowledge_base_create
from tests.knowledge.samples import pdf_bytes

FINAL = {Document.Status.READY, Document.Status.FAILED}


def make_kb(slug: str = "test-shop") -> KnowledgeBase:
    return knowledge_base_create(name=slug.replace("-", " ").title(), slug=slug)


def upload(kb: KnowledgeBase, name: str, data: bytes) -> UploadResult:
    return document_upload(knowledge_base=kb, filename=name, data=data)


def wait_final(*documents: Document, timeout: float = 300) -> list[Document]:
    """Wait for the real Celery worker to finish every document; returns them refreshed."""
    deadline = time.monotonic() + timeout
    ids = [document.pk for document in documents]
    while True:
        current = list(Document.objects.filter(pk__in=ids).order_by("pk"))
        if all(document.status in FINAL for document in current):
            return current
        assert time.monotonic() < deadline, [(d.filename, d.status, d.progress) for d in current]
        time.sleep(0.3)


def docx_with(title: str, sections: dict[str, list[str]]) -> bytes:
    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraphs in sections.items():
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html_gb18030(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    page = (
        '<!DOCTYPE html><html><head><meta charset="gb18030"><title>'
        f"{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
    )
    return page.encode("gb18030")


# One topic per document and format, so a question has exactly one right document.
FORMAT_DOCUMENTS: dict[str, bytes] = {
    "gift-wrapping.pdf": pdf_bytes(
        [
            "1. Gift wrapping",
            "Gift wrapping costs 4 dollars per item and includes a handwritten greeting card.",
            "Wrapped parcels are shipped without a price tag or invoice inside the box.",
        ]
    ),
    "lamp-warranty.docx": docx_with(
        "Lamp warranty",
        {
            "Warranty period": ["Every table lamp and floor lamp is guaranteed for two years from delivery."],
            "Bulbs": ["Light bulbs are covered for six months only."],
        },
    ),
    "发票说明.html": html_gb18030(
        "发票说明",
        [
            "电子发票在确认收货后二十四小时内开具，并发送到您的注册邮箱。",
            "如需增值税专用发票，请联系客服提供公司税号。",
        ],
    ),
    "showroom.md": (
        b"# Showroom\n\n## Opening hours\n\nOur showroom in Hangzhou is open from 10 am to 8 pm every day,"
        b" including public holidays.\n\n## Parking\n\nVisitors park for free in the basement garage.\n"
    ),
    "积分规则.txt": (
        "积分规则\n\n每消费一元获得一个积分。每一百积分可以抵扣一元现金，积分不能直接兑换现金。\n\n"
        "积分有效期\n\n积分自获得之日起十二个月内有效。\n"
    ).encode("gb18030"),
}

FORMAT_QUESTIONS: list[tuple[str, str]] = [
    ("Can you wrap my present for me?", "gift-wrapping.pdf"),
    ("How long is a floor lamp guaranteed?", "lamp-warranty.docx"),
    ("怎么开具电子发票？", "发票说明.html"),
    ("What time does the showroom close?", "showroom.md"),
    ("积分可以换成现金吗？", "积分规则.txt"),
    # Across languages.
    ("礼品包装要多少钱？", "gift-wrapping.pdf"),
    ("When do I receive my electronic invoice?", "发票说明.html"),
]
