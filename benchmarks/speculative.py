"""Prompt-lookup speculative decoding on the assistant's answers: how many tokens a forward step yields.

An answer grounded in retrieved passages copies phrases from them (names, periods, amounts, steps).
vLLM's n-gram proposer drafts the next ``k`` tokens by finding the answer's last few tokens in the prompt
and copying what followed them there; one forward pass of the model checks all drafts at once and keeps
the ones it would have produced itself (with sampling, by rejection sampling, so the answers keep the
model's distribution). A step then yields 1 + the accepted drafts.

How many tokens a step yields depends on the model and the prompts, not on the hardware, so it is
measured here with the real CPU model (cpu-dev) on the demo questions, each asked the way the assistant
asks: the same messages (``build_messages``: instructions, the ``CHAT_PASSAGES`` passages retrieval ranks
first, the question), greedy by default (``--temperature``; the chat samples at ``CHAT_TEMPERATURE``):
greedy answers must come out identical with and without speculation, which the run counts. vLLM's own
counters (``/metrics``: generated, drafted and accepted tokens) give the tokens per step. Baseline: the
same worker without speculation in the same run, for the answers and the decode speed.

On a GPU at one stream a step that checks 1 + k tokens costs little more than one that makes one token
(at one stream the step is bound by per-kernel overhead; the report brackets it between the measured
one- and 16-stream steps): time per output token ≈ step time ÷ tokens per step.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import openai

from benchmarks.common import summary, write_result
from benchmarks.engine_counters import step_yield, worker_counters
from benchmarks.model_choice import (
    QUESTIONS,
    _django_setup,
    is_hit,
    language_matches,
    question_language,
    retrieve_passages,
    stream_answer,
)
from benchmarks.services import cpu_model_worker

# Drafts of up to 4 tokens, found by matching the answer's last 2 to 4 tokens in the prompt.
NGRAM = {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_min": 2, "prompt_lookup_max": 4}


def assistant_messages(top_k: int) -> tuple[list[dict[str, Any]], list[list[dict[str, str]]]]:
    """The demo questions and, for each, the messages the assistant would send with the ``top_k``
    passages retrieval ranks first."""
    from apps.conversations.prompting import Passage, build_messages

    questions = [
        json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    ranked, _ = retrieve_passages(questions, top_k=top_k)
    conversations = []
    for question, passages in zip(questions, ranked, strict=True):
        numbered = [
            Passage(n=n, chunk_id=n, document=p["doc"], heading_path=p["heading_path"], text=p["text"])
            for n, p in enumerate(passages, start=1)
        ]
        conversations.append(
            build_messages(
                system_prompt="",
                passages=numbered,
                history=[],
                question=question["q"],
                language=question_language(question["q"]),
            )
        )
    return questions, conversations


def _answer(
    client: openai.OpenAI, messages: list[dict[str, str]], sampling: dict[str, Any], seed: int
) -> dict[str, Any]:
    answer = stream_answer(client, messages, seed=seed, **sampling)
    if answer["completion_tokens"] < 2 or math.isnan(answer["ttft_s"]):
        raise RuntimeError(f"the answer had {answer['completion_tokens']} tokens")
    return answer


def measure(
    name: str, settings: dict[str, str], conversations: list[list[dict[str, str]]], sampling: dict, logs: Path
) -> dict[str, Any]:
    with cpu_model_worker(logs, settings=settings, log_name=f"{name}.log") as worker:
        worker.wait_ready()
        client = openai.OpenAI(base_url=worker.url, api_key="unused", max_retries=0, timeout=900)
        _answer(client, conversations[0], {**sampling, "max_tokens": 8}, seed=0)  # warm-up
        before = worker_counters(worker.url)
        answers = [
            _answer(client, messages, sampling, seed=index) for index, messages in enumerate(conversations)
        ]
        after = worker_counters(worker.url)
    return {
        "name": name,
        "settings": settings,
        **step_yield(before, after),
        "decode_tok_s": summary([a["decode_tok_s"] for a in answers]),
        "ttft_s": summary([a["ttft_s"] for a in answers]),
        "answer_tokens": summary([a["completion_tokens"] for a in answers]),
        "answers": [a["answer"] for a in answers],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speculative")
    parser.add_argument("--questions", type=int, default=0, help="only the first N demo questions (0: all)")
    # Every second question (both languages stay) and 128-token answers keep the two workers' run to
    # ~15 minutes on 2 cores.
    parser.add_argument("--every", type=int, default=2, help="every n-th demo question")
    parser.add_argument("--max-tokens", type=int, default=128, help="answer length cap (0: CHAT_MAX_TOKENS)")
    # Greedy by default: greedy answers must come out identical with speculation (the correctness check),
    # and vLLM 0.32's CPU build garbles sampled answers with speculation on: its CPU expand kernel leaves the
    # per-draft temperatures unset (tests/inference/test_vllm_cpu_speculative_sampling.py).
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature (the chat's: CHAT_TEMPERATURE)"
    )
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling (default: CHAT_TOP_P)")
    args = parser.parse_args(argv)

    _django_setup()
    from django.conf import settings

    questions, conversations = assistant_messages(top_k=settings.CHAT_PASSAGES)
    questions, conversations = questions[:: args.every], conversations[:: args.every]
    if args.questions:
        questions, conversations = questions[: args.questions], conversations[: args.questions]
    sampling = {
        "temperature": args.temperature,
        "top_p": settings.CHAT_TOP_P if args.top_p is None else args.top_p,
        "max_tokens": args.max_tokens or settings.CHAT_MAX_TOKENS,
    }
    with tempfile.TemporaryDirectory(prefix="bench-speculative-") as folder:
        # One CPU worker at a time: the two would share the cores.
        baseline = measure("cpu-dev", {}, conversations, sampling, Path(folder))
        ngram = measure(
            "cpu-dev-ngram", {"speculative_config": json.dumps(NGRAM)}, conversations, sampling, Path(folder)
        )
    for run in (baseline, ngram):
        run["hits"] = sum(is_hit(a, q["any"]) for a, q in zip(run["answers"], questions, strict=True))
        run["language_matches"] = sum(
            language_matches(a, question_language(q["q"]))
            for a, q in zip(run["answers"], questions, strict=True)
        )
    result = {
        # Greedy answers must come out the same with and without speculation: a check of correctness.
        "identical_answers": sum(a == b for a, b in zip(baseline["answers"], ngram["answers"], strict=True)),
        "questions": len(questions),
        "languages": {
            lang: sum(question_language(q["q"]) == lang for q in questions) for lang in ("en", "zh")
        },
        "passages": settings.CHAT_PASSAGES,
        "sampling": sampling,
        "proposer": NGRAM,
        "runs": [baseline, ngram],
        "decode_speedup_p50": ngram["decode_tok_s"]["p50"] / baseline["decode_tok_s"]["p50"],
    }
    path = write_result("speculative", result)
    print(
        f"tokens per step {ngram['tokens_per_step']:.2f}, acceptance {ngram['acceptance_rate']:.0%}, "
        f"decode p50 {baseline['decode_tok_s']['p50']:.1f} → {ngram['decode_tok_s']['p50']:.1f} tok/s; wrote {path}",
        flush=True,
    )


if __name__ == "__main__":
    main()
