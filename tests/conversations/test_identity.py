"""Verified customer identity (HMAC-signed customer ids) over real HTTP, the command that
manages the secret, and the admin that never shows it."""

from __future__ import annotations

import hmac
import io

import httpx
import pytest
from django.core.management import call_command

from apps.conversations.identity import customer_signature
from apps.conversations.models import Conversation
from apps.knowledge.services import identity_secret_rotate
from tests.knowledge.helpers import make_kb

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = "s3cret-for-tests"


def _create(base: str, **identity: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/widget/conversations/", json={"kb": "test-shop", "language": "en", **identity}
    )


@pytest.fixture
def shop_with_secret():
    kb = make_kb()
    kb.identity_secret = SECRET
    kb.save(update_fields=["identity_secret"])
    return kb


def test_a_good_signature_stores_the_verified_customer_id(web_server, shop_with_secret) -> None:
    signature = customer_signature(secret=SECRET, customer_id="C123")
    # What a shop's server computes, written out without our helper.
    assert signature == hmac.new(SECRET.encode(), b"C123", "sha256").hexdigest()
    response = _create(web_server, customer_id="C123", customer_signature=signature)
    assert response.status_code == 201, response.text
    assert response.json()["verified"] is True
    assert Conversation.objects.get(pk=response.json()["id"]).verified_customer_id == "C123"
    # Upper-case hex is the same signature.
    upper = _create(web_server, customer_id="C123", customer_signature=signature.upper())
    assert upper.status_code == 201 and upper.json()["verified"] is True


def test_a_wrong_signature_is_refused_and_starts_nothing(web_server, shop_with_secret) -> None:
    before = Conversation.objects.count()
    wrong = _create(web_server, customer_id="C123", customer_signature="0" * 64)
    assert wrong.status_code == 403
    assert "identity verification failed" in wrong.json()["detail"]
    # A genuine signature, but for another customer.
    other = _create(
        web_server,
        customer_id="C999",
        customer_signature=customer_signature(secret=SECRET, customer_id="C123"),
    )
    assert other.status_code == 403
    # Signed with another shop's secret.
    foreign = _create(
        web_server,
        customer_id="C123",
        customer_signature=customer_signature(secret="other", customer_id="C123"),
    )
    assert foreign.status_code == 403
    no_id = _create(web_server, customer_signature=customer_signature(secret=SECRET, customer_id=""))
    assert no_id.status_code == 403
    assert Conversation.objects.count() == before


def test_an_id_without_a_signature_is_anonymous(web_server, shop_with_secret) -> None:
    response = _create(web_server, customer_id="C123")
    assert response.status_code == 201 and response.json()["verified"] is False
    assert Conversation.objects.get(pk=response.json()["id"]).verified_customer_id == ""


def test_without_a_secret_verification_is_off_and_ids_are_ignored(web_server) -> None:
    make_kb()
    # Even a "signature" made with an empty key proves nothing when no secret is configured.
    response = _create(
        web_server, customer_id="C123", customer_signature=customer_signature(secret="", customer_id="C123")
    )
    assert response.status_code == 201 and response.json()["verified"] is False
    assert Conversation.objects.get(pk=response.json()["id"]).verified_customer_id == ""


def test_a_token_stays_with_its_customer(web_server, shop_with_secret) -> None:
    first = _create(
        web_server, customer_id="C1", customer_signature=customer_signature(secret=SECRET, customer_id="C1")
    )
    second = _create(
        web_server, customer_id="C2", customer_signature=customer_signature(secret=SECRET, customer_id="C2")
    )
    first_id, first_token = first.json()["id"], first.json()["token"]
    # Another customer's identity makes another conversation with another token; the first is untouched.
    assert second.json()["id"] != first_id and second.json()["token"] != first_token
    assert Conversation.objects.get(pk=first_id).verified_customer_id == "C1"
    # C1's token cannot read C2's conversation.
    theirs = httpx.get(
        f"{web_server}/api/widget/conversations/{second.json()['id']}/messages/",
        headers={"Authorization": f"Bearer {first_token}"},
    )
    assert theirs.status_code == 404


def test_signatures_are_compared_in_constant_time(shop_with_secret, monkeypatch) -> None:
    """In-process (the web server is another process): the comparison goes through
    ``hmac.compare_digest``."""
    from apps.conversations.identity import ClaimedIdentity, IdentityRejected, verified_customer_id

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a, b):  # type: ignore[no-untyped-def]
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    good = customer_signature(secret=SECRET, customer_id="C7")
    assert verified_customer_id(knowledge_base=shop_with_secret, claim=ClaimedIdentity("C7", good)) == "C7"
    with pytest.raises(IdentityRejected):
        verified_customer_id(knowledge_base=shop_with_secret, claim=ClaimedIdentity("C7", "ab" * 32))
    assert len(compared) == 2


def test_the_command_creates_rotates_and_clears_the_secret(db) -> None:
    kb = make_kb()
    out, err = io.StringIO(), io.StringIO()
    call_command("kb_identity_secret", "--kb", kb.slug, stdout=out, stderr=err)
    first = out.getvalue().strip()
    kb.refresh_from_db()
    assert kb.identity_secret == first and len(first) == 64
    assert "shown only now" in err.getvalue()
    out = io.StringIO()
    call_command("kb_identity_secret", "--kb", kb.slug, stdout=out, stderr=io.StringIO())
    kb.refresh_from_db()
    assert kb.identity_secret == out.getvalue().strip() != first
    status = io.StringIO()
    call_command("kb_identity_secret", "--kb", kb.slug, "--status", stdout=status)
    assert status.getvalue().strip().endswith(": on")
    call_command("kb_identity_secret", "--kb", kb.slug, "--off", stderr=io.StringIO())
    kb.refresh_from_db()
    assert kb.identity_secret == ""


def test_the_admin_never_shows_the_secret(personas) -> None:
    kb = make_kb()
    secret = identity_secret_rotate(knowledge_base=kb)
    page = personas.client("admin").get(f"/admin/knowledge/knowledgebase/{kb.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "identity verification" in content.lower() and secret not in content
