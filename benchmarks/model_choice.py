"""Which chat model should cpu-dev serve: answer quality and speed of the CPU profiles, side by side.

For each profile (default: cpu-dev, the Qwen2.5-Coder 0.5B, and cpu-dev-1.5b) the worker is started
with ``python -m inference serve`` and asked every question of the demo question set
(``apps/knowledge/demo_data/questions.jsonl``: ``q``, ``doc``, ``any``) the way the assistant asks:
a system message with the instructions and the 3 passages most relevant to the question, numbered
[1]..[3], then the question. The passages are retrieved once, without a database (the demo documents
parsed and chunked as ingestion does, embedded with multilingual-e5-small, ranked by dot product), and
every model gets the same ones.

Scores per question language (zh/en): an answer is a hit when it contains any of the question's
``any`` strings (case-insensitive), and matches the language when it contains CJK for a Chinese
question or is mostly Latin letters for an English one. Speed: time to first token and decode tok/s of
streamed single-stream answers (completion tokens from the usage block), peak RSS of the worker's
process tree, and the time to prepare the model (assemble + convert; ``--cold`` measures it from an
empty model cache, otherwise a warm cache makes it a cache check). All profiles are measured in the
same run; the raw answers are saved in the result so a reader can judge them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import openai
import psutil

from benchmarks.common import PeakMemory, summary, wait_for_worker_health, write_result
from stack.ports import port_is_free

SYSTEM_PROMPT = (
    "You are the customer-service assistant of Lumen Home. Answer only from the numbered passages; "
    "answer in the customer's language; if the passages do not contain the answer, say you don't know."
)
QUESTIONS = Path(__file__).resolve().parents[1] / "apps" / "knowledge" / "demo_data" / "questions.jsonl"
EMBEDDER = "multilingual-e5-small"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
# An English answer "matches" when at least this share of its letters (Latin + CJK) is Latin: quoting
# one Chinese term is fine, answering half in Chinese is not.
LATIN_SHARE_FOR_EN = 0.8
ATTEMPTS = 3  # per question, when the worker dies under it (restarted by the launcher)
# A rough sign that the model declined ("say you don't know") rather than made something up: what it
# should do when retrieval missed the document that holds the answer.
DECLINED = re.compile(
    r"don['’]t know|do not know|not sure|no information|not (?:mentioned|specified|provided|contain)|"
    r"does not (?:mention|specify|say|contain)|doesn['’]t (?:mention|specify|say|contain)|"
    r"不知道|不清楚|没有(?:提到|提及|相关|说明|包含)|未(?:提到|提及|说明)|无法(?:回答|确定|提供)",
    re.IGNORECASE,
)


# --- Passages (no database) ------------------------------------------------------------------


def _django_setup() -> None:
    """apps.knowledge.demo imports models, so Django must be set up; no database is opened here.

    The test settings leave DATABASES empty without DATABASE_URL, which is all importing models needs.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()


def retrieve_passages(
    questions: list[dict[str, Any]], *, top_k: int
) -> tuple[list[list[dict[str, Any]]], dict]:
    """The ``top_k`` passages for each question, ranked by dot product of e5 vectors, with timings."""
    _django_setup()
    import numpy as np

    from apps.knowledge.chunking import chunks_build
    from apps.knowledge.demo import demo_documents
    from apps.knowledge.embedders import embedder_for
    from apps.knowledge.parsing import document_parse

    chunks: list[dict[str, Any]] = []
    for filename, data in demo_documents():
        parsed = document_parse(data=data, filename=filename)
        for draft in chunks_build(blocks=parsed.blocks):
            chunks.append({"doc": filename, "heading_path": list(draft.heading_path), "text": draft.text})
    started = time.perf_counter()
    embedder = embedder_for(EMBEDDER)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    # As ingestion embeds them (apps.knowledge.services): the heading path joined before the text.
    passage_vectors = np.asarray(
        embedder.embed_passages([" > ".join((*c["heading_path"], c["text"])) for c in chunks]),
        dtype=np.float32,
    )
    passages_s = time.perf_counter() - started
    query_vectors = np.asarray(embedder.embed_queries([q["q"] for q in questions]), dtype=np.float32)
    scores = query_vectors @ passage_vectors.T
    ranked: list[list[dict[str, Any]]] = []
    for row in scores:
        best = np.argsort(-row)[:top_k]
        ranked.append([{**chunks[i], "score": round(float(row[i]), 4)} for i in best])
    return ranked, {
        "embedder": EMBEDDER,
        "documents": len({c["doc"] for c in chunks}),
        "chunks": len(chunks),
        "embedder_load_s": load_s,
        "embed_passages_s": passages_s,
    }


