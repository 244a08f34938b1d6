"""The widget API over real HTTP (uvicorn, ASGI): streaming answers, limits, and privacy."""

from __future__ import annotations

import json

import httpx
import pytest

from apps.conversations.models import Conversation
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _start(base: str, kb: str = "test-shop") -> tuple[int, str]:
    response = httpx.post(f"{base}/api/widget/conversations/", json={"kb": kb, "language": "en"})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["token"]


def _events(response: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for frame in response.text.split("\n\n"):
        lines = [line for line in frame.splitlines() if not line.startswith(":")]
        if lines:
            kind = lines[0].removeprefix("event: ")
            events.append((kind, json.loads(lines[1].removeprefix("data: "))))
    return events


def test_a_question_streams_its_answer_as_server_sent_events(web_server, celery_worker) -> None:
    kb = make_kb()
    wait_final(upload(kb, "showroom.md", FORMAT_DOCUMENTS["showroom.md"]).document)
    conversation_id, token = _start(web_server)
    with httpx.stream(
        "POST",
        f"{web_server}/api/widget/conversations/{conversation_id}/send/",
        json={"text": "What time does the showroom close?"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        response.read()
    events = _events(response)
    kinds = [kind for kind, _ in events]
    assert kinds.count("delta") > 1 and kinds[-1] == "message"
    history = httpx.get(
        f"{web_server}/api/widget/conversations/{conversation_id}/messages/",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert [m["role"] for m in history["messages"]] == ["customer", "assistant"]
    assert history["messages"][1]["text"] == events[-1][1]["text"]


def test_bad_input_and_other_visitors_get_clear_errors(web_server) -> None:
    make_kb()
    assert httpx.post(f"{web_server}/api/widget/conversations/", json={"kb": "nope"}).status_code == 404
    assert httpx.post(f"{web_server}/api/widget/conversations/", content=b"not json").status_code == 400
    mine, my_token = _start(web_server)
    theirs, their_token = _start(web_server)
    send = f"{web_server}/api/widget/conversations/{{}}/send/"
    auth = {"Authorization": f"Bearer {my_token}"}
    # Another visitor's conversation, an unknown one, no token: all 404, nothing revealed.
    assert (
        httpx.get(f"{web_server}/api/widget/conversations/{theirs}/messages/", headers=auth).status_code
        == 404
    )
    assert httpx.post(send.format(theirs), json={"text": "hi"}, headers=auth).status_code == 404
    assert httpx.post(send.format(999999), json={"text": "hi"}, headers=auth).status_code == 404
    assert httpx.post(send.format(mine), json={"text": "hi"}).status_code == 404
    too_long = httpx.post(send.format(mine), json={"text": "x" * 2001}, headers=auth)
    assert too_long.status_code == 413 and "2000 characters" in too_long.json()["detail"]
    assert httpx.post(send.format(mine), json={"text": "  "}, headers=auth).status_code == 400
    assert httpx.post(send.format(mine), json={"nope": 1}, headers=auth).status_code == 400
    Conversation.objects.filter(pk=mine).update(status=Conversation.Status.CLOSED)
    assert httpx.post(send.format(mine), json={"text": "hi"}, headers=auth).status_code == 404
    assert their_token != my_token


def test_a_visitor_sending_too_fast_gets_429(web_server) -> None:
    make_kb()
    conversation_id, token = _start(web_server)
    # A person owns the conversation, so the bot stays silent and each send is cheap.
    Conversation.objects.filter(pk=conversation_id).update(status=Conversation.Status.AGENT)
    url = f"{web_server}/api/widget/conversations/{conversation_id}/send/"
    codes = [
        httpx.post(
            url, json={"text": f"message {n}"}, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        for n in range(26)
    ]
    # 12 a minute are allowed; 26 in a few seconds overrun one fixed window even if they straddle two.
    assert codes[:12] == [200] * 12
    assert 429 in codes[12:]
