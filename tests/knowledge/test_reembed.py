"""Re-embedding a knowledge base with one command, switching over at once."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, transaction

from apps.knowledge.models import Chunk, Document, IngestionJob, KnowledgeBase, LanguageCentroid
from apps.knowledge.selectors import kb_search
from apps.knowledge.services import (
    _reembed_switch,
    document_ingest,
    document_upload,
    kb_vector_index_name,
    knowledge_base_reembed,
)
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_reembed_replaces_every_chunk_and_rebuilds_the_index(celery_worker) -> None:
    kb = make_kb()
    names = ["showroom.md", "积分规则.txt"]
    documents = wait_final(*(upload(kb, name, FORMAT_DOCUMENTS[name]).document for name in names))
    old_chunks = set(Chunk.objects.filter(knowledge_base=kb).values_list("pk", flat=True))

    out = io.StringIO()
    call_command("kb_reembed", "--kb", kb.slug, "--embedder", "multilingual-e5-small", stdout=out)
    assert "re-embedding 2 documents" in out.getvalue()
    # Until the switch, search answers from the old chunks.
    assert (
        kb_search(knowledge_base=kb, query="What time does the showroom close?", k=1)[0].filename
        == "showroom.md"
    )

    deadline = time.monotonic() + 300
    while KnowledgeBase.objects.get(pk=kb.pk).pending_embedder_name:
        assert time.monotonic() < deadline, "the knowledge base never switched to its new embeddings"
        time.sleep(0.3)
    refreshed = list(Document.objects.filter(pk__in=[d.pk for d in documents]))
    assert {(d.status, d.version, d.live_version) for d in refreshed} == {(Document.Status.READY, 2, 2)}
    new_chunks = set(Chunk.objects.filter(knowledge_base=kb).values_list("pk", flat=True))
    assert new_chunks and not (new_chunks & old_chunks)
    assert set(Chunk.objects.filter(knowledge_base=kb).values_list("version", "is_live")) == {(2, True)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [kb_vector_index_name(kb)])
        assert cursor.fetchone() is not None
    assert set(LanguageCentroid.objects.filter(knowledge_base=kb).values_list("language", flat=True)) == {
        "en",
        "zh",
    }
    assert kb_search(knowledge_base=kb, query="积分可以换成现金吗？", k=1)[0].filename == "积分规则.txt"


def test_reembed_with_an_unknown_embedder_changes_nothing() -> None:
    kb = make_kb()
    with pytest.raises(CommandError, match="known embedders: multilingual-e5-small"):
        call_command("kb_reembed", "--kb", kb.slug, "--embedder", "no-such-model", stdout=io.StringIO())
    assert KnowledgeBase.objects.get(pk=kb.pk).pending_embedder_name == ""


def _holding(sql: str, params: list, ready: threading.Event, release: threading.Event) -> None:
    """In a connection of its own, take row locks with ``sql`` and hold them until ``release``."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            ready.set()
            release.wait(30)
    finally:
        connection.close()


@contextlib.contextmanager
def _locked(sql: str, params: list) -> Iterator[None]:
    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holding, args=(sql, params, ready, release))
    holder.start()
    assert ready.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)


@contextlib.contextmanager
def _lock_timeout(seconds: int) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{seconds}s'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


def test_the_switch_check_does_not_wait_for_a_chunk_being_inserted() -> None:
    """Inserting a chunk takes FOR KEY SHARE on its document and knowledge base rows (the foreign-key
    checks) until the insert's transaction ends. The re-embed bookkeeping must not wait for those: with
    plain FOR UPDATE locks it did, and two documents finishing at once deadlocked in CI, after which
    the knowledge base never switched."""
    kb = make_kb()
    first, second = (
        document_upload(knowledge_base=kb, filename=name, data=FORMAT_DOCUMENTS[name], enqueue=False).document
        for name in ("showroom.md", "积分规则.txt")
    )
    # Not queued: a Celery worker of another test embedding them could still hold row locks when the
    # test database is flushed (a deadlock with the flush's TRUNCATE in CI).
    knowledge_base_reembed(knowledge_base=kb, embedder_name="multilingual-e5-small", enqueue=False)
    key_share = (
        "SELECT 1 FROM knowledge_document WHERE id = %s FOR KEY SHARE; "
        "SELECT 1 FROM knowledge_knowledgebase WHERE id = %s FOR KEY SHARE"
    )
    with _locked(key_share, [second.pk, kb.pk]), _lock_timeout(3):
        _reembed_switch(knowledge_base_id=kb.pk)  # returns at once: the documents are not embedded yet
        knowledge_base_reembed(knowledge_base=kb, embedder_name="multilingual-e5-small", enqueue=False)
    # Both re-embeds went through.
    assert {d.version for d in Document.objects.filter(pk__in=[first.pk, second.pk])} == {3}


def test_a_passing_database_fault_gives_the_job_back_for_the_retry() -> None:
    """The task retries a passing fault (here a lock wait that timed out); the job must be claimable
    again then, not left running until the stale-job sweeper."""
    kb = make_kb()
    # Not queued: no Celery worker of another test may take the job from this one.
    data = FORMAT_DOCUMENTS["showroom.md"]
    document = document_upload(knowledge_base=kb, filename="showroom.md", data=data, enqueue=False).document
    job = IngestionJob.objects.get(document=document)
    with (
        _locked("SELECT 1 FROM knowledge_document WHERE id = %s FOR UPDATE", [document.pk]),
        _lock_timeout(1),
    ):
        with pytest.raises(OperationalError):
            document_ingest(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == IngestionJob.Status.QUEUED and job.attempts == 1
    document_ingest(job_id=job.pk)  # what the retry does
    job.refresh_from_db()
    document.refresh_from_db()
    assert job.status == IngestionJob.Status.SUCCEEDED and job.attempts == 2
    assert document.status == Document.Status.READY and document.chunk_count > 0
