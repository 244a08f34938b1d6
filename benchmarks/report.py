"""Turns ``benchmarks/results/*.json`` into ``benchmarks/REPORT.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import read_results

REPORT = Path(__file__).resolve().parent / "REPORT.md"

# Capacity of the GPU profiles from the physical limit: at batch 1 each decoded
# token reads every active weight once, so time per token >= active bytes / bandwidth.
GPU_CAPACITY = [
    # profile, active weight bytes per token, GPUs, HBM bandwidth per GPU (B/s), published TPOT (s) and source
    (
        "deepseek-v3-fp8",
        37e9,
        8,
        4.8e12,
        0.0159,
        "vLLM DeepSeek recipe, 8×H200, 1 request: TTFT 560 ms, 15.9 ms/token",
    ),
    ("qwen3-30b-a3b-fp8", 3.3e9, 1, 4.8e12, None, "not measured by the project yet"),
]


def _inference_section(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Model worker (CPU profiles)",
        "",
        f"Measured {result['machine']['date']} on {result['machine']['cpu_count']} cores / "
        f"{result['machine']['memory_gib']} GiB. Baseline: the same worker's single stream in the same run.",
        "",
        "| profile | start→health | single-stream decode tok/s (p50) | aggregate tok/s at N streams | "
        "batching gain | TTFT p50 / p95 (1 stream) | TTFT p50 / p95 (N streams) | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in result["profiles"]:
        single, concurrent = p["single_stream"], p["concurrent"]
        lines.append(
            f"| {p['profile']} | {p['start_to_health_s']:.0f} s | {single['decode_tok_s']['p50']:.2f} | "
            f"{concurrent['aggregate_tok_s']:.2f} (N={concurrent['streams']}) | {p['batching_gain']:.2f}× | "
            f"{single['ttft_s']['p50'] * 1000:.0f} / {single['ttft_s']['p95'] * 1000:.0f} ms | "
            f"{concurrent['ttft_s']['p50'] * 1000:.0f} / {concurrent['ttft_s']['p95'] * 1000:.0f} ms | "
            f"{p['peak_rss_gib']:.1f} GiB |"
        )
    return lines + [""]


def _capacity_section() -> list[str]:
    lines = [
        "## GPU capacity from the physical limit",
        "",
        "At batch 1 a decoder step reads every active weight once, so the time per output token is at least "
        "(active weight bytes ÷ GPUs) ÷ HBM bandwidth per GPU (weights split evenly by tensor/expert parallelism; "
        "KV-cache reads, communication and kernel efficiency come on top).",
        "",
        "| profile | active bytes/token | GPUs | floor per token | published TPOT | share of floor |",
        "|---|---|---|---|---|---|",
    ]
    for name, active, gpus, bandwidth, published, source in GPU_CAPACITY:
        floor = active / gpus / bandwidth
        share = f"{floor / published:.0%}" if published else "—"
        published_text = f"{published * 1000:.1f} ms ({source})" if published else source
        lines.append(
            f"| {name} | {active / 1e9:.1f} GB | {gpus} | {floor * 1000:.2f} ms | {published_text} | {share} |"
        )
    return lines + [""]


def _ingestion_section(result: dict[str, Any]) -> list[str]:
    return [
        "## Knowledge base ingestion",
        "",
        f"Measured {result['machine']['date']}: {result['documents']} synthetic bilingual documents, "
        f"{result['chunks']} chunks. Baseline: the raw encoder on the same chunk texts, same batch size, same run.",
        "",
        "| pipeline chunks/s | raw encoder chunks/s | ratio (goal ≥ 0.8×) |",
        "|---|---|---|",
        f"| {result['pipeline_chunks_per_s']:.1f} | {result['raw_encoder_chunks_per_s']:.1f} | {result['ratio']:.2f}× |",
        "",
    ]


def _retrieval_section(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Hybrid retrieval",
        "",
        f"Measured {result['machine']['date']}; query embedding excluded (it is the same for every method). "
        "Baseline: exact cosine search (sequential scan) on the same queries, same run.",
        "",
        "| chunks | HNSW build | hybrid search p50 / p95 (goal p95 ≤ 20 ms) | exact vector search p50 / p95 | "
        "exact ÷ hybrid (p50) |",
        "|---|---|---|---|---|",
    ]
    for size in result["sizes"]:
        hybrid, exact = size["hybrid_search_ms"], size["exact_vector_search_ms"]
        lines.append(
            f"| {size['chunks']:,} | {size['index_build_s']:.1f} s | {hybrid['p50']:.1f} / {hybrid['p95']:.1f} ms | "
            f"{exact['p50']:.1f} / {exact['p95']:.1f} ms | {size['speedup_vs_exact_p50']:.1f}× |"
        )
    lines += [
        "",
        "| chunks | ef_search | HNSW recall@10 vs exact (goal ≥ 0.98) | HNSW p50 / p95 |",
        "|---|---|---|---|",
    ]
    for size in result["sizes"]:
        for ef, row in size["hnsw"].items():
            latency = row["latency_ms"]
            lines.append(
                f"| {size['chunks']:,} | {ef} | {row['recall_at_10']:.3f} | {latency['p50']:.1f} / {latency['p95']:.1f} ms |"
            )
    return lines + [""]


def _model_choice_section(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Model choice for the CPU worker",
        "",
        f"Measured {result['machine']['date']} on {result['machine']['cpu_count']} cores: the demo questions with the "
        f"{result['settings']['top_k']} best passages each, every profile in the same run. A hit is an answer containing "
        "one of the question's expected strings; the raw answers are in `results/model_choice.json`.",
        "",
        "| profile | hits zh | hits en | hits when the right passage was retrieved | answered in the customer's language "
        "| decode tok/s p50 | TTFT p50 / p95 | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in result["profiles"]:
        scores, speed = p["scores"], p["speed"]
        lines.append(
            f"| {p['profile']} | {scores['zh']['accuracy']:.2f} | {scores['en']['accuracy']:.2f} | "
            f"{scores['all']['accuracy_when_retrieved']:.2f} | {scores['all']['language_match']:.2f} | "
            f"{speed['decode_tok_s']['p50']:.1f} | {speed['ttft_s']['p50']:.1f} / {speed['ttft_s']['p95']:.1f} s | "
            f"{p['peak_rss_gib']:.1f} GiB |"
        )
    return lines + [""]


def _app_overhead_section(result: dict[str, Any]) -> list[str]:
    streams = next(key for key in result if key.startswith("concurrency_") and key != "concurrency_1")
    one, many = result["concurrency_1"], result[streams]
    build = result["in_process_retrieval_and_prompt_ms"]
    lines = [
        "## Assistant endpoint overhead (`/v1/chat/completions` vs the raw model worker)",
        "",
        f"Measured {result['machine']['date']} on {result['machine']['cpu_count']} cores, {result['profile']}, "
        f"{result['questions']} demo questions, greedy, {result['max_tokens']} output tokens at most. Baseline: the "
        "raw vLLM worker given the very same final prompts (the pipeline's retrieval and messages), same run. "
        "The app's added time includes embedding the question and hybrid search "
        f"(in-process p50 {build['p50']:.0f} ms).",
        "",
        "| concurrency | TTFT p50 app / raw | added TTFT p50 (goal ≤ 50 ms) | output tok/s app / raw | "
        "throughput ratio (goal ≥ 0.95×) |",
        "|---|---|---|---|---|",
        f"| 1 | {one['app']['ttft_ms']['p50']:.0f} / {one['raw']['ttft_ms']['p50']:.0f} ms | "
        f"{one['added_ttft_ms']['p50']:.0f} ms (paired) | {one['app']['output_tok_s']:.2f} / "
        f"{one['raw']['output_tok_s']:.2f} | {one['throughput_ratio']:.2f}× |",
        f"| {many['streams']} | {many['app']['ttft_ms']['p50']:.0f} / {many['raw']['ttft_ms']['p50']:.0f} ms | "
        f"{many['added_ttft_ms_p50']:.0f} ms | {many['app']['output_tok_s']:.2f} / {many['raw']['output_tok_s']:.2f} "
        f"(aggregate) | {many['throughput_ratio']:.2f}× |",
        "",
    ]
    return lines


SECTIONS = {
    "ingestion": _ingestion_section,
    "retrieval": _retrieval_section,
    "inference": _inference_section,
    "model_choice": _model_choice_section,
    "app_overhead": _app_overhead_section,
}


def write_report() -> Path:
    lines = ["# Benchmark report", "", "Written by `make bench` from `benchmarks/results/*.json`.", ""]
    for name, result in read_results().items():
        section = SECTIONS.get(name)
        if section:
            lines += section(result)
    lines += _capacity_section()
    REPORT.write_text("\n".join(lines))
    return REPORT