def system_message(passages: list[dict[str, Any]]) -> str:
    numbered = "\n\n".join(
        f"[{number}] {' > '.join(p['heading_path'])}\n{p['text']}"
        if p["heading_path"]
        else f"[{number}] {p['text']}"
        for number, p in enumerate(passages, start=1)
    )
    return f"{SYSTEM_PROMPT}\n\nPassages:\n\n{numbered}"


# --- Scoring ------------------------------------------------------------------------------------


def question_language(text: str) -> str:
    return "zh" if CJK.search(text) else "en"


def is_hit(answer: str, expected_any: list[str]) -> bool:
    lowered = answer.lower()
    return any(expected.lower() in lowered for expected in expected_any)


def declined(answer: str) -> bool:
    return bool(DECLINED.search(answer))


def language_matches(answer: str, language: str) -> bool:
    cjk = len(CJK.findall(answer))
    if language == "zh":
        return cjk > 0
    latin = len(LATIN.findall(answer))
    return latin > 0 and latin / (latin + cjk) >= LATIN_SHARE_FOR_EN


# --- Worker -------------------------------------------------------------------------------------


def _pick_port(candidates: range) -> int:
    for port in candidates:
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {candidates.start}-{candidates.stop - 1}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the launcher's group (it stops vLLM's own group), then kill whatever of the tree is left.

    vLLM runs in a session of its own, so killing the launcher's group alone could orphan it: the
    tree's pids are noted first and any survivor is killed by pid.
    """
    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass


def prepare(profile: str, env: dict[str, str]) -> dict[str, Any]:
    """Time ``python -m inference prepare`` (assemble + convert, or a cache hit) and its peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "inference", "prepare", "--profile", profile],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    with PeakMemory(process.pid, interval=0.25) as memory:
        output, _ = process.communicate()
    elapsed = time.perf_counter() - started
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"prepare {profile} failed ({process.returncode}):\n{text[-4000:]}")
    return {
        "seconds": elapsed,
        "converted": "prepare: convert" in text,
        "peak_rss_gib": memory.peak_bytes / 2**30,
        "model_dir": text.strip().splitlines()[-1],
    }


def ask(client: openai.OpenAI, *, system: str, question: str, max_tokens: int, seed: int) -> dict[str, Any]:
    return stream_answer(
        client,
        [{"role": "system", "content": system}, {"role": "user", "content": question}],
        seed=seed,
        temperature=0.2,
        top_p=0.9,
        max_tokens=max_tokens,
    )


def stream_answer(
    client: openai.OpenAI, messages: list[dict[str, str]], *, seed: int, **sampling: Any
) -> dict[str, Any]:
    """One streamed answer: its text, finish reason, token counts, time to first token and decode speed."""
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    usage = None
    finish_reason = None
    stream = client.chat.completions.create(
        model="shopdesk-chat",
        messages=messages,  # type: ignore[arg-type]
        seed=seed,
        stream=True,
        stream_options={"include_usage": True},
        **sampling,
    )
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta.content
            if delta:
                if first is None:
                    first = time.perf_counter()
                parts.append(delta)
            if chunk.choices[0].finish_reason:
                finish_reason = chunk.choices[0].finish_reason
        if chunk.usage:
            usage = chunk.usage
    ended = time.perf_counter()
    tokens = usage.completion_tokens if usage else 0
    return {
        "answer": "".join(parts),
        "finish_reason": finish_reason,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": tokens,
        "ttft_s": (first - started) if first is not None else float("nan"),
        "total_s": ended - started,
        "decode_tok_s": (tokens - 1) / (ended - first)
        if first is not None and tokens > 1 and ended > first
        else float("nan"),
    }


