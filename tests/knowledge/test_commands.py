"""kb_ingest, kb_search and kb_eval as an operator runs them."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.knowledge.models import Document, KnowledgeBase
from tests.knowledge.helpers import FORMAT_DOCUMENTS, FORMAT_QUESTIONS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_ingest_search_and_evaluate_a_folder(celery_worker, tmp_path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    for name, data in FORMAT_DOCUMENTS.items():
        (folder / name).write_bytes(data)
    (folder / "ignored.exe").write_bytes(b"MZ not a policy")

    output = _run("kb_ingest", str(folder), "--kb", "cli-shop")
    assert "created knowledge base 'cli-shop'" in output
    for name in FORMAT_DOCUMENTS:
        assert f"{name}: ready," in output
    assert "ignored.exe" not in output
    assert Document.objects.filter(knowledge_base__slug="cli-shop", status="ready").count() == len(
        FORMAT_DOCUMENTS
    )
    # Again: identical content, nothing to do.
    assert "unchanged" in _run("kb_ingest", str(folder), "--kb", "cli-shop", "--no-wait")

    search = _run("kb_search", "--kb", "cli-shop", "What time does the showroom close?", "--k", "2")
    assert search.splitlines()[0].startswith("1. showroom.md")

    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps({"q": q, "doc": doc, "lang": "ignored"}, ensure_ascii=False)
            for q, doc in FORMAT_QUESTIONS
        )
    )
    report = json.loads(_run("kb_eval", "--kb", "cli-shop", "--questions", str(questions), "--json"))
    assert report["overall"]["questions"] == len(FORMAT_QUESTIONS)
    assert set(report["by_language"]) == {"en", "zh"}
    assert report["overall"]["hit@k"] == 1.0
    assert 0 < report["overall"]["mrr"] <= 1
    table = _run("kb_eval", "--kb", "cli-shop", "--questions", str(questions))
    assert "hit@1" in table and "overall" in table


def test_commands_explain_bad_arguments(tmp_path) -> None:
    with pytest.raises(CommandError, match="no knowledge base 'nope'"):
        _run("kb_search", "--kb", "nope", "anything")
    with pytest.raises(CommandError, match="no such file or folder"):
        _run("kb_ingest", str(tmp_path / "missing"), "--kb", "x")
    KnowledgeBase.objects.create(name="Empty", slug="empty")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no q key"}\n')
    with pytest.raises(CommandError, match="expected an object with 'q' and 'doc'"):
        _run("kb_eval", "--kb", "empty", "--questions", str(bad))
    with pytest.raises(CommandError, match="no such file"):
        _run("kb_eval", "--kb", "empty", "--questions", str(tmp_path / "none.jsonl"))
