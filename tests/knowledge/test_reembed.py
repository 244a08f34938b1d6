"""Re-embedding a knowledge base with one command, switching over at once."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.knowledge.models import Chunk, Document, KnowledgeBase, LanguageCentroid
from apps.knowledge.selectors import kb_search
from apps.knowledge.services import kb_vector_index_name
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
