"""Ingestion through the real Celery worker into the real PostgreSQL + pgvector, and search."""

from __future__ import annotations

import threading

import pytest

from apps.knowledge.models import Chunk, Document, IngestionJob
from apps.knowledge.selectors import kb_search
from apps.knowledge.services import document_delete
from tests.knowledge.helpers import FORMAT_DOCUMENTS, FORMAT_QUESTIONS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_every_format_ingests_and_is_found_in_and_across_languages(celery_worker) -> None:
    kb = make_kb()
    documents = [upload(kb, name, data).document for name, data in FORMAT_DOCUMENTS.items()]
    ready = wait_final(*documents)
    assert {d.filename: d.status for d in ready} == {name: Document.Status.READY for name in FORMAT_DOCUMENTS}
    formats = {d.filename: d.format for d in ready}
    assert formats == {
        "gift-wrapping.pdf": "pdf",
        "lamp-warranty.docx": "docx",
        "发票说明.html": "html",
        "showroom.md": "markdown",
        "积分规则.txt": "text",
    }
    for document in ready:
        assert document.chunk_count == Chunk.objects.filter(document=document, is_live=True).count() > 0
        assert document.progress == 1.0
    misses = []
    for question, expected in FORMAT_QUESTIONS:
        hits = kb_search(knowledge_base=kb, query=question, k=3)
        if not hits or hits[0].filename != expected:
            misses.append((question, expected, [h.filename for h in hits]))
    assert misses == []
    hit = kb_search(knowledge_base=kb, query="What is the warranty on bulbs?", k=1)[0]
    assert hit.heading_path[-1] == "Bulbs"


def test_identical_reupload_is_a_noop_and_changed_content_replaces_atomically(celery_worker) -> None:
    kb = make_kb()
    first = upload(kb, "showroom.md", FORMAT_DOCUMENTS["showroom.md"])
    (document,) = wait_final(first.document)
    v1_chunk_ids = set(Chunk.objects.filter(document=document).values_list("pk", flat=True))

    again = upload(kb, "showroom.md", FORMAT_DOCUMENTS["showroom.md"])
    renamed = upload(kb, "copy-of-showroom.md", FORMAT_DOCUMENTS["showroom.md"])
    assert not again.queued and not renamed.queued
    assert again.document.pk == renamed.document.pk == document.pk
    assert Document.objects.filter(knowledge_base=kb).count() == 1
    assert IngestionJob.objects.filter(document=document).count() == 1
    assert set(Chunk.objects.filter(document=document).values_list("pk", flat=True)) == v1_chunk_ids

    # A long new version, so readers poll while it is being embedded.
    sections = "".join(
        f"## Hall {n}\n\nHall {n} of the showroom displays sofas, lamps and rugs from season {n}. "
        f"It opens at 9 am and closes at 9 pm, and guided tours start every hour.\n\n"
        for n in range(60)
    )
    changed = upload(kb, "showroom.md", f"# Showroom\n\n{sections}".encode())
    assert changed.queued and changed.document.version == 2

    seen_counts: set[int] = set()
    mixed_versions: list[set[int]] = []
    stop = threading.Event()

    def read_while_ingesting() -> None:
        from django.db import connection

        try:
            while not stop.is_set():
                live = list(
                    Chunk.objects.filter(document_id=document.pk, is_live=True).values_list(
                        "version", flat=True
                    )
                )
                seen_counts.add(len(live))
                if len(set(live)) > 1:
                    mixed_versions.append(set(live))
        finally:
            connection.close()

    reader = threading.Thread(target=read_while_ingesting)
    reader.start()
    try:
        (replaced,) = wait_final(changed.document)
    finally:
        stop.set()
        reader.join()
    assert replaced.status == Document.Status.READY and replaced.live_version == 2
    assert mixed_versions == []
    # Readers only ever saw the whole old version or the whole new one.
    assert seen_counts <= {len(v1_chunk_ids), replaced.chunk_count}
    assert not Chunk.objects.filter(pk__in=v1_chunk_ids).exists()
    assert set(Chunk.objects.filter(document=replaced).values_list("version", flat=True)) == {2}
    assert kb_search(knowledge_base=kb, query="guided tours every hour", k=1)[0].filename == "showroom.md"


def test_deleting_a_document_leaves_no_chunks(celery_worker) -> None:
    kb = make_kb()
    (document,) = wait_final(upload(kb, "showroom.md", FORMAT_DOCUMENTS["showroom.md"]).document)
    assert Chunk.objects.filter(document=document).exists()
    file_name = document.file.name
    storage = document.file.storage
    document_delete(document=document)
    assert Chunk.objects.filter(knowledge_base=kb).count() == 0
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not storage.exists(file_name)
    assert kb_search(knowledge_base=kb, query="showroom opening hours", k=3) == []
