"""python manage.py kb_ingest PATH... --kb SLUG [--no-wait]"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.knowledge.models import Document, KnowledgeBase
from apps.knowledge.services import UploadRejected, document_upload, knowledge_base_create

SUPPORTED_SUFFIXES = {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt", ".text"}
FINAL = {Document.Status.READY, Document.Status.FAILED}


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
            )
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{raw}: no such file or folder")
    return found


class Command(BaseCommand):
    help = "Upload files or folders into a knowledge base (created if missing) and wait for ingestion."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--kb", required=True, help="knowledge base slug")
        parser.add_argument("--name", help="name for a new knowledge base (default: the slug)")
        parser.add_argument("--no-wait", action="store_true", help="queue and return without waiting")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for ingestion")

    def handle(self, *args: object, **options: object) -> None:
        slug = str(options["kb"])
        knowledge_base = KnowledgeBase.objects.filter(slug=slug).first()
        if knowledge_base is None:
            knowledge_base = knowledge_base_create(name=str(options["name"] or slug), slug=slug)
            self.stdout.write(f"created knowledge base {slug!r}")
        documents: list[Document] = []
        rejected = 0
        for path in _files(list(options["paths"])):  # type: ignore[arg-type]
            try:
                result = document_upload(
                    knowledge_base=knowledge_base, filename=path.name, data=path.read_bytes()
                )
            except UploadRejected as exc:
                rejected += 1
                self.stdout.write(self.style.ERROR(f"{path.name}: rejected: {exc.reason}"))
                continue
            state = "queued" if result.queued else "unchanged (identical content already ingested)"
            self.stdout.write(f"{path.name}: {state}")
            documents.append(result.document)
        if options["no_wait"] or not documents:
            if rejected:
                sys.exit(1)
            return
        failed = self._wait(documents, float(options["timeout"]))  # type: ignore[arg-type]
        if failed or rejected:
            sys.exit(1)

    def _wait(self, documents: list[Document], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        ids = [document.pk for document in documents]
        interactive = self.stdout.isatty()
        while True:
            current = list(Document.objects.filter(pk__in=ids).order_by("filename"))
            progress = sum(1.0 if d.status in FINAL else d.progress for d in current) / len(current)
            bar = "#" * int(30 * progress) + "-" * (30 - int(30 * progress))
            done = all(d.status in FINAL for d in current)
            if interactive or done:
                end = "\n" if done else "\r"
                self.stdout.write(f"[{bar}] {100 * progress:5.1f}%", ending=end)
            if done:
                break
            if time.monotonic() > deadline:
                raise CommandError("timed out waiting for ingestion (is the Celery worker running?)")
            time.sleep(0.5)
        failed = 0
        for document in current:
            if document.status == Document.Status.READY:
                self.stdout.write(
                    self.style.SUCCESS(f"{document.filename}: ready, {document.chunk_count} chunks")
                )
            else:
                failed += 1
                self.stdout.write(self.style.ERROR(f"{document.filename}: failed: {document.failure_reason}"))
        return failed
