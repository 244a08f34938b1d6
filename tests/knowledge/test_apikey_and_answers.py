"""kb_apikey and kb_eval --answers as an operator runs them."""

from __future__ import annotations

import io
import json

import httpx
import openai
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.knowledge.models import KnowledgeBaseApiKey
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_kb_apikey_prints_a_working_key_once_lists_and_revokes_it(web_server) -> None:
    make_kb()
    out, note = _run("kb_apikey", "--kb", "test-shop", "--name", "evals")
    key = out.strip()
    assert key.startswith("sdk_") and "\n" not in key
    assert "shown only now" in note and key not in note
    row = KnowledgeBaseApiKey.objects.get()
    assert row.prefix == key[:12] and row.name == "evals"

    client = openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["test-shop"]

    listing, _ = _run("kb_apikey", "--list", "--kb", "test-shop")
    assert row.prefix in listing and "active" in listing and key not in listing
    revoked, _ = _run("kb_apikey", "--revoke", row.prefix)
    assert f"revoked {row.prefix}" in revoked
    assert "revoked" in _run("kb_apikey", "--list")[0]
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert httpx.get(f"{web_server}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_kb_apikey_explains_bad_arguments() -> None:
    with pytest.raises(CommandError, match="no knowledge base 'nope'"):
        _run("kb_apikey", "--kb", "nope")
    with pytest.raises(CommandError, match="--kb SLUG is required"):
        _run("kb_apikey")
    with pytest.raises(CommandError, match="no API key with prefix"):
        _run("kb_apikey", "--revoke", "sdk_missing")


def test_kb_eval_answers_reports_hit_rates_per_language(
    celery_worker, model_worker, settings, tmp_path
) -> None:
    settings.LLM_BASE_URL = model_worker
    settings.CHAT_MAX_TOKENS = 48  # enough for the short facts asked; keeps the test quick on a CPU
    kb = make_kb()
    wait_final(*(upload(kb, name, data).document for name, data in FORMAT_DOCUMENTS.items()))
    questions = tmp_path / "questions.jsonl"
    lines = [
        {"q": "What time does the showroom close?", "doc": "showroom.md", "any": ["8", "eight"]},
        {"q": "积分有效期是多久？", "doc": "积分规则.txt", "any": ["十二", "12"]},
        {"q": "Who won the football world cup in 1954?", "doc": "showroom.md", "any": ["Germany"]},
        {"q": "No expected strings on this line", "doc": "showroom.md"},
    ]
    questions.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines))

    report = json.loads(
        _run("kb_eval", "--kb", "test-shop", "--questions", str(questions), "--answers", "--json")[0]
    )
    answers = report["answers"]
    assert answers["overall"]["questions"] == 3  # the line without 'any' is not scored
    assert set(answers["by_language"]) == {"en", "zh"}
    assert answers["by_language"]["zh"]["questions"] == 1
    assert 0 <= answers["overall"]["hit_rate"] <= 1
    # The off-topic question gets the honest "I don't know", never a made-up fact.
    assert answers["outcomes"].get("low_confidence", 0) >= 1
    assert any(miss["q"].startswith("Who won") for miss in answers["misses"])
    assert report["overall"]["questions"] == 4  # retrieval is still reported for every line

    table = _run("kb_eval", "--kb", "test-shop", "--questions", str(questions), "--answers")[0]
    assert "answers" in table.splitlines()[0]
    assert table.splitlines()[1].startswith("overall")


def test_kb_eval_answers_needs_expected_strings(tmp_path) -> None:
    make_kb()
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"q": "anything", "doc": "x.md"}))
    with pytest.raises(CommandError, match="'any' list"):
        _run("kb_eval", "--kb", "test-shop", "--questions", str(questions), "--answers")
