"""The GPU section of the benchmark report: levels spoiled by kernels compiled while they were timed stay
out of the tables and comparisons, and the parallelism table compares each layout with TP=1."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.report import _parallelism_lines, clean_levels, latest_clean, spoiled_reason


def level(concurrency: int, tok_s: float, tpot_ms: float, **extra: Any) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "output_tok_s": tok_s,
        "tpot_s": {"p50": tpot_ms / 1000},
        "ttft_s": {"p50": 0.1, "p95": 0.2},
        **extra,
    }


def test_a_level_is_spoiled_by_a_note_a_kernel_count_or_the_runs_list() -> None:
    run = {
        "variant": "v",
        "spoiled_levels": [64],
        "levels": [
            level(1, 200, 4.0, kernels_compiled=0),
            level(16, 2000, 5.0, spoiled="a ~5 s stall before the first token"),
            level(64, 3000, 10.0),
            level(256, 4000, 40.0, kernels_compiled=3),
        ],
    }
    assert [spoiled_reason(run, lv) for lv in run["levels"]] == [
        None,
        "a ~5 s stall before the first token",
        "kernels compiled while it was timed",
        "3 kernels compiled while it was timed",
    ]
    assert [lv["concurrency"] for lv in clean_levels(run)] == [1]


def test_the_newest_clean_level_of_a_variant_wins() -> None:
    older = {"variant": "tp1", "levels": [level(1, 200, 4.0), level(16, 1900, 5.6)]}
    newer = {"variant": "tp1", "levels": [level(1, 190, 4.1, spoiled="stall"), level(16, 2000, 5.5)]}
    other = {"variant": "tp2", "levels": [level(1, 300, 3.0)]}
    best = latest_clean([older, newer, other], "tp1")
    assert best[1]["output_tok_s"] == 200  # the newer one-stream level was spoiled
    assert best[16]["output_tok_s"] == 2000


def test_parallelism_table_gives_ratios_to_tp1_and_says_what_was_not_measured() -> None:
    result = {
        "levels": [1, 16],
        "runs": [
            {"variant": "qwen3-tp1-tuned", "levels": [level(1, 200, 4.0), level(16, 2000, 5.0)]},
            {"variant": "qwen3-dp2-tuned", "levels": [level(1, 200, 4.0), level(16, 3000, 4.0)]},
            {"variant": "qwen3-tp2-tuned", "levels": [level(1, 250, 3.2, spoiled="stall")]},
        ],
    }
    text = "\n".join(_parallelism_lines(result))
    assert "| DP=2 (a replica per GPU) | 200 tok/s, 4.00 ms (1.00× tok/s, 1.00× TPOT) | " in text
    assert "3,000 tok/s, 4.00 ms (1.50× tok/s, 0.80× TPOT) |" in text
    assert "| TP=2 | not measured cleanly | not measured cleanly |" in text
    assert "| TP=2 + EP | not measured cleanly | not measured cleanly |" in text
    # The one-stream time per token is timed after the first token, so a stalled level still gives it.
    assert "TP=2 3.20 ms" in text


def test_deepseek_extrapolation_uses_the_measured_tp2_ep_overhead_when_there_is_one() -> None:
    from benchmarks.report import ASSUMED_COMMUNICATION_PER_LAYER_S, deepseek_8_gpu_estimate

    # 5 layers 2.00 ms, 8 layers 2.38 ms: 3 more MoE layers cost 0.38 ms.
    assumed = deepseek_8_gpu_estimate(2.00e-3, 2.38e-3, None)
    assert assumed["per_layer_s"] == pytest.approx(0.38e-3 / 3)
    assert assumed["rest_s"] == pytest.approx(2.38e-3 - 8 * 0.38e-3 / 3)
    assert assumed["one_gpu_61_s"] == pytest.approx(2.38e-3 + 53 * 0.38e-3 / 3)
    assert assumed["communication_s"] == ASSUMED_COMMUNICATION_PER_LAYER_S
    assert assumed["eight_gpus_61_s"] == pytest.approx(
        assumed["rest_s"] + 61 * (0.38e-3 / 3 / 8 + ASSUMED_COMMUNICATION_PER_LAYER_S)
    )
    # TP=2 + EP at 2.20 ms: the rest plus half of each layer is 1.873 ms, so splitting adds ~41 µs a layer.
    measured = deepseek_8_gpu_estimate(2.00e-3, 2.38e-3, 2.20e-3)
    expected = (2.20e-3 - assumed["rest_s"] - 8 * assumed["per_layer_s"] / 2) / 8
    assert measured["communication_s"] == pytest.approx(expected)
    assert 40e-6 < expected < 42e-6
    # A split that costs nothing beyond halving cannot make communication negative.
    assert deepseek_8_gpu_estimate(2.00e-3, 2.38e-3, 1.0e-3)["communication_s"] == 0.0


def test_deepseek_extrapolation_splits_the_output_head_with_the_layers() -> None:
    from benchmarks.report import deepseek_8_gpu_estimate

    # 2026-11-30: TP=2 + EP 1.91 ms; the stand-in head (151,936 x 7,168 BF16) takes 0.51 ms to read, the
    # published one (129,280 rows) 0.435 ms.
    estimate = deepseek_8_gpu_estimate(2.00e-3, 2.38e-3, 1.91e-3, head_s=0.51e-3, full_head_s=0.435e-3)
    per_layer = 0.38e-3 / 3
    fixed = 2.38e-3 - 8 * per_layer - 0.51e-3
    assert estimate["fixed_s"] == pytest.approx(fixed)
    # TP=2 halves the head too: what is left beyond the halves is the layers' communication.
    communication = (1.91e-3 - fixed - 0.51e-3 / 2 - 8 * per_layer / 2) / 8
    assert estimate["communication_s"] == pytest.approx(communication)
    assert 30e-6 < communication < 40e-6
    assert estimate["one_gpu_61_s"] == pytest.approx(2.38e-3 + 53 * per_layer - 0.51e-3 + 0.435e-3)
    assert estimate["eight_gpus_61_s"] == pytest.approx(
        fixed + 0.435e-3 / 8 + 61 * (per_layer / 8 + communication)
    )
    # Without the head split out, the halved head would read as a split that saves time.
    assert deepseek_8_gpu_estimate(2.00e-3, 2.38e-3, 1.91e-3)["communication_s"] < 10e-6


def test_speculative_section_reports_the_yield_and_the_gpu_estimate_from_measured_steps() -> None:
    from benchmarks.report import _speculative_section

    def run(name: str, tokens_per_step: float, drafted: float, accepted_rate: float) -> dict[str, Any]:
        return {
            "name": name,
            "tokens_per_step": tokens_per_step,
            "drafted_tokens": drafted,
            "acceptance_rate": accepted_rate,
            "decode_tok_s": {"p50": 10.0 * tokens_per_step, "p95": 12.0 * tokens_per_step},
            "ttft_s": {"p50": 0.3},
            "answer_tokens": {"p50": 80},
            "hits": 20,
            "language_matches": 24,
        }

    result = {
        "machine": {"date": "2026-11-30T01:00:00+00:00", "cpu_count": 2},
        "questions": 24,
        "languages": {"en": 12, "zh": 12},
        "passages": 4,
        "sampling": {"temperature": 0, "top_p": 0.9, "max_tokens": 400},
        "proposer": {
            "method": "ngram",
            "num_speculative_tokens": 4,
            "prompt_lookup_min": 2,
            "prompt_lookup_max": 4,
        },
        "runs": [run("cpu-dev", 1.0, 0, float("nan")), run("cpu-dev-ngram", 2.0, 800, 0.5)],
        "decode_speedup_p50": 2.0,
        "identical_answers": 24,
        "sampling_probes": [
            {
                "temperature": 0.2,
                "top_p": 1.0,
                "questions": 3,
                "acceptance_rate": 0.0,
                "finding": "broke its answers",
            }
        ],
    }
    # The CPU run's counters: 800 tokens in 400 steps, drafts found in 100 of them.
    result["runs"][1].update(generated_tokens=800.0, accepted_tokens=400.0, drafts=100.0)
    text = "\n".join(_speculative_section(result, {"runs": []}))
    assert "| cpu-dev | 1.00 | — | 10.0 / 12.0 | 300 ms | 80 | 20 of 24 | 24 of 24 |" in text
    assert "| cpu-dev-ngram | 2.00 | 50% | 20.0 / 24.0 | 300 ms | 80 | 20 of 24 | 24 of 24 |" in text
    assert (
        "temperature 0.2, top-p 1.0, 3 questions) the speculative worker accepted 0% of its drafts and broke"
        in text
    )
    assert "2.00× the baseline's" in text
    assert "24 of 24 were identical to the baseline's" in text
    assert "On one H200" not in text  # no GPU run of the shipped speculation yet
    # The GPU lease: without speculation 4.0 ms per step; with it (random weights) every one of 100 steps
    # checked drafts and yielded 4 tokens: 2.0 ms per token, so a step with drafts took 8.0 ms. The CPU's
    # answers draft in a quarter of their steps at 2 tokens per step: (0.25 × 8 + 0.75 × 4) / 2 = 2.5 ms.
    counters = {"generated_tokens": 400, "accepted_tokens": 300, "drafts": 100, "tokens_per_step": 4.0}
    gpu = {
        "runs": [
            {"variant": "qwen3-tp1-tuned", "session": "older", "levels": [level(1, 300, 3.0)]},
            {"variant": "qwen3-tp1-tuned", "session": "lease", "levels": [level(1, 200, 4.0)]},
            {
                "variant": "qwen3-tp1-ngram-graphs-tuned",
                "session": "lease",
                "levels": [level(1, 500, 2.0, engine_counters=counters)],
            },
        ]
    }
    text = "\n".join(_speculative_section(result, gpu))
    assert "checks 4 drafts for one stream took 8.00 ms, one without drafts 4.00 ms" in text
    assert "drafts found in 25% of the steps, 2.00 tokens per step) one stream gets 2.50 ms per token" in text


def test_speculation_estimate_mixes_steps_with_and_without_drafts() -> None:
    from benchmarks.report import speculative_tpot

    # Drafts in half of 100 steps at 6 ms mean step, 4 ms without: a drafted step costs 8 ms.
    counters = {"generated_tokens": 300, "accepted_tokens": 200, "drafts": 50, "tokens_per_step": 3.0}
    estimate = speculative_tpot(4e-3, 2e-3, counters, draft_share=0.5, tokens_per_step=1.5)
    assert estimate["drafted_step_s"] == pytest.approx(8e-3)
    assert estimate["tpot_s"] == pytest.approx((0.5 * 8e-3 + 0.5 * 4e-3) / 1.5)
    # Answers that never find drafts run at the speed without speculation.
    assert speculative_tpot(4e-3, 2e-3, counters, draft_share=0.0, tokens_per_step=1.0)[
        "tpot_s"
    ] == pytest.approx(4e-3)


def test_the_shipped_speculation_is_compared_with_the_same_lease_and_checked_answers() -> None:
    from benchmarks.report import _speculation_lines

    counters = {"generated_tokens": 400, "accepted_tokens": 300, "drafts": 100, "tokens_per_step": 4.0}
    result = {
        "runs": [
            {
                "variant": "qwen3-tp1-tuned",
                "session": "older",
                "levels": [level(1, 300, 3.0), level(16, 2000, 5.0)],
            },
            {
                "variant": "qwen3-tp1-tuned",
                "session": "lease",
                "levels": [level(1, 200, 4.0), level(16, 1800, 6.0)],
            },
            {
                "variant": "qwen3-tp1-ngram-tuned",
                "session": "lease",
                "settings": {"speculative_config": "{}"},
                "levels": [],
                "same_answers": {"compared": 8, "identical": 8},
                "checks": {"ok": True},
            },
            {
                "variant": "qwen3-tp1-ngram-graphs-tuned",
                "session": "lease",
                "levels": [level(1, 500, 2.0, engine_counters=counters)],
            },
            # A later comparison by a variant that does not speculate says nothing about speculation.
            {
                "variant": "qwen3-tp1-other",
                "session": "lease",
                "settings": {"speculative_config": "none"},
                "levels": [],
                "same_answers": {"compared": 8, "identical": 1},
            },
        ]
    }
    speculative = {
        "runs": [
            {"name": "cpu-dev-ngram", "generated_tokens": 800.0, "accepted_tokens": 400.0, "drafts": 100.0,
             "tokens_per_step": 2.0}
        ]
    }  # fmt: skip
    text = "\n".join(_speculation_lines(result, speculative))
    # Against the same lease's 4.0 ms, not the older lease's 3.0 ms; 16 streams were not measured with it.
    assert (
        "| 1 | 4.00 ms, 200 tok/s | 2.00 ms, 500 tok/s (4.00 tokens per step) | 8.00 ms | **2.50 ms** (1.60× faster) |"
        in text
    )
    assert "| 16 |" not in text
    assert "At one stream that is 2.50 ms per token, inside the goal of 3 ms" in text
    assert "greedy answers were identical to those without speculation in 8 of 8 prompts" in text
    assert "streaming and the JSON-schema decision passed" in text
    assert "1 of 8" not in text
    assert _speculation_lines({"runs": result["runs"][:2]}, speculative) == []


def test_a_baseline_measured_in_several_leases_is_their_median() -> None:
    from benchmarks.report import pooled_clean

    runs = [
        {"variant": "tp1", "levels": [level(64, 3300, 12.0), level(256, 3700, 48.0)]},
        {"variant": "tp1", "levels": [level(64, 3700, 10.0), level(256, 9999, 1.0, spoiled="stall")]},
        {"variant": "tp1", "levels": [level(64, 2700, 14.0), level(256, 2900, 69.0)]},
    ]
    pooled = pooled_clean(runs, "tp1")
    assert pooled[64]["output_tok_s"] == 3300
    assert pooled[64]["tpot_s"]["p50"] == pytest.approx(12e-3)
    assert pooled[64]["tok_s_range"] == (2700, 3700)
    assert pooled[256]["output_tok_s"] == pytest.approx(3300)  # the spoiled level does not count
    assert pooled[256]["runs"] == 2


def test_single_stream_time_per_token_leaves_spoiled_levels_out_when_a_clean_one_exists() -> None:
    from benchmarks.report import single_stream_tpot

    def level(tpot: float, **extra: object) -> dict[str, Any]:
        return {"concurrency": 1, "tpot_s": {"p50": tpot}, **extra}

    spoiled = level(2.06e-3, spoiled="kernels compiled while it was timed")
    assert single_stream_tpot({"levels": [spoiled, level(1.91e-3)]}) == pytest.approx(1.91e-3)
    # Only spoiled ones: still timed after the first token, so their mean stands.
    assert single_stream_tpot({"levels": [spoiled, level(2.00e-3, kernels_compiled=3)]}) == pytest.approx(
        2.03e-3
    )


def test_replicas_are_compared_with_splitting_the_model_over_the_same_gpus() -> None:
    from benchmarks.report import _replicas_against_splitting

    def levels(*tok_s: float) -> dict[int, dict[str, Any]]:
        return {c: {"output_tok_s": v} for c, v in zip((1, 16, 64, 256), tok_s, strict=True)}

    measured = {
        "qwen3-dp2-tuned": levels(216, 2340, 5046, 5692),
        "qwen3-tp2-tuned": levels(206, 2213, 3392, 4270),
        "qwen3-tp2-ep-tuned": {},
    }
    result = {"levels": [1, 16, 64, 256]}
    [line, _] = _replicas_against_splitting(result, measured)
    assert "1.05× / 1.06× / 1.49× / 1.33× the throughput of TP=2 at 1 / 16 / 64 / 256 streams" in line
    assert "TP=2 + EP" not in line  # not measured: not compared
    assert "Data parallelism wins at every level" in line
    # Where splitting wins a level, no verdict is drawn.
    measured["qwen3-tp2-tuned"] = levels(230, 2213, 3392, 4270)
    [line, _] = _replicas_against_splitting(result, measured)
    assert "0.94×" in line and "Data parallelism wins" not in line
    assert _replicas_against_splitting(result, {**measured, "qwen3-tp2-tuned": {}}) == []
