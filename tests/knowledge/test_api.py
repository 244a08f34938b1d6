"""The admin REST API: permissions for every persona, upload, status, delete."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.knowledge.models import Chunk, Document
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final
from tests.personas import Personas

pytestmark = pytest.mark.django_db(transaction=True)

DENIED = {"anonymous": 403, "customer": 403, "agent": 403}


@pytest.mark.parametrize("persona", ["anonymous", "customer", "agent"])
def test_only_admins_may_upload_list_read_or_delete(personas: Personas, persona: str) -> None:
    kb = make_kb()
    document = upload(kb, "showroom.md", FORMAT_DOCUMENTS["showroom.md"]).document
    client = personas.client(persona)
    url = f"/api/knowledge-bases/{kb.slug}/documents/"
    responses = [
        client.post(url, {"file": SimpleUploadedFile("a.md", b"# A\n\nText")}, format="multipart"),
        client.get(url),
        client.get(f"/api/documents/{document.pk}/"),
        client.delete(f"/api/documents/{document.pk}/"),
    ]
    assert [r.status_code for r in responses] == [DENIED[persona]] * 4
    assert Document.objects.count() == 1


@pytest.mark.slow
def test_admin_uploads_follows_progress_and_deletes(personas: Personas, celery_worker) -> None:
    kb = make_kb()
    client = personas.client("admin")
    url = f"/api/knowledge-bases/{kb.slug}/documents/"
    response = client.post(
        url, {"file": SimpleUploadedFile("showroom.md", FORMAT_DOCUMENTS["showroom.md"])}, format="multipart"
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["filename"] == "showroom.md"
    (document,) = wait_final(Document.objects.get(pk=body["id"]))
    detail = client.get(f"/api/documents/{document.pk}/").json()
    assert detail["status"] == "ready" and detail["progress"] == 1.0 and detail["chunk_count"] > 0
    assert [d["id"] for d in client.get(url).json()] == [document.pk]

    again = client.post(
        url, {"file": SimpleUploadedFile("showroom.md", FORMAT_DOCUMENTS["showroom.md"])}, format="multipart"
    )
    assert again.status_code == 200  # identical content: nothing queued

    assert client.delete(f"/api/documents/{document.pk}/").status_code == 204
    assert client.get(f"/api/documents/{document.pk}/").status_code == 404
    assert Chunk.objects.count() == 0


def test_unknown_document_is_404(personas: Personas) -> None:
    assert personas.client("admin").get("/api/documents/999999/").status_code == 404
