"""Reading vLLM's token counters and the tokens a forward step yields under speculative decoding."""

from __future__ import annotations

import math

import pytest

from benchmarks.engine_counters import read_counters, step_yield

METRICS = """\
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="shopdesk-chat"} 900.0
vllm:generation_tokens_total{engine="1",model_name="shopdesk-chat"} 100.0
vllm:generation_tokens_created{engine="0",model_name="shopdesk-chat"} 1.7e+09
vllm:spec_decode_num_drafts_total{engine="0",model_name="shopdesk-chat"} 250.0
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="shopdesk-chat"} 1000.0
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="shopdesk-chat"} 400.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="shopdesk-chat",position="0"} 200.0
"""


def test_counters_are_summed_over_engines_and_other_series_are_ignored() -> None:
    assert read_counters(METRICS) == {
        "generated": 1000.0,
        "drafts": 250.0,
        "drafted": 1000.0,
        "accepted": 400.0,
    }


def test_a_worker_without_speculation_reads_zero_drafts() -> None:
    plain = "\n".join(line for line in METRICS.splitlines() if "spec_decode" not in line)
    assert read_counters(plain) == {"generated": 1000.0, "drafts": 0.0, "drafted": 0.0, "accepted": 0.0}
    assert read_counters("") == {"generated": 0.0, "drafts": 0.0, "drafted": 0.0, "accepted": 0.0}


def test_tokens_per_step_counts_each_steps_own_token_and_its_accepted_drafts() -> None:
    before = {"generated": 1000.0, "drafts": 250.0, "drafted": 1000.0, "accepted": 400.0}
    after = {"generated": 2000.0, "drafts": 450.0, "drafted": 1800.0, "accepted": 900.0}
    got = step_yield(before, after)
    # 1,000 tokens, 500 of them accepted drafts: 500 steps.
    assert got["tokens_per_step"] == pytest.approx(2.0)
    assert got["acceptance_rate"] == pytest.approx(500 / 800)
    assert (got["generated_tokens"], got["accepted_tokens"], got["drafts"]) == (1000.0, 500.0, 200.0)
    # Without speculation every step yields one token and nothing was drafted.
    plain = step_yield(
        {"generated": 0.0, "drafts": 0.0, "drafted": 0.0, "accepted": 0.0},
        {"generated": 300.0, "drafts": 0.0, "drafted": 0.0, "accepted": 0.0},
    )
    assert plain["tokens_per_step"] == 1.0
    assert math.isnan(plain["acceptance_rate"])
