"""python manage.py kb_reembed --kb SLUG [--embedder NAME]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.knowledge.embedders import UnknownEmbedderError, known_embedders
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.services import knowledge_base_reembed


class Command(BaseCommand):
    help = (
        "Re-embed every document of a knowledge base with another embedder (or the same one). "
        "Search keeps working on the old embeddings until all documents are done, then switches at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kb", required=True)
        parser.add_argument(
            "--embedder", help=f"one of: {', '.join(known_embedders())} (default: the current one)"
        )

    def handle(self, *args: object, **options: object) -> None:
        knowledge_base = KnowledgeBase.objects.filter(slug=options["kb"]).first()
        if knowledge_base is None:
            raise CommandError(f"no knowledge base {options['kb']!r}")
        embedder = str(options["embedder"] or knowledge_base.embedder_name)
        try:
            queued = knowledge_base_reembed(knowledge_base=knowledge_base, embedder_name=embedder)
        except UnknownEmbedderError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"re-embedding {queued} documents of {knowledge_base.slug!r} with {embedder}")
