"""The admin's upload page in a real browser: drop several files, watch them become ready."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from tests.knowledge import samples
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DROP_FILES = """
async ([files]) => {
  const transfer = new DataTransfer();
  for (const [name, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name));
  }
  const zone = document.getElementById("dropzone");
  zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}
"""


def test_admin_drops_files_and_sees_progress_and_errors(web_server, browser, celery_worker, tmp_path) -> None:
    kb = make_kb()
    staff_user_ensure(username="alice-admin", role=Role.ADMIN, password="a-long-admin-password")
    assert get_user_model().objects.filter(username="alice-admin").exists()

    page = browser.new_page()
    page.goto(f"{web_server}/admin/login/?next=/admin/knowledge/knowledgebase/{kb.slug}/upload/")
    page.fill("#id_username", "alice-admin")
    page.fill("#id_password", "a-long-admin-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#dropzone")

    dropped = [
        ("showroom.md", FORMAT_DOCUMENTS["showroom.md"]),
        ("积分规则.txt", FORMAT_DOCUMENTS["积分规则.txt"]),
        ("setup.pdf", samples.pe_bytes()),
    ]
    page.evaluate(DROP_FILES, [[[name, base64.b64encode(data).decode()] for name, data in dropped]])
    # The chooser path too: a click opens the file input.
    page.set_input_files("#file-input", files=[{"name": "gift-wrapping.pdf", "mimeType": "application/pdf",
                                               "buffer": FORMAT_DOCUMENTS["gift-wrapping.pdf"]}])  # fmt: skip

    page.wait_for_selector("#upload-errors li")
    assert "setup.pdf" in page.inner_text("#upload-errors") and "Windows executable" in page.inner_text(
        "#upload-errors"
    )
    for name in ("showroom.md", "积分规则.txt", "gift-wrapping.pdf"):
        row = f'#documents tr[data-filename="{name}"]'
        page.wait_for_selector(f"{row} .status-ready", timeout=120_000)
        assert "100%" in page.inner_text(row)
    assert page.locator('#documents tr[data-filename="setup.pdf"]').count() == 0
    page.screenshot(path=str(tmp_path / "upload.png"))
    page.close()