def run_profile(
    profile: str,
    questions: list[dict[str, Any]],
    passages: list[list[dict[str, Any]]],
    retrieved_gold: list[bool],
    *,
    port: int,
    max_tokens: int,
    cold: bool,
    log_dir: Path,
    on_answer: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    env = dict(os.environ)
    cache_dir = Path(tempfile.mkdtemp(prefix=f"model-choice-{profile}-")) if cold else None
    if cache_dir is not None:
        env["MODEL_CACHE_DIR"] = str(cache_dir)
    try:
        print(f"[{profile}] prepare{' (cold cache)' if cold else ''}", flush=True)
        prepared = prepare(profile, env)
        print(f"[{profile}] prepared in {prepared['seconds']:.0f}s; starting worker on {port}", flush=True)
        log_path = log_dir / f"{profile}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "inference", "serve", "--profile", profile, "--port", str(port)],
                env=env,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            with PeakMemory(process.pid) as memory:
                start_s = wait_for_worker_health(port, process, timeout=1800)
                print(f"[{profile}] healthy after {start_s:.0f}s", flush=True)
                client = openai.OpenAI(
                    base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=900
                )
                restarts: list[str] = []

                def ask_retrying(**kwargs: Any) -> dict[str, Any]:
                    # On a shared machine the kernel's OOM killer may pick the engine; the launcher then
                    # restarts it. Wait for it and ask the same question again, noting why.
                    for attempt in range(1, ATTEMPTS + 1):
                        try:
                            return {**ask(client, **kwargs), "attempts": attempt}
                        except (openai.APIError, openai.APIConnectionError) as error:
                            if attempt == ATTEMPTS or process.poll() is not None:
                                raise
                            restarts.append(f"{type(error).__name__}: {error}")
                            print(f"[{profile}] request failed ({error}); waiting for the worker", flush=True)
                            time.sleep(5)
                            wait_for_worker_health(port, process, timeout=1800)
                    raise AssertionError("unreachable")

                # Warm-up: the first request pays one-off costs that no customer question should carry.
                ask_retrying(system=system_message(passages[0]), question="Hello", max_tokens=8, seed=0)
                answers = []
                for index, (question, context) in enumerate(zip(questions, passages, strict=True)):
                    result = ask_retrying(
                        system=system_message(context),
                        question=question["q"],
                        max_tokens=max_tokens,
                        seed=index,
                    )
                    language = question_language(question["q"])
                    answers.append(
                        {
                            "q": question["q"],
                            "language": language,
                            "any": question["any"],
                            "hit": is_hit(result["answer"], question["any"]),
                            "language_match": language_matches(result["answer"], language),
                            "retrieved_gold": retrieved_gold[index],
                            "declined": declined(result["answer"]),
                            **result,
                        }
                    )
                    print(
                        f"[{profile}] {index + 1}/{len(questions)} hit={answers[-1]['hit']:d} "
                        f"lang={answers[-1]['language_match']:d} ttft={result['ttft_s']:.1f}s "
                        f"{result['completion_tokens']} tok {result['decode_tok_s']:.2f} tok/s",
                        flush=True,
                    )
                    if on_answer is not None:
                        on_answer(answers)
                client.close()
        finally:
            _stop(process)
        return {
            "profile": profile,
            "prepare": prepared,
            "start_to_health_s": start_s,
            "peak_rss_gib": memory.peak_bytes / 2**30,
            "worker_log": str(log_path),
            "worker_restarts": restarts,
            "scores": _scores(answers),
            "speed": speed(answers),
            "answers": answers,
        }
    finally:
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)


