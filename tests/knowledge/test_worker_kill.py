"""SIGKILL the Celery worker in the middle of ingesting a large document: after a
restart and the sweeper, the document ends ready with exactly its chunks."""

from __future__ import annotations

import signal
import time

import pytest

from apps.knowledge.chunking import chunks_build
from apps.knowledge.models import Chunk, Document, IngestionJob
from apps.knowledge.parsing import document_parse
from apps.knowledge.selectors import kb_search
from apps.knowledge.services import ingestion_jobs_requeue_stale
from tests.conftest import celery_ping
from tests.knowledge.helpers import make_kb, upload, wait_final
from tests.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _large_policy() -> bytes:
    sections = "".join(
        f"## Rule {n}\n\nRule {n} of the care guide: product line {n} must be cleaned with a dry cloth, "
        f"kept out of direct sunlight and stored between 5 and {20 + n % 10} degrees. "
        f"Claims about line {n} need the order number and a photo.\n\n"
        for n in range(240)
    )
    return f"# Care guide\n\n{sections}".encode()


def test_killed_worker_mid_ingestion_loses_nothing_and_duplicates_nothing(celery_worker) -> None:
    kb = make_kb()
    data = _large_policy()
    document = upload(kb, "care-guide.md", data).document
    expected = chunks_build(
        blocks=document_parse(data=data, filename="care-guide.md").blocks,
        max_tokens=kb.chunk_max_tokens,
        overlap_tokens=kb.chunk_overlap_tokens,
    )
    assert len(expected) > 100

    def embedding_under_way() -> bool:
        current = Document.objects.get(pk=document.pk)
        return current.status == Document.Status.EMBEDDING and 0.15 < current.progress < 0.8

    wait_for("ingestion under way", embedding_under_way, timeout=300)
    celery_worker.stop(signal.SIGKILL)

    job = IngestionJob.objects.get(document=document)
    partial = Chunk.objects.filter(document=document).count()
    assert job.status == IngestionJob.Status.RUNNING
    assert 0 < partial < len(expected)
    # Half-indexed chunks are not searchable.
    assert not Chunk.objects.filter(document=document, is_live=True).exists()
    assert kb_search(knowledge_base=kb, query="How do I clean product line 3?", k=5) == []

    celery_worker.restart()
    wait_for("restarted worker", lambda: bool(celery_ping()), timeout=60, process=celery_worker)
    deadline = time.monotonic() + 120
    while job.pk not in ingestion_jobs_requeue_stale():
        assert time.monotonic() < deadline, "the sweeper never re-queued the dead worker's job"
        time.sleep(2)

    (ready,) = wait_final(document, timeout=600)
    assert ready.status == Document.Status.READY
    chunks = list(Chunk.objects.filter(document=document).order_by("ordinal"))
    assert [c.ordinal for c in chunks] == list(range(len(expected)))
    assert [c.text for c in chunks] == [draft.text for draft in expected]
    assert all(c.is_live and c.version == 1 for c in chunks)
    assert ready.chunk_count == len(expected)
    job.refresh_from_db()
    assert job.status == IngestionJob.Status.SUCCEEDED and job.attempts == 2
    assert (
        kb_search(knowledge_base=kb, query="How do I clean product line 3?", k=1)[0].filename
        == "care-guide.md"
    )
