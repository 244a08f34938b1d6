from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from tests.personas import Personas


def test_openapi_schema_builds_without_warnings(tmp_path) -> None:
    # --fail-on-warn turns every drf-spectacular warning into a failure.
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert target.read_text().startswith("openapi: 3")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "expected"),
    [("anonymous", 403), ("agent", 403), ("admin", 200)],
)
def test_api_docs_are_for_staff_only(personas: Personas, persona: str, expected: int) -> None:
    client: Client = personas.client(persona)
    assert client.get("/api/schema/").status_code == expected
    assert client.get("/api/docs/").status_code == expected
