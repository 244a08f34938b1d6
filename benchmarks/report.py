"""Turns ``benchmarks/results/*.json`` into ``benchmarks/REPORT.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import read_results
from benchmarks.gpu_floor import decode_bytes, floor_tpot_s, kv_bytes_of, level_floor_s
from benchmarks.gpu_plans import SHIPPED

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
    (
        "qwen3-30b-a3b-fp8",
        3.3e9,
        1,
        4.8e12,
        0.00406,
        "measured by the project: 1×H200, vLLM 0.26, random weights, 1 stream; GPU section above",
    ),
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


def _widget_streams_section(result: dict[str, Any]) -> list[str]:
    ttft, turn, rewrite = result["ttft_s"], result["turn_s"], result["query_rewrite"]
    errors = ", ".join(f"{kind}: {n}" for kind, n in result["error_kinds"].items()) or "none"
    outcomes = ", ".join(f"{kind} {n}" for kind, n in result["outcomes"].items())
    return [
        "## Concurrent widget conversations",
        "",
        f"Measured {result['machine']['date']} on {result['machine']['cpu_count']} cores, {result['profile']}: "
        f"{result['streams']} visitors each start a conversation and stream one answer to a demo question through "
        f"the web server (uvicorn, one process), all at once; answers capped at {result['max_tokens']} tokens, "
        "first-token timeout raised to the batch's length; on the web server `DATABASE_POOL_MAX_SIZE="
        f"{result.get('web_pool_max_size', 0)}`, `DATABASE_CONN_MAX_AGE={result.get('web_conn_max_age', 60)}`. "
        "Client-side times from the start of each "
        "conversation.",
        "",
        "| streams | errors (goal 0) | open SSE streams peak | TTFT p50 / p95 | turn p50 / p95 | all done |",
        "|---|---|---|---|---|---|",
        f"| {result['streams']} | {result['errors']} ({errors}) | {result['open_streams_peak']} | "
        f"{ttft['p50']:.1f} / {ttft['p95']:.1f} s | {turn['p50']:.1f} / {turn['p95']:.1f} s | {result['total_s']:.0f} s |",
        "",
        f"Outcomes: {outcomes}. The model worker is the bottleneck: the web tier holds every stream open while "
        "vLLM prefills the batch on 2 cores. Under ASGI each request does its database work in a thread of its own, "
        "so 100 simultaneous requests want up to 100 PostgreSQL connections at once: without a pool, 6 of 100 failed "
        '("too many clients") with `DATABASE_CONN_MAX_AGE=0` and 81 of 100 with the default 60 s; with a bounded pool '
        "of 20 (what the web container runs with) requests wait for a connection instead, and none failed. "
        "A follow-up question (with history) first rewrites the question into a "
        f"standalone search query: {rewrite['ms']['p50']:.0f} ms p50 / {rewrite['ms']['p95']:.0f} ms p95 on an idle "
        f"worker ({rewrite['max_tokens']} output tokens at most; first questions skip it), e.g. "
        + "; ".join(f"“{e['question']}” → “{e['query']}”" for e in rewrite["examples"][:2])
        + ".",
        "",
    ]


def spoiled_reason(run: dict[str, Any], level: dict[str, Any]) -> str | None:
    """Why a level's timings do not count: kernels compiled while it was timed (counted by the run, or seen
    in its first-token times and noted), else None."""
    if level.get("spoiled"):
        return str(level["spoiled"])
    if level.get("kernels_compiled"):
        return f"{level['kernels_compiled']} kernels compiled while it was timed"
    if level["concurrency"] in run.get("spoiled_levels", []):
        return "kernels compiled while it was timed"
    return None


def clean_levels(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [level for level in run.get("levels", []) if not spoiled_reason(run, level)]


def latest_clean(runs: list[dict[str, Any]], variant: str) -> dict[int, dict[str, Any]]:
    """The newest clean measurement of each concurrency level of a variant (runs are stored oldest first)."""
    found: dict[int, dict[str, Any]] = {}
    for run in runs:
        if run["variant"] == variant:
            found.update({level["concurrency"]: level for level in clean_levels(run)})
    return found


def pooled_clean(runs: list[dict[str, Any]], variant: str) -> dict[int, dict[str, Any]]:
    """Every clean measurement of each level of a variant, pooled over leases: the median output tok/s and
    TPOT p50, with the lowest and highest tok/s and how many runs measured it. The many-stream levels of one
    variant varied by up to a third between leases with the same settings, so a comparison measured in other
    leases is made against the median, not against whichever lease came last."""
    found: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        if run["variant"] == variant:
            for level in clean_levels(run):
                found.setdefault(level["concurrency"], []).append(level)
    pooled = {}
    for concurrency, levels in found.items():
        tok_s = sorted(level["output_tok_s"] for level in levels)
        tpot = sorted(level["tpot_s"]["p50"] for level in levels)
        pooled[concurrency] = {
            "concurrency": concurrency,
            "output_tok_s": _median(tok_s),
            "tpot_s": {"p50": _median(tpot)},
            "tok_s_range": (tok_s[0], tok_s[-1]),
            "runs": len(levels),
        }
    return pooled


def _median(values: list[float]) -> float:
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def _gpu_runs_table(result: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    bandwidth = result["machine"]["copy_bandwidth_bytes_per_s"]
    lines = [
        "| variant | GPUs | streams | output tok/s | ceiling tok/s | share | TTFT p50 / p95 | TPOT p50 / p95 | floor TPOT | floor ÷ TPOT |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        config = result["configs"][run["model"]]
        replicas = len(run["gpus"])
        gpus_per_replica = len(run["gpus"][0].split(","))
        kv_bytes = kv_bytes_of(run.get("settings", {}))
        for level in clean_levels(run):
            # Each replica decodes its share of the streams; the weights of one replica are split over its GPUs.
            batch = max(1, level["concurrency"] // replicas)
            context = level["prompt_tokens"]["p50"] + result["max_tokens"] / 2
            floor = floor_tpot_s(
                config,
                batch=batch,
                context=context,
                bandwidth=bandwidth,
                gpus=gpus_per_replica,
                kv_bytes=kv_bytes,
            )
            ceiling = (
                level["requests"]
                * result["max_tokens"]
                / level_floor_s(
                    config,
                    requests=level["requests"],
                    streams=level["concurrency"],
                    prompt_tokens=level["prompt_tokens"]["p50"],
                    output_tokens=result["max_tokens"],
                    bandwidth=bandwidth,
                    replicas=replicas,
                    gpus_per_replica=gpus_per_replica,
                    kv_bytes=kv_bytes,
                )
            )
            ttft, tpot = level["ttft_s"], level["tpot_s"]
            lines.append(
                f"| {run['variant']} | {','.join(run['gpus'])} | {level['concurrency']} | {level['output_tok_s']:,.0f} | "
                f"{ceiling:,.0f} | {level['output_tok_s'] / ceiling:.0%} | "
                f"{ttft['p50'] * 1000:,.0f} / {ttft['p95'] * 1000:,.0f} ms | "
                f"{tpot['p50'] * 1000:.2f} / {tpot['p95'] * 1000:.2f} ms | {floor * 1000:.2f} ms | "
                f"{floor / tpot['p50']:.0%} |"
            )
    return lines


def single_stream_tpot(run: dict[str, Any]) -> float:
    """Mean TPOT p50 of a run's clean one-stream levels, or of all of them where none is clean: it is timed
    after the first token, so it stays usable where a compilation held the first token up."""
    ones = [level for level in clean_levels(run) if level["concurrency"] == 1] or [
        level for level in run["levels"] if level["concurrency"] == 1
    ]
    values = [level["tpot_s"]["p50"] for level in ones]
    return sum(values) / len(values)


# Two all-reduces per layer at ~20 µs each: the assumption until a tensor-parallel DeepSeek run measures it.
ASSUMED_COMMUNICATION_PER_LAYER_S = 40e-6


def deepseek_8_gpu_estimate(
    five_layers_s: float,
    eight_layers_s: float,
    tp2_ep_s: float | None,
    *,
    head_s: float = 0.0,
    full_head_s: float | None = None,
) -> dict[str, float]:
    """DeepSeek-V3's time per token at one stream, from the shortened models: 5 and 8 layers on one GPU give
    the time per (MoE) layer and the rest (embedding, output head, sampling, the engine's step). Of the rest,
    the output head (``head_s``: reading its weights on one GPU) is split by tensor parallelism like a layer,
    the remainder is fixed. 8 layers with TP=2 + EP, if measured, give what splitting a layer adds beyond
    halving it (its all-reduces). 61 layers on 8 GPUs: the fixed part, an eighth of the published model's
    head (``full_head_s``: its vocabulary is smaller than the stand-in tokenizer's), and per layer an eighth
    of its one-GPU time plus that communication."""
    full_head_s = head_s if full_head_s is None else full_head_s
    per_layer = (eight_layers_s - five_layers_s) / 3
    rest = eight_layers_s - 8 * per_layer
    fixed = max(0.0, rest - head_s)
    if tp2_ep_s is None:
        communication = ASSUMED_COMMUNICATION_PER_LAYER_S
    else:
        communication = max(0.0, (tp2_ep_s - fixed - head_s / 2 - 8 * per_layer / 2) / 8)
    return {
        "per_layer_s": per_layer,
        "rest_s": rest,
        "fixed_s": fixed,
        "head_s": head_s,
        "one_gpu_61_s": eight_layers_s + 53 * per_layer + full_head_s - head_s,
        "communication_s": communication,
        "eight_gpus_61_s": fixed + full_head_s / 8 + 61 * (per_layer / 8 + communication),
    }


def _gpu_section(result: dict[str, Any]) -> list[str]:
    machine = result["machine"]
    # Levels spoiled by kernels compiled while they were timed are left out here and told in words below.
    runs = [run for run in result["runs"] if clean_levels(run)]
    dates = sorted({session["date"][:10] for session in result.get("sessions", [])} or {result["date"][:10]})
    lines = [
        "## GPU profiles on real hardware",
        "",
        f"Measured {' and '.join(dates)} on {len(machine['gpus'])}× {machine['gpus'][0]} "
        f"({len(result.get('sessions', [])) or 1} leases of that kind), vLLM {machine['vllm']}, "
        f"torch {machine['torch']}, by `benchmarks/gpu_run.py` (the project's launcher starts each variant; "
        "`benchmarks.inference.measure_levels` loads it). Random weights of the published shapes "
        "(`--load-format dummy`); prompts built like the assistant's (system rules + 8 policy passages + the "
        f"question, ~1.3k tokens, each prompt used once); {result['max_tokens']} output tokens per request; closed "
        "loop, 2 requests per stream. Floor: bytes one decode step must read (weights, experts the batch touches, "
        "KV cache; `benchmarks/gpu_floor.py`) over the measured copy bandwidth, "
        f"{machine['copy_bandwidth_bytes_per_s'] / 1e12:.2f} TB/s.",
        "",
        *_gpu_runs_table(result, [run for run in runs if not run["model"].startswith("deepseek")]),
        "",
        "*Ceiling* is the level's output tokens over its shortest possible wall time: all prompts' FLOPs (two per "
        "active weight plus causal attention) at the H200's dense FP8 peak (1,979 TFLOP/s) on every GPU used, or all "
        "decode steps' bytes at the measured bandwidth, whichever is longer (`benchmarks/gpu_floor.py`). "
        "The floor at one stream is exact (8 experts per layer whatever the weights); above one stream it assumes "
        "uniform routing, which random weights do not give (DeepSeek at 16 streams ran faster than that floor), so "
        "read those ratios as rough. Variants: *profile* is `qwen3-30b-a3b-fp8` as committed until 2026-11-30 (vLLM picked the "
        "Triton FP8 MoE backend with vLLM's own H200 config for this block-FP8 shape, FlashAttention, async "
        "scheduling); *tuned* adds `max_num_seqs=256`, `max_num_batched_tokens=16384` and CUDA graphs for decode "
        "batches up to 256; *dp2* is the tuned variant on both GPUs, one replica each, streams spread round-robin; *cutlass-linear* "
        "swaps DeepGEMM's block-FP8 linear kernels for CUTLASS's (`--linear-backend cutlass`; a second, shorter run); "
        "*deepgemm-moe* runs the experts of large batches on DeepGEMM's grouped GEMMs (`--moe-backend deep_gemm`); "
        "*fp8-kv* stores the KV cache in FP8 (`--kv-cache-dtype fp8`; its floor counts one byte per element); "
        "*marlin* runs experts and linear layers on FP8 Marlin (W8A16) kernels; "
        "*ngram* speculates with prompt lookup (`ngram_gpu`, 4 drafts), *ngram-graphs* does so with CUDA graphs up "
        "to 1,280 tokens (the profile as shipped since 2026-11-30): random weights repeat themselves, so their drafts "
        "were accepted far more often than real answers' would be (4.57 tokens per step), and their floor, which "
        "counts one token per step, can be beaten; "
        "*tp2* splits every layer over both GPUs (`--tensor-parallel-size 2`), *tp2-ep* also spreads the experts "
        "(`--enable-expert-parallel`). A variant measured in more than one lease has a row per lease. "
        "Goals: ≤ 3 ms per output token at one stream, ≥ 8,000 tok/s at 256 streams, TTFT p95 ≤ 1.5 s at 64 streams.",
        "",
        *_speculation_lines(result, read_results().get("speculative")),
        *_parallelism_lines(result),
    ]
    deepseek = [run for run in runs if run["model"].startswith("deepseek")]
    by_variant = {run["variant"]: run for run in deepseek}
    if {"deepseek-v3-5-layers-tp1", "deepseek-v3-8-layers-tp1"} <= by_variant.keys():
        short = single_stream_tpot(by_variant["deepseek-v3-5-layers-tp1"])
        long = single_stream_tpot(by_variant["deepseek-v3-8-layers-tp1"])
        tp2_ep = [
            single_stream_tpot(run)
            for run in result["runs"]
            if run["variant"].startswith("deepseek-v3-8-layers-tp2-ep") and run.get("levels")
        ]
        shortened = result["configs"]["deepseek-v3-8-layers"]
        full = {**shortened, "num_hidden_layers": 61, "vocab_size": 129280}
        bandwidth = machine["copy_bandwidth_bytes_per_s"]
        estimate = deepseek_8_gpu_estimate(
            short,
            long,
            tp2_ep[-1] if tp2_ep else None,
            head_s=decode_bytes(shortened).head / bandwidth,
            full_head_s=decode_bytes(full).head / bandwidth,
        )
        floor_8 = floor_tpot_s(full, batch=1, context=1400, bandwidth=bandwidth, gpus=8)
        if tp2_ep:
            communication = (
                f". On two GPUs with TP=2 + EP the 8 layers took {tp2_ep[-1] * 1000:.2f} ms per token; against the fixed "
                "part plus half of the head and of each layer that leaves "
                f"≈ {estimate['communication_s'] * 1e6:.0f} µs per layer for its two all-reduces and whatever else "
                "splitting adds, kept per layer for 8 GPUs (an all-reduce over 8 GPUs takes somewhat longer than over "
                "2, so this side of the estimate is optimistic)"
            )
        else:
            communication = (
                " (not measured yet: the shortened DeepSeek-V3 has not run with TP=2 + EP). With an assumed "
                f"{estimate['communication_s'] * 1e6:.0f} µs per layer for the two all-reduces"
            )
        lines += [
            "### DeepSeek-V3 architecture, shortened to fit one GPU",
            "",
            "The published DeepSeek-V3 configuration (MLA, 256 routed + 1 shared experts, 8 active, block-wise FP8) "
            "with 8 layers (3 dense + 5 MoE) and with 5 (3 dense + 2 MoE), started by the `deepseek-v3-fp8` profile's "
            "flags: on one GPU without the multi-GPU sizes (*tp1*), and the 8 layers also over both GPUs with "
            "TP=2 + EP and Triton's experts (*tp2-ep*). The stand-in tokenizer's vocabulary is 151,936 instead of "
            "129,280. DeepGEMM's start-up warm-up was skipped to start in 3–4 minutes, so kernels compiled on first "
            "use: first-token times of several seconds in these rows are compilation, not serving (since 2026-11-30 "
            "a level during which kernels compiled is left out); the per-token times are not affected.",
            "",
            *_gpu_runs_table(result, deepseek),
            "",
            f"One stream: {short * 1000:.2f} ms per token at 5 layers, {long * 1000:.2f} ms at 8, so one MoE layer adds "
            f"≈ {estimate['per_layer_s'] * 1000:.3f} ms on one H200 (two single-stream runs each; the difference is "
            f"noisy, ±0.05 ms). The rest, {estimate['rest_s'] * 1000:.2f} ms, is the output head "
            f"({estimate['head_s'] * 1000:.2f} ms to read its BF16 weights) and a fixed "
            f"{estimate['fixed_s'] * 1000:.2f} ms (embedding, sampling, the engine's step). Extrapolated to 61 layers "
            f"on one GPU (if it fitted): {estimate['one_gpu_61_s'] * 1000:.1f} ms per token. On 8×H200 with TP8 + EP "
            "each GPU reads 1/8 of a layer's and of the head's bytes, so the weight term per layer falls to "
            f"≈ {estimate['per_layer_s'] / 8 * 1000:.3f} ms, to which every layer adds two all-reduces of a "
            f"7,168-wide vector{communication}, the estimate is {estimate['eight_gpus_61_s'] * 1000:.1f} ms per token, "
            f"against the published recipe's 15.9 ms at one request and a floor of {floor_8 * 1000:.2f} ms "
            "(37.7 GB per token over 8 GPUs).",
            "",
        ]
    return lines + _moe_configs_lines(result) + _gpu_later_runs(result)


PARALLEL_VARIANTS = [
    ("TP=1 (one GPU)", "qwen3-tp1-tuned"),
    ("DP=2 (a replica per GPU)", "qwen3-dp2-tuned"),
    ("TP=2", "qwen3-tp2-tuned"),
    ("TP=2 + EP", "qwen3-tp2-ep-tuned"),
]


def _parallelism_lines(result: dict[str, Any]) -> list[str]:
    """Issue 9's comparison: the same model and settings on one GPU, as two replicas, and split over two
    GPUs by tensor (and expert) parallelism; ratios against TP=1 per level, newest clean level of each."""
    measured = {name: latest_clean(result["runs"], name) for _, name in PARALLEL_VARIANTS}
    # TP=1 ran in more leases than the others: the median of its clean measurements.
    measured["qwen3-tp1-tuned"] = pooled_clean(result["runs"], "qwen3-tp1-tuned")
    baseline = measured["qwen3-tp1-tuned"]
    rows = []
    for label, name in PARALLEL_VARIANTS:
        cells = []
        for concurrency in result["levels"]:
            level = measured[name].get(concurrency)
            if not level:
                cells.append("not measured cleanly")
                continue
            cell = f"{level['output_tok_s']:,.0f} tok/s, {level['tpot_s']['p50'] * 1000:.2f} ms"
            if level.get("runs", 1) > 1:
                low, high = level["tok_s_range"]
                cell += f" (median of {level['runs']}: {low:,.0f}–{high:,.0f} tok/s)"
            base = baseline.get(concurrency)
            if base and name != "qwen3-tp1-tuned":
                cell += (
                    f" ({level['output_tok_s'] / base['output_tok_s']:.2f}× tok/s, "
                    f"{level['tpot_s']['p50'] / base['tpot_s']['p50']:.2f}× TPOT)"
                )
            cells.append(cell)
        rows.append(f"| {label} | {' | '.join(cells)} |")
    # Single-stream time per token survives a stalled first token (it is timed after it): told apart.
    single = []
    for label, name in PARALLEL_VARIANTS:
        values = [
            level["tpot_s"]["p50"]
            for run in result["runs"]
            if run["variant"] == name
            for level in run.get("levels", [])
            if level["concurrency"] == 1
        ]
        if values:
            single.append(f"{label} {values[-1] * 1000:.2f} ms")
    return [
        "### One GPU, two replicas, or one model over two GPUs",
        "",
        "`qwen3-30b-a3b-fp8` with the tuned settings on the same kind of host (2× H200): output tok/s and TPOT "
        "p50 per number of streams, and the ratio to TP=1 at the same level; each cell is the newest clean measurement "
        "of that level (the leases differ, the settings do not), except TP=1's, measured in more leases than the "
        "others: the median of its clean measurements, with their range.",
        "",
        f"| layout | {' | '.join(f'{c} stream' + ('s' if c > 1 else '') for c in result['levels'])} |",
        f"|---|{'---|' * len(result['levels'])}",
        *rows,
        "",
        "Time per output token at one stream (it is timed after the first token, so a stalled first token does "
        f"not touch it): {', '.join(single)}.",
        "",
        *_replicas_against_splitting(result, measured),
    ]


def _replicas_against_splitting(
    result: dict[str, Any], measured: dict[str, dict[int, dict[str, Any]]]
) -> list[str]:
    """Issue 9's question in numbers: two replicas against one model split over the same two GPUs."""
    replicas = measured["qwen3-dp2-tuned"]
    comparisons = []
    wins = []
    for label, name in (("TP=2", "qwen3-tp2-tuned"), ("TP=2 + EP", "qwen3-tp2-ep-tuned")):
        levels = [c for c in result["levels"] if c in replicas and c in measured[name]]
        if not levels:
            continue
        ratios = [replicas[c]["output_tok_s"] / measured[name][c]["output_tok_s"] for c in levels]
        wins.append(all(ratio > 1 for ratio in ratios))
        comparisons.append(
            f"{' / '.join(f'{r:.2f}×' for r in ratios)} the throughput of {label} at "
            f"{' / '.join(str(c) for c in levels)} streams"
        )
    if not comparisons:
        return []
    verdict = (
        " Data parallelism wins at every level for this model, which fits one GPU: the profile stays at TP=1 and "
        "a second GPU serves a second replica (`LLM_BASE_URL` with two URLs; Compose's `second-replica` profile)."
        if all(wins)
        else ""
    )
    return [f"Two replicas on the same two GPUs give {'; '.join(comparisons)}.{verdict}", ""]


def _moe_configs_lines(result: dict[str, Any]) -> list[str]:
    """Which tuned fused-MoE kernel config each deployment and each measured shape uses."""
    from benchmarks.gpu_moe import fused_moe_config_name, profile_config_name, shipped_config_names
    from inference.profiles import load

    shipped = shipped_config_names()
    models = {"qwen3-30b-a3b-fp8": "qwen3-30b-a3b-fp8", "deepseek-v3-fp8": "deepseek-v3-8-layers"}
    rows = []
    for profile, model in models.items():
        name = profile_config_name(load(profile), result["configs"][model])
        rows.append(
            f"| `{profile}` as deployed | `{name.split(',device')[0]}` | {'yes' if name in shipped else 'no'} |"
        )
    measured = [
        ("Qwen3 TP=2", "qwen3-30b-a3b-fp8", 2, False),
        ("Qwen3 TP=2 + EP", "qwen3-30b-a3b-fp8", 2, True),
        ("shortened DeepSeek-V3, 1 GPU", "deepseek-v3-8-layers", 1, False),
        ("shortened DeepSeek-V3, TP=2 + EP", "deepseek-v3-8-layers", 2, True),
    ]
    for label, model, tp, ep in measured:
        name = fused_moe_config_name(result["configs"][model], tensor_parallel=tp, expert_parallel=ep)
        rows.append(f"| {label} | `{name.split(',device')[0]}` | {'yes' if name in shipped else 'no'} |")
    return [
        "### Fused-MoE kernel configs",
        "",
        "vLLM's Triton FP8 MoE kernels read tuned block sizes per batch size from a file named after the layer's "
        "shape on one GPU (`benchmarks/gpu_moe.py`). vLLM ships H200 files for both GPU profiles as deployed, so "
        "a tuning run would only reproduce them; the shapes without one occur only in the shortened or "
        "two-GPU benchmark runs, and their rows above ran with vLLM's default config (the logs say so).",
        "",
        "| deployment | shape (local experts, columns per expert) | tuned H200 file in vLLM 0.26 |",
        "|---|---|---|",
        *rows,
        "",
    ]


def speculative_tpot(
    base_tpot_s: float,
    measured_tpot_s: float,
    measured: dict[str, float],
    *,
    draft_share: float,
    tokens_per_step: float,
) -> dict[str, float]:
    """Time per output token with prompt lookup for answers whose yield was measured elsewhere.

    A level's step without drafts costs what a step without speculation costs (``base_tpot_s``: one token per
    step); vLLM trims drafts the proposer did not find before the forward pass. From the speculating run
    (``measured_tpot_s`` and its counters) its mean step is TPOT × tokens per step; of its steps a share
    (drafts ÷ steps) checked drafts, which gives what a step that checks drafts costs. Answers with
    ``draft_share`` of their steps drafted and ``tokens_per_step`` tokens per step then take
    (share × drafted step + (1 − share) × plain step) ÷ tokens per step."""
    steps = measured["generated_tokens"] - measured["accepted_tokens"]
    measured_share = measured["drafts"] / steps
    mean_step = measured_tpot_s * measured["tokens_per_step"]
    drafted_step = base_tpot_s + (mean_step - base_tpot_s) / measured_share
    return {
        "drafted_step_s": drafted_step,
        "tpot_s": (draft_share * drafted_step + (1 - draft_share) * base_tpot_s) / tokens_per_step,
    }


# The variant without speculation the profile's prompt lookup (gpu_plans.SHIPPED) is compared with in the
# same lease.
WITHOUT_SPECULATION = "qwen3-tp1-tuned"


def cpu_yield(speculative: dict[str, Any]) -> dict[str, float]:
    """Tokens per step and the share of steps that checked drafts, from the CPU model's real answers."""
    run = next(run for run in speculative["runs"] if run["name"] == "cpu-dev-ngram")
    steps = run["generated_tokens"] - run["accepted_tokens"]
    return {"tokens_per_step": run["tokens_per_step"], "draft_share": run["drafts"] / steps}


def shipped_speculation(runs: list[dict[str, Any]], speculative: dict[str, Any]) -> list[dict[str, Any]]:
    """Per level measured both ways in the newest lease of the shipped speculation: the level without
    speculation (``base``), with it (``spec``) and the estimate for real answers (``estimate``,
    ``speculative_tpot`` with the CPU model's yield)."""
    shipped = [run for run in runs if run["variant"] == SHIPPED and clean_levels(run)]
    if not shipped:
        return []
    after = {level["concurrency"]: level for level in clean_levels(shipped[-1])}
    session = shipped[-1].get("session")
    before = latest_clean([run for run in runs if run.get("session") == session], WITHOUT_SPECULATION)
    real = cpu_yield(speculative)
    levels = []
    for concurrency in sorted(after.keys() & before.keys()):
        base, spec = before[concurrency], after[concurrency]
        estimate = speculative_tpot(
            base["tpot_s"]["p50"],
            spec["tpot_s"]["p50"],
            spec["engine_counters"],
            draft_share=real["draft_share"],
            tokens_per_step=real["tokens_per_step"],
        )
        levels.append({"concurrency": concurrency, "base": base, "spec": spec, "estimate": estimate})
    return levels


def _speculation_lines(result: dict[str, Any], speculative: dict[str, Any] | None) -> list[str]:
    """Before and after for the profile's prompt lookup: measured steps on the GPU, yield from real answers."""
    levels = shipped_speculation(result["runs"], speculative) if speculative else []
    if not levels:
        return []
    real = cpu_yield(speculative)
    rows = []
    for measured in levels:
        base, spec, estimate = measured["base"], measured["spec"], measured["estimate"]
        counters = spec["engine_counters"]
        rows.append(
            f"| {measured['concurrency']} | {base['tpot_s']['p50'] * 1000:.2f} ms, {base['output_tok_s']:,.0f} tok/s | "
            f"{spec['tpot_s']['p50'] * 1000:.2f} ms, {spec['output_tok_s']:,.0f} tok/s "
            f"({counters['tokens_per_step']:.2f} tokens per step) | {estimate['drafted_step_s'] * 1000:.2f} ms | "
            f"**{estimate['tpot_s'] * 1000:.2f} ms** ({base['tpot_s']['p50'] / estimate['tpot_s']:.2f}× faster) |"
        )
    estimates = {measured["concurrency"]: measured["estimate"]["tpot_s"] for measured in levels}
    one = estimates.get(1)
    verdict = (
        f"At one stream that is {one * 1000:.2f} ms per token, {'inside' if one <= 0.003 else 'outside'} the goal "
        "of 3 ms"
        if one
        else "One stream was not measured"
    )
    return [
        "### Prompt-lookup speculation: what the profile ships",
        "",
        "`qwen3-30b-a3b-fp8` now speculates with vLLM's GPU n-gram proposer (`ngram_gpu`, 4 drafts from the "
        "answer's last 2–4 tokens found earlier in the conversation) and captures CUDA graphs up to 1,280 tokens, "
        "so a step that checks 4 drafts for each of 256 requests still runs as a graph (without them, 64 streams "
        "ran without graphs and slower than without speculation), with the tuned batch limits. Random weights "
        "repeat themselves, so their drafts were accepted far more often than a real model's would be: the "
        "measured rows show what a step that checks drafts costs, not the gain. The gain comes from the yield "
        f"measured on the assistant's real prompts with the CPU model ({real['tokens_per_step']:.2f} tokens per "
        f'step, drafts found in {real["draft_share"]:.0%} of the steps; see "Prompt-lookup speculative decoding" '
        "below), with every step that found drafts costing what the GPU run measured and every other step what a "
        "step without speculation costs (`benchmarks.report.speculative_tpot`). Both GPU columns are from the same "
        "lease; TPOT p50.",
        "",
        "| streams | without speculation | with it, random weights | a step checking drafts | with it, real answers "
        "(estimated) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"{verdict}. The estimate assumes the production model copies from the passages as often as the CPU model "
        f"does.{_speculation_checks(result['runs'])}",
        "",
    ]


def _speculation_checks(runs: list[dict[str, Any]]) -> str:
    """What the client checks and the greedy comparison said about the speculating variants."""
    compared = [
        run
        for run in runs
        if run.get("same_answers") and run.get("settings", {}).get("speculative_config", "none") != "none"
    ]
    if not compared:
        return ""
    run = compared[-1]
    same = run["same_answers"]
    checks = run.get("checks") or {}
    text = (
        f" With the same proposer ({run['variant']}) greedy answers were identical to those without speculation "
        f"in {same['identical']} of {same['compared']} prompts"
    )
    if checks:
        text += f", and streaming and the JSON-schema decision {'passed' if checks.get('ok') else 'failed'}"
    return text + "."


def _gpu_later_runs(result: dict[str, Any]) -> list[str]:
    """Runs that did not start, and levels whose timings were spoiled: what they still showed."""
    later = [
        run
        for run in result["runs"]
        if run.get("error") or any(spoiled_reason(run, level) for level in run.get("levels", []))
    ]
    if not later:
        return []
    lines = ["### Runs that did not start, and levels that were spoiled", ""]
    for session in result.get("sessions", [])[1:]:
        lines += [
            f"Lease of {session['date'][:16].replace('T', ' ')} UTC ({session['plan']}): {session['note']}.",
            "",
        ]
    for run in later:
        if run.get("error"):
            text = f"**{run['variant']}** ({', '.join(run['gpus'])}) {run['error']}"
        else:
            spoiled = [level for level in run["levels"] if spoiled_reason(run, level)]
            reasons = {spoiled_reason(run, level) for level in spoiled}
            text = (
                f"**{run['variant']}** ({', '.join(run['gpus'])}): "
                f"{', '.join(str(level['concurrency']) for level in spoiled)} "
                f"stream{'s' if len(spoiled) > 1 or spoiled[0]['concurrency'] > 1 else ''} spoiled"
            )
            if len(reasons) == 1:
                text += f" ({reasons.pop()})"
            else:
                text += (
                    " ("
                    + "; ".join(f"{level['concurrency']}: {spoiled_reason(run, level)}" for level in spoiled)
                    + ")"
                )
            one = [level for level in run["levels"] if level["concurrency"] == 1]
            if one:
                text += (
                    f"; TPOT p50 at one stream {one[0]['tpot_s']['p50'] * 1000:.2f} ms (timed after the first token, "
                    "which the compilations held up)"
                )
        checks = run.get("checks")
        if checks:
            text += f"; client checks {'passed' if checks.get('ok') else 'failed'}: {checks.get('decide') or checks.get('error')}"
        text = text.rstrip(".")
        if run.get("note"):
            text += f". {run['note'][0].upper()}{run['note'][1:].rstrip('.')}"
        lines += [f"- {text}."]
    lines += [
        "",
        "What changed because of these runs: the launcher's `NVLINK_MULTICAST=off` (implied by `NCCL_NVLS_ENABLE=0`) "
        "sets `VLLM_FLASHINFER_ALLREDUCE_BACKEND=trtllm`, so FlashInfer no longer creates multicast memory where "
        "NCCL's is off, and at tensor-parallel sizes above 1 turns FlashInfer's all-reduce + RMSNorm fusion off "
        "(`pass_config.fuse_allreduce_rms=false`): with that, TP=2 started and answered. A tensor-parallel variant "
        "that cannot start falls back to plain NCCL all-reduce, and once one did the later ones start with theirs; a "
        "variant whose engine stops is stopped at once instead of being restarted by the launcher until the lease "
        "ends. The warm-up pass runs every level at full length; DeepGEMM's start-up warm-up is no longer skipped for "
        "measured Qwen3 variants (skipping it saved ~45 s and cost whole levels); the run counts, per level, the "
        "kernels compiled while it was timed: Triton's from vLLM's log, DeepGEMM's and FlashInfer's from their "
        "caches; the expert-parallel variants keep Triton's experts, so no first-use FlashInfer compilation holds "
        "their start.",
        "",
    ]
    return lines


def _speculative_section(result: dict[str, Any], gpu: dict[str, Any] | None = None) -> list[str]:
    """The CPU model's tokens per step with prompt lookup; with the GPU results (the committed ones unless
    given), the one-stream time per token it would give the Qwen3 profile."""
    runs = {run["name"]: run for run in result["runs"]}
    baseline, ngram = runs["cpu-dev"], runs["cpu-dev-ngram"]
    sampling = result["sampling"]
    proposer = result["proposer"]
    lines = [
        "## Prompt-lookup speculative decoding",
        "",
        f"Measured {result['machine']['date']} on {result['machine']['cpu_count']} cores with the CPU model "
        f"(cpu-dev): the {result['questions']} demo questions ({result['languages']['en']} English, "
        f"{result['languages']['zh']} Chinese), each asked as the assistant asks (its messages with the "
        f"{result['passages']} passages retrieval ranks first; temperature {sampling['temperature']}, top-p "
        f"{sampling['top_p']}, up to {sampling['max_tokens']} tokens). vLLM's n-gram proposer drafts up to "
        f"{proposer['num_speculative_tokens']} tokens by finding the answer's last "
        f"{proposer['prompt_lookup_min']}–{proposer['prompt_lookup_max']} tokens in the prompt; tokens per "
        "forward step from vLLM's counters (generated ÷ (generated − accepted)). Baseline: the same worker "
        "without speculation, same run.",
        "",
        "| worker | tokens per forward step | drafted tokens accepted | decode tok/s p50 / p95 | TTFT p50 | "
        "answer tokens p50 | hits | answered in the question's language |",
        "|---|---|---|---|---|---|---|---|",
    ]
    count = result["questions"]
    for run in (baseline, ngram):
        accepted = "—" if run["drafted_tokens"] == 0 else f"{run['acceptance_rate']:.0%}"
        lines.append(
            f"| {run['name']} | {run['tokens_per_step']:.2f} | {accepted} | "
            f"{run['decode_tok_s']['p50']:.1f} / {run['decode_tok_s']['p95']:.1f} | "
            f"{run['ttft_s']['p50'] * 1000:,.0f} ms | {run['answer_tokens']['p50']:.0f} | "
            f"{run['hits']} of {count} | {run['language_matches']} of {count} |"
        )
    lines += ["", f"Decode speed with speculation: {result['decode_speedup_p50']:.2f}× the baseline's (p50)."]
    if sampling["temperature"] == 0:
        lines += [
            f"Greedy answers must not change with speculation: {result['identical_answers']} of {count} were "
            "identical to the baseline's."
        ]
    for probe in result.get("sampling_probes", []):
        lines += [
            f"With sampling (temperature {probe['temperature']}, top-p {probe['top_p']}, {probe['questions']} "
            f"questions) the speculative worker accepted {probe['acceptance_rate']:.0%} of its drafts and "
            f"{probe['finding']}."
        ]
    if result.get("sampling_probes"):
        lines += [
            "The cause is a defect of the vLLM CPU build, not of speculation: to spread each request's temperature "
            "over its draft positions, its CPU replacement for vLLM's Triton `expand_kernel` casts the tensors to "
            "int64 copies, so the float temperatures land in a temporary and the per-position temperatures stay "
            "uninitialised memory (`tests/inference/test_vllm_cpu_speculative_sampling.py` shows it, as an expected "
            "failure until a release fixes it). Greedy requests skip that step, and GPUs keep the Triton kernel."
        ]
    lines += [""]
    gpu = gpu if gpu is not None else read_results().get("gpu")
    one = [
        level
        for level in shipped_speculation((gpu or {}).get("runs", []), result)
        if level["concurrency"] == 1
    ]
    if one:
        base, estimate = one[0]["base"], one[0]["estimate"]
        real = cpu_yield(result)
        lines += [
            f"On one H200 (GPU section) a step of `qwen3-30b-a3b-fp8` that checks 4 drafts for one stream took "
            f"{estimate['drafted_step_s'] * 1000:.2f} ms, one without drafts {base['tpot_s']['p50'] * 1000:.2f} "
            f"ms: checking 5 tokens reads the experts of 5 tokens, not of one. With this run's yield (drafts "
            f"found in {real['draft_share']:.0%} of the steps, {real['tokens_per_step']:.2f} tokens per step) "
            f"one stream gets {estimate['tpot_s'] * 1000:.2f} ms per token (goal ≤ 3 ms), if the GPU model "
            "copies from the passages as often as the CPU model does; random weights cannot show that on the "
            "GPU, so the GPU run measures the step costs and this run the yield.",
            "",
        ]
    return lines


SECTIONS = {
    "ingestion": _ingestion_section,
    "retrieval": _retrieval_section,
    "inference": _inference_section,
    "model_choice": _model_choice_section,
    "app_overhead": _app_overhead_section,
    "widget_streams": _widget_streams_section,
    "speculative": _speculative_section,
    "gpu": _gpu_section,
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
