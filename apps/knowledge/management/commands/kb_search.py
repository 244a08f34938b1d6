"""python manage.py kb_search --kb SLUG "question" [--k 5]"""

from __future__ import annotations

import textwrap

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.knowledge.models import KnowledgeBase
from apps.knowledge.selectors import kb_search


class Command(BaseCommand):
    help = "Print the best-matching chunks of a knowledge base for a question."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("question")
        parser.add_argument("--kb", required=True)
        parser.add_argument("--k", type=int, default=5)

    def handle(self, *args: object, **options: object) -> None:
        knowledge_base = KnowledgeBase.objects.filter(slug=options["kb"]).first()
        if knowledge_base is None:
            raise CommandError(f"no knowledge base {options['kb']!r}")
        hits = kb_search(knowledge_base=knowledge_base, query=str(options["question"]), k=int(options["k"]))  # type: ignore[arg-type]
        if not hits:
            self.stdout.write("no matching passages")
        for rank, hit in enumerate(hits, start=1):
            where = " > ".join(hit.heading_path) or "(no heading)"
            similarity = f"{hit.similarity:.3f}" if hit.similarity is not None else "-"
            self.stdout.write(
                self.style.SUCCESS(f"{rank}. {hit.filename} — {where}")
                + f"  [score {hit.score:.4f}, cosine {similarity}, vector #{hit.vector_rank or '-'}, "
                f"text #{hit.lexical_rank or '-'}]"
            )
            self.stdout.write(textwrap.indent(textwrap.shorten(hit.text, 400), "   "))
