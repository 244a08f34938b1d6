"""python manage.py kb_eval --kb SLUG --questions FILE.jsonl [--k 5] [--json]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.knowledge.evaluation import QuestionSetError, questions_load, retrieval_evaluate
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.selectors import kb_search


class Command(BaseCommand):
    help = "Measure retrieval quality: hit@1, hit@k and MRR overall and per language, with the misses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kb", required=True)
        parser.add_argument("--questions", required=True, type=Path)
        parser.add_argument("--k", type=int, default=5)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: object, **options: object) -> None:
        knowledge_base = KnowledgeBase.objects.filter(slug=options["kb"]).first()
        if knowledge_base is None:
            raise CommandError(f"no knowledge base {options['kb']!r}")
        path: Path = options["questions"]  # type: ignore[assignment]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            questions = questions_load(path)
        except QuestionSetError as exc:
            raise CommandError(str(exc)) from exc
        k = int(options["k"])  # type: ignore[arg-type]
        # Retrieve more chunks than k so that k distinct documents can be ranked.
        report = retrieval_evaluate(
            questions,
            k=k,
            ranked_documents=lambda q: [
                hit.filename for hit in kb_search(knowledge_base=knowledge_base, query=q, k=k * 4)
            ],
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
            return
        self._print(report.as_dict())

    def _print(self, report: dict) -> None:
        k = report["k"]
        self.stdout.write(f"{'':10} {'questions':>9} {'hit@1':>7} {'hit@' + str(k):>7} {'MRR':>7}")
        rows = [("overall", report["overall"])] + list(report["by_language"].items())
        for name, scores in rows:
            self.stdout.write(
                f"{name:10} {scores['questions']:>9} {scores['hit@1']:>7.3f} {scores['hit@k']:>7.3f} {scores['mrr']:>7.3f}"
            )
        if report["misses"]:
            self.stdout.write(f"\nmisses at rank 1 ({len(report['misses'])}):")
            for miss in report["misses"]:
                self.stdout.write(
                    f"- {miss['q']}\n    expected {miss['doc']}, got {', '.join(miss['got']) or 'nothing'}"
                )
