"""Every bad upload gets a clear reason: a 4xx at upload, or a failed document.
Nothing partial becomes searchable and the worker keeps running."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.knowledge.models import Chunk, Document
from tests.knowledge import samples
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final
from tests.personas import Personas

pytestmark = pytest.mark.django_db(transaction=True)


def _post(client: Client, slug: str, name: str, data: bytes):
    return client.post(
        f"/api/knowledge-bases/{slug}/documents/",
        {"file": SimpleUploadedFile(name, data)},
        format="multipart",
    )


@pytest.mark.parametrize(
    ("name", "data", "status", "reason"),
    [
        ("empty.pdf", b"", 400, "the file is empty"),
        ("setup.pdf", samples.pe_bytes(), 415, "Windows executable"),
        ("tool.pdf", samples.elf_bytes(), 415, "Linux executable"),
        ("archive.docx", samples.non_docx_zip_bytes(), 415, "ZIP archive"),
        ("notes.txt", samples.random_bytes(), 415, "encoding could not be recognised"),
        ("japanese.txt", samples.shift_jis_text_bytes(), 415, "encoding could not be recognised"),
    ],
    ids=["empty", "exe-renamed-pdf", "elf-renamed-pdf", "zip-not-docx", "random-bytes", "shift-jis"],
)
def test_unusable_files_are_refused_at_upload(personas: Personas, name, data, status, reason) -> None:
    kb = make_kb()
    response = _post(personas.client("admin"), kb.slug, name, data)
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert Document.objects.count() == 0


def test_a_file_over_the_limit_is_refused_with_413(personas: Personas) -> None:
    kb = make_kb()
    kb.max_upload_mb = 1
    kb.save(update_fields=["max_upload_mb"])
    response = _post(personas.client("admin"), kb.slug, "big.txt", b"a" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert "1 MB limit" in response.json()["detail"]
    assert Document.objects.count() == 0


def test_upload_to_an_unknown_knowledge_base_is_404(personas: Personas) -> None:
    response = _post(personas.client("admin"), "no-such-kb", "a.md", b"# A\n\nText")
    assert response.status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("cut-short.pdf", samples.truncated_pdf_bytes(), "damaged"),
        ("secret.pdf", samples.encrypted_pdf_bytes(), "password-protected"),
        ("scan.pdf", samples.scanned_pdf_bytes(), "OCR"),
        ("bomb.docx", samples.zip_bomb_docx_bytes(), "zip bomb"),
        ("broken.docx", samples.malformed_docx_bytes(), "malformed"),
    ],
    ids=[
        "corrupt-pdf",
        "encrypted-pdf",
        "scanned-pdf",
        "zip-bomb-docx",
        "malformed-docx",
    ],
)
def test_broken_documents_fail_with_a_reason_and_nothing_is_searchable(
    celery_worker, name, data, reason
) -> None:
    kb = make_kb()
    result = upload(kb, name, data)
    good = upload(kb, "showroom.md", FORMAT_DOCUMENTS["showroom.md"])
    broken, fine = wait_final(result.document, good.document)
    assert broken.status == Document.Status.FAILED
    assert reason in broken.failure_reason
    assert not Chunk.objects.filter(document=broken).exists()
    # The worker carried on with the next document.
    assert fine.status == Document.Status.READY
