"""The model worker is down: the widget, in a real browser against the real site, says so
kindly and offers a person within the timeouts; no request fails with a 5xx."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from apps.conversations.models import Message
from tests.conversations.helpers import widget_conversation_id
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FRIENDLY = "Sorry, I can't answer right now. Would you like me to connect you with a member of our team?"


def test_the_widget_offers_a_person_when_the_model_worker_is_down(
    web_server_model_down, browser, celery_worker
) -> None:
    kb = make_kb()
    # A question the documents answer: retrieval passes, so the model worker is really called.
    wait_final(upload(kb, "showroom.md", FORMAT_DOCUMENTS["showroom.md"]).document)
    page = browser.new_page()
    statuses: list[tuple[int, str]] = []
    page.on("response", lambda response: statuses.append((response.status, response.url)))
    page.goto(f"{web_server_model_down}/demo/?kb=test-shop")
    page.click(".launcher")
    # Connect timeout and the retries' backoff, with room for a busy machine; far below LLM_TOTAL_TIMEOUT.
    limit_s = 3 * settings.LLM_CONNECT_TIMEOUT + 10
    for answers, question in enumerate(["What time does the showroom close?", "And is parking free there?"]):
        started = time.monotonic()
        page.fill("textarea", question)
        page.press("textarea", "Enter")
        page.wait_for_function(
            "([n]) => document.querySelector('#shopdesk-widget').shadowRoot"
            ".querySelectorAll('.msg.assistant .feedback').length > n",
            arg=[answers],
            timeout=limit_s * 1000,
        )
        assert time.monotonic() - started < limit_s
        assert page.locator(".msg.assistant").nth(answers).inner_text().startswith(FRIENDLY)
    outcomes = Message.objects.filter(conversation_id=widget_conversation_id(page), role="assistant")
    assert list(outcomes.values_list("outcome", flat=True)) == ["model_unavailable", "model_unavailable"]
    # The offer of a person is real: the button hands over.
    page.click(".person")
    page.wait_for_selector("text=member of our team to join")
    assert [s for s in statuses if s[0] >= 500] == []
    assert any("/send/" in url and status == 200 for status, url in statuses)
    page.close()
