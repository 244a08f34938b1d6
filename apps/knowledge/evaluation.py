"""Retrieval quality on a question set: hit@1, hit@k and MRR, overall and per language.

A question set is JSON lines: ``{"q": "question", "doc": "file name that holds the answer"}``;
other keys are ignored here.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

CJK = re.compile(r"[\u3400-\u9fff]")


class QuestionSetError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    q: str
    doc: str
    line: int
    extra: dict = field(default_factory=dict)

    @property
    def language(self) -> str:
        return "zh" if CJK.search(self.q) else "en"


def questions_load(path: Path) -> list[Question]:
    questions = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            questions.append(Question(q=str(item["q"]), doc=str(item["doc"]), line=number, extra=item))
        except (ValueError, KeyError, TypeError) as exc:
            raise QuestionSetError(f"{path}:{number}: expected an object with 'q' and 'doc' ({exc})") from exc
    if not questions:
        raise QuestionSetError(f"{path}: no questions")
    return questions


@dataclass
class Scores:
    count: int = 0
    hit_at_1: int = 0
    hit_at_k: int = 0
    reciprocal_rank: float = 0.0

    def add(self, rank: int | None) -> None:
        self.count += 1
        if rank is not None:
            self.hit_at_1 += rank == 1
            self.hit_at_k += 1
            self.reciprocal_rank += 1 / rank

    def as_dict(self) -> dict[str, float | int]:
        n = max(self.count, 1)
        return {
            "questions": self.count,
            "hit@1": round(self.hit_at_1 / n, 4),
            "hit@k": round(self.hit_at_k / n, 4),
            "mrr": round(self.reciprocal_rank / n, 4),
        }


@dataclass(frozen=True)
class Miss:
    question: Question
    got: list[str]


@dataclass
class EvalReport:
    k: int
    overall: Scores = field(default_factory=Scores)
    by_language: dict[str, Scores] = field(default_factory=lambda: defaultdict(Scores))
    misses: list[Miss] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "overall": self.overall.as_dict(),
            "by_language": {lang: scores.as_dict() for lang, scores in sorted(self.by_language.items())},
            "misses": [{"q": m.question.q, "doc": m.question.doc, "got": m.got} for m in self.misses],
        }


def retrieval_evaluate(
    questions: Iterable[Question], *, k: int, ranked_documents: Callable[[str], list[str]]
) -> EvalReport:
    """``ranked_documents(question)`` returns file names in rank order (one per retrieved chunk)."""
    report = EvalReport(k=k)
    for question in questions:
        ranked = list(dict.fromkeys(ranked_documents(question.q)))  # first occurrence of each document
        rank = ranked.index(question.doc) + 1 if question.doc in ranked[:k] else None
        report.overall.add(rank)
        report.by_language[question.language].add(rank)
        if rank != 1:
            report.misses.append(Miss(question=question, got=ranked[:3]))
    return report


# --- Answers ---------------------------------------------------------------------------------


def answer_is_hit(answer: str, expected_any: Iterable[str]) -> bool:
    """An answer is a hit when it contains at least one of the expected strings (any case)."""
    lowered = answer.lower()
    return any(str(expected).lower() in lowered for expected in expected_any)


@dataclass
class AnswerScores:
    count: int = 0
    hits: int = 0

    def add(self, hit: bool) -> None:
        self.count += 1
        self.hits += hit

    def as_dict(self) -> dict[str, float | int]:
        return {"questions": self.count, "hit_rate": round(self.hits / max(self.count, 1), 4)}


@dataclass
class AnswerReport:
    overall: AnswerScores = field(default_factory=AnswerScores)
    by_language: dict[str, AnswerScores] = field(default_factory=lambda: defaultdict(AnswerScores))
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    misses: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "overall": self.overall.as_dict(),
            "by_language": {lang: scores.as_dict() for lang, scores in sorted(self.by_language.items())},
            "outcomes": dict(sorted(self.outcomes.items())),
            "misses": self.misses,
        }


@dataclass(frozen=True)
class AssistantAnswer:
    text: str
    outcome: str


def answers_evaluate(questions: Iterable[Question], answers: Iterable[AssistantAnswer]) -> AnswerReport:
    """Score the assistant's ``answers`` (one per question, same order) against each question's
    ``any`` list. Questions without one are not scored."""
    report = AnswerReport()
    for question, answer in zip(questions, answers, strict=True):
        expected = question.extra.get("any")
        if not expected:
            continue
        hit = answer_is_hit(answer.text, expected)
        report.overall.add(hit)
        report.by_language[question.language].add(hit)
        report.outcomes[answer.outcome] += 1
        if not hit:
            report.misses.append(
                {"q": question.q, "any": expected, "answer": answer.text, "outcome": answer.outcome}
            )
    return report
