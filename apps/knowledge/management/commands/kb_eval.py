"""python manage.py kb_eval --kb SLUG --questions FILE.jsonl [--k 5] [--answers] [--json]"""

from __future__ import annotations

import json
from pathlib import Path

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.knowledge.evaluation import (
    AssistantAnswer,
    Question,
    QuestionSetError,
    answers_evaluate,
    questions_load,
    retrieval_evaluate,
)
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.selectors import kb_search


async def _ask_assistant(knowledge_base: KnowledgeBase, questions: list[Question]) -> list[AssistantAnswer]:
    """Each question alone (no history), through the assistant's own pipeline and the model
    worker of ``LLM_BASE_URL``; nothing is stored."""
    # The conversations app builds on the knowledge base, so it is imported only when needed.
    from apps.conversations.services import Answer, assistant_answer, chat_model_from_settings

    model = chat_model_from_settings()
    answers = []
    try:
        for question in questions:
            async for event in assistant_answer(
                knowledge_base=knowledge_base, history=[], question=question.q, chat_model=model
            ):
                if isinstance(event, Answer):
                    answers.append(AssistantAnswer(text=event.text, outcome=event.outcome))
    finally:
        await model.close()
    return answers


class Command(BaseCommand):
    help = (
        "Measure retrieval quality: hit@1, hit@k and MRR overall and per language, with the misses; "
        "with --answers also the assistant's answers against each question's 'any' strings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kb", required=True)
        parser.add_argument("--questions", required=True, type=Path)
        parser.add_argument("--k", type=int, default=5)
        parser.add_argument(
            "--answers",
            action="store_true",
            help="also ask the assistant (model worker at LLM_BASE_URL) every question; a hit is an "
            "answer containing one of the line's 'any' strings (case-insensitive)",
        )
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
        if options["answers"] and not any(question.extra.get("any") for question in questions):
            raise CommandError(f"{path}: --answers needs an 'any' list of expected strings on some lines")
        k = int(options["k"])  # type: ignore[arg-type]
        # Retrieve more chunks than k so that k distinct documents can be ranked.
        report = retrieval_evaluate(
            questions,
            k=k,
            ranked_documents=lambda q: [
                hit.filename for hit in kb_search(knowledge_base=knowledge_base, query=q, k=k * 4)
            ],
        ).as_dict()
        if options["answers"]:
            # async_to_sync: the pipeline's database work runs on this thread and its connection.
            answers = async_to_sync(_ask_assistant)(knowledge_base, questions)
            report["answers"] = answers_evaluate(questions, answers).as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
            return
        self._print(report)

    def _print(self, report: dict) -> None:
        k = report["k"]
        answers = report.get("answers")
        header = f"{'':10} {'questions':>9} {'hit@1':>7} {'hit@' + str(k):>7} {'MRR':>7}"
        self.stdout.write(header + (f" {'answers':>8}" if answers else ""))
        rows = [("overall", report["overall"])] + list(report["by_language"].items())
        for name, scores in rows:
            line = (
                f"{name:10} {scores['questions']:>9} {scores['hit@1']:>7.3f} {scores['hit@k']:>7.3f} "
                f"{scores['mrr']:>7.3f}"
            )
            if answers:
                scored = answers["overall"] if name == "overall" else answers["by_language"].get(name)
                line += f" {scored['hit_rate']:>8.3f}" if scored else f" {'-':>8}"
            self.stdout.write(line)
        if answers:
            outcomes = ", ".join(f"{name} {count}" for name, count in answers["outcomes"].items())
            self.stdout.write(
                f"\nanswers: a hit contains one of the line's 'any' strings; "
                f"{answers['overall']['questions']} questions scored ({outcomes})"
            )
        if report["misses"]:
            self.stdout.write(f"\nmisses at rank 1 ({len(report['misses'])}):")
            for miss in report["misses"]:
                self.stdout.write(
                    f"- {miss['q']}\n    expected {miss['doc']}, got {', '.join(miss['got']) or 'nothing'}"
                )
        if answers and answers["misses"]:
            self.stdout.write(f"\nanswers without an expected string ({len(answers['misses'])}):")
            for miss in answers["misses"]:
                self.stdout.write(
                    f"- {miss['q']}\n    expected one of {miss['any']} ({miss['outcome']}): "
                    f"{miss['answer'][:200]!r}"
                )
