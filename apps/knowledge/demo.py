"""The demo knowledge base that ``make run`` loads: a small bilingual policy set of
a made-up shop (Lumen Home), plus public customer-service policies (τ-bench's
retail policy and the ABCD agent guidelines, both MIT; licenses beside them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from apps.knowledge.models import KnowledgeBase
from apps.knowledge.services import UploadResult, document_upload, knowledge_base_create

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
DEMO_KB_SLUG = "demo-shop"
DEMO_KB_NAME = "Lumen Home (demo shop)"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def abcd_guidelines_markdown(guidelines: dict) -> dict[str, str]:
    """One Markdown document per ABCD flow: its subflows as sections, actions as list items."""
    documents: dict[str, str] = {}
    for flow, body in guidelines.items():
        lines = [f"# {flow}", "", f"Customer-service guideline for: {body.get('description', flow)}.", ""]
        for subflow, details in body.get("subflows", {}).items():
            lines += [f"## {subflow}", ""]
            for step, action in enumerate(details.get("actions", []), start=1):
                lines.append(f"{step}. {action.get('text', '').strip()}")
                lines += [f"    - {sub.strip()}" for sub in action.get("subtext", []) if sub.strip()]
            lines.append("")
        documents[f"abcd-{_slug(flow)}.md"] = "\n".join(lines)
    return documents


def demo_documents() -> list[tuple[str, bytes]]:
    files = sorted(path for path in (DEMO_DATA / "policies").iterdir() if path.is_file())
    documents = [(path.name, path.read_bytes()) for path in files]
    documents.append(
        ("tau-bench-retail-policy.md", (DEMO_DATA / "corpora/tau-bench-retail/wiki.md").read_bytes())
    )
    guidelines = json.loads((DEMO_DATA / "corpora/abcd/guidelines.json").read_text(encoding="utf-8"))
    documents += [(name, text.encode()) for name, text in abcd_guidelines_markdown(guidelines).items()]
    return documents


def demo_knowledge_base_load() -> tuple[KnowledgeBase, list[UploadResult]]:
    """Create the demo knowledge base if needed and queue every demo document.
    Idempotent: documents already ingested with the same content are left alone."""
    knowledge_base = KnowledgeBase.objects.filter(slug=DEMO_KB_SLUG).first()
    if knowledge_base is None:
        knowledge_base = knowledge_base_create(
            name=DEMO_KB_NAME, slug=DEMO_KB_SLUG, language_hints=["zh", "en"]
        )
    results = [
        document_upload(knowledge_base=knowledge_base, filename=name, data=data)
        for name, data in demo_documents()
    ]
    return knowledge_base, results
