"""The widget on the demo shop page, in headless Chromium, against the real stack."""

from __future__ import annotations

import pytest

from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINAL_ANSWER = ".msg.assistant:has(.feedback)"


def _ask(page, text: str, answers_before: int) -> None:
    page.fill("textarea", text)
    page.press("textarea", "Enter")
    page.wait_for_function(
        "([n]) => document.querySelector('#shopdesk-widget').shadowRoot"
        ".querySelectorAll('.msg.assistant .feedback').length > n",
        arg=[answers_before],
        timeout=240_000,
    )


def test_customer_chats_in_both_languages_opens_a_source_reloads_and_asks_for_a_person(
    web_server, browser, celery_worker, tmp_path
) -> None:
    kb = make_kb()
    wait_final(*(upload(kb, name, data).document for name, data in FORMAT_DOCUMENTS.items()))
    page = browser.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(f"{web_server}/demo/?kb={kb.slug}")
    page.click(".launcher")
    assert page.inner_text(".title") == "Customer service"

    # Streaming: the answer grows before its final form (feedback buttons) arrives.
    page.fill("textarea", "What time does the showroom close?")
    page.press("textarea", "Enter")
    page.wait_for_selector(".msg.assistant")
    page.wait_for_selector(FINAL_ANSWER, timeout=240_000)
    first = page.locator(FINAL_ANSWER).first
    assert first.inner_text().strip()

    _ask(page, "积分可以换成现金吗？", answers_before=1)
    chinese = page.locator(FINAL_ANSWER).nth(1).inner_text()
    assert any("\u4e00" <= char <= "\u9fff" for char in chinese)

    # Sources: open the passage behind the first answer.
    first.locator(".sources .cite").first.click()
    assert first.locator(".quote").first.inner_text().strip()

    # The page's hostile CSS (hotpink buttons) does not reach into the widget.
    launcher_background = page.eval_on_selector(".launcher", "el => getComputedStyle(el).backgroundColor")
    assert launcher_background == "rgb(31, 111, 235)"

    page.screenshot(path=str(tmp_path / "widget.png"))
    page.reload()
    page.click(".launcher")
    page.wait_for_selector(".msg.customer")
    assert page.locator(".msg.customer").count() == 2
    assert page.locator(".msg.assistant").count() == 2

    page.click(".person")
    page.wait_for_selector("text=member of our team")
    assert script_errors == []
    page.close()


def test_chinese_page_gets_the_chinese_widget(web_server, browser) -> None:
    make_kb()
    page = browser.new_page()
    page.goto(f"{web_server}/demo/?kb=test-shop&lang=zh")
    page.click(".launcher")
    assert page.inner_text(".title") == "在线客服"
    assert page.inner_text(".person") == "转人工客服"
    page.close()