def speed(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-answer medians, plus decode speed pooled over all answers (tokens after the first over the
    time after the first): short answers of 2-3 tokens make the per-answer decode rate noisy."""
    decoding = [a for a in answers if a["decode_tok_s"] == a["decode_tok_s"]]
    decode_seconds = sum(a["total_s"] - a["ttft_s"] for a in decoding)
    return {
        "ttft_s": summary([a["ttft_s"] for a in answers]),
        "decode_tok_s": summary([a["decode_tok_s"] for a in decoding]),
        "decode_tok_s_pooled": sum(a["completion_tokens"] - 1 for a in decoding) / decode_seconds
        if decode_seconds > 0
        else float("nan"),
        "total_s": summary([a["total_s"] for a in answers]),
        "completion_tokens": summary([float(a["completion_tokens"]) for a in answers]),
        "prompt_tokens": summary([float(a["prompt_tokens"] or 0) for a in answers]),
        "hit_max_tokens": sum(a["finish_reason"] == "length" for a in answers),
    }


def _scores(answers: list[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    scores = {}
    for language in ("zh", "en", "all"):
        chosen = [a for a in answers if language in ("all", a["language"])]
        n = max(len(chosen), 1)
        scores[language] = {
            "questions": len(chosen),
            "accuracy": round(sum(a["hit"] for a in chosen) / n, 4),
            "language_match": round(sum(a["language_match"] for a in chosen) / n, 4),
            # Hits among the questions whose gold document was retrieved: what the model could answer.
            "accuracy_when_retrieved": round(
                sum(a["hit"] for a in chosen if a["retrieved_gold"])
                / max(sum(a["retrieved_gold"] for a in chosen), 1),
                4,
            ),
            # Declines among the questions whose gold document was not retrieved (higher is better).
            "declined_when_not_retrieved": round(
                sum(a["declined"] for a in chosen if not a["retrieved_gold"])
                / max(sum(not a["retrieved_gold"] for a in chosen), 1),
                4,
            ),
        }
    return scores


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| profile | accuracy zh | accuracy en | language match zh | language match en | TTFT p50 | "
        "decode tok/s p50 (pooled) | answer time p50 | peak RSS | prepare (convert) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, speed, prep = r["scores"], r["speed"], r["prepare"]
        lines.append(
            f"| {r['profile']} | {s['zh']['accuracy']:.2f} ({s['zh']['questions']}) | "
            f"{s['en']['accuracy']:.2f} ({s['en']['questions']}) | {s['zh']['language_match']:.2f} | "
            f"{s['en']['language_match']:.2f} | {speed['ttft_s']['p50']:.2f} s | "
            f"{speed['decode_tok_s']['p50']:.2f} ({speed['decode_tok_s_pooled']:.2f} pooled) | "
            f"{speed['total_s']['p50']:.1f} s | {r['peak_rss_gib']:.1f} GiB | "
            f"{prep['seconds']:.0f} s{'' if prep['converted'] else ' (cached)'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.model_choice")
    parser.add_argument("--profiles", nargs="+", default=["cpu-dev", "cpu-dev-1.5b"])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--port", type=int, default=0, help="default: the first free port in 8041-8049")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="prepare each model into an empty temporary cache (times conversion)",
    )
    args = parser.parse_args(argv)

    questions = [
        json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    if args.limit:
        questions = questions[: args.limit]
    # In a child process: the embedder (torch, ~1.5 GB) must not stay resident beside the model workers.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        passages, retrieval = pool.submit(retrieve_passages, questions, top_k=args.top_k).result()
    retrieved_gold = [
        any(p["doc"] == q["doc"] for p in ranked) for q, ranked in zip(questions, passages, strict=True)
    ]
    for language in ("zh", "en"):
        flags = [
            hit
            for q, hit in zip(questions, retrieved_gold, strict=True)
            if question_language(q["q"]) == language
        ]
        retrieval[f"gold_doc_in_top_{args.top_k}_{language}"] = round(sum(flags) / max(len(flags), 1), 4)
    print(f"retrieval: {retrieval}", flush=True)

    port = args.port or _pick_port(range(8041, 8050))
    log_dir = Path(tempfile.mkdtemp(prefix="model-choice-logs-"))
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []

    def save(complete: bool, partial: dict[str, Any] | None = None) -> Path:
        return write_result(
            "model_choice",
            {
                "complete": complete,
                "settings": {
                    "system_prompt": SYSTEM_PROMPT,
                    "temperature": 0.2,
                    "top_p": 0.9,
                    "max_tokens": args.max_tokens,
                    "top_k": args.top_k,
                    "questions": str(args.questions),
                    "profiles": args.profiles,
                    "cold_cache": args.cold,
                    "latin_share_for_en": LATIN_SHARE_FOR_EN,
                    "load_average_before": load_before,
                    "load_average_now": os.getloadavg(),
                },
                "retrieval": retrieval,
                "passages": [
                    {
                        "q": q["q"],
                        "doc": q["doc"],
                        "passages": [{k: p[k] for k in ("doc", "heading_path", "score")} for p in ranked],
                    }
                    for q, ranked in zip(questions, passages, strict=True)
                ],
                "profiles": results + ([partial] if partial else []),
            },
        )

    def stop(signum: int, _frame: object) -> None:
        # Unwind through run_profile's finally blocks: the worker is stopped, the temporary cache removed.
        raise SystemExit(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)

    for profile in args.profiles:
        results.append(
            run_profile(
                profile,
                questions,
                passages,
                retrieved_gold,
                port=port,
                max_tokens=args.max_tokens,
                cold=args.cold,
                log_dir=log_dir,
                # Progress is saved after every answer: an interrupted run still shows what it measured.
                on_answer=lambda answers, profile=profile: save(
                    False, {"profile": profile, "partial": True, "answers": answers}
                ),
            )
        )
        # Saved after every profile, so that a later failure keeps what was measured.
        path = save(complete=len(results) == len(args.profiles))
    print(table(results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
