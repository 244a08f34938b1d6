"""The GPU run's pieces that run anywhere: the decode-step byte floor and the model folders it prepares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.gpu_floor import (
    H200_FP8_FLOPS,
    active_weights,
    decode_bytes,
    floor_tpot_s,
    kv_bytes_of,
    level_floor_s,
    prefill_flops_per_token,
)
from benchmarks.gpu_run import CONFIGS, prepare

pytestmark = pytest.mark.slow  # prepare needs the bundled chat model converted (cpu-dev)


def _config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def test_deepseek_v3_reads_its_published_37_billion_active_parameters_per_token() -> None:
    full = {**_config("deepseek-v3-8-layers"), "num_hidden_layers": 61}
    per_token = decode_bytes(full).step_bytes(1, 0)
    # ~37B active parameters (DeepSeek-V3 report): FP8 weights + a bf16 output head.
    assert 36e9 < per_token < 39e9
    # 8×H200 at 4.8 TB/s each: a floor of about 1 ms per token.
    assert floor_tpot_s(full, batch=1, context=0, bandwidth=4.8e12, gpus=8) == pytest.approx(
        per_token / 8 / 4.8e12
    )


def test_qwen3_30b_a3b_reads_about_3_billion_active_parameters_per_token() -> None:
    bytes_one = decode_bytes(_config("qwen3-30b-a3b-fp8"))
    assert 3.0e9 < bytes_one.step_bytes(1, 0) < 3.6e9
    # More streams touch more experts (never more than all of them) and read more KV cache.
    assert bytes_one.step_bytes(1, 0) < bytes_one.step_bytes(16, 0) < bytes_one.step_bytes(256, 0)
    all_experts = (
        bytes_one.dense + bytes_one.head + bytes_one.moe_layers * bytes_one.experts * bytes_one.per_expert
    )
    assert bytes_one.step_bytes(100_000, 0) == pytest.approx(all_experts, rel=1e-6)
    assert bytes_one.step_bytes(1, 1000) - bytes_one.step_bytes(1, 0) == pytest.approx(
        1000 * bytes_one.kv_per_token
    )


def test_a_level_is_bound_by_decode_bytes_at_one_stream_and_by_prefill_flops_at_many() -> None:
    qwen3 = _config("qwen3-30b-a3b-fp8")
    # ~2.7B weights per token without the head (Qwen3-30B-A3B: 3.3B active with embeddings and head).
    assert 2.5e9 < active_weights(qwen3) < 3.0e9
    assert prefill_flops_per_token(qwen3, 0) == pytest.approx(2 * active_weights(qwen3))
    assert prefill_flops_per_token(qwen3, 2000) > prefill_flops_per_token(qwen3, 1000)
    one = level_floor_s(qwen3, requests=4, streams=1, prompt_tokens=1300, output_tokens=128, bandwidth=4.2e12)
    assert one == pytest.approx(4 * 128 * floor_tpot_s(qwen3, batch=1, context=1364, bandwidth=4.2e12))
    # Long prompts and many requests: the prompts' FLOPs take longer than the decode steps' bytes.
    many = level_floor_s(
        qwen3, requests=512, streams=256, prompt_tokens=30000, output_tokens=16, bandwidth=4.2e12
    )
    assert many == pytest.approx(512 * 30000 * prefill_flops_per_token(qwen3, 30000) / H200_FP8_FLOPS)
    # Two replicas share the prompts' compute.
    two = level_floor_s(
        qwen3, requests=512, streams=256, prompt_tokens=30000, output_tokens=16, bandwidth=4.2e12, replicas=2
    )
    assert two == pytest.approx(many / 2)


def test_an_fp8_kv_cache_halves_the_cache_bytes_of_a_step_and_nothing_else() -> None:
    qwen3 = _config("qwen3-30b-a3b-fp8")
    bf16, fp8 = decode_bytes(qwen3), decode_bytes(qwen3, kv_bytes=1)
    # 48 layers x (K, V) x 4 KV heads x 128 dims: 96 KiB per cached token in bf16.
    assert bf16.kv_per_token == 48 * 2 * 4 * 128 * 2 == 2 * fp8.kv_per_token
    assert bf16.step_bytes(256, 0) == fp8.step_bytes(256, 0)  # weights alike
    # 256 streams of ~1.4k tokens read more cache than experts: the FP8 cache's floor is far lower.
    assert 256 * 1400 * bf16.kv_per_token > bf16.step_bytes(256, 0) - bf16.dense - bf16.head
    assert floor_tpot_s(qwen3, batch=256, context=1400, bandwidth=4.2e12, kv_bytes=1) < 0.8 * floor_tpot_s(
        qwen3, batch=256, context=1400, bandwidth=4.2e12
    )
    assert kv_bytes_of({"kv_cache_dtype": "fp8_e4m3"}) == kv_bytes_of({"kv_cache_dtype": "fp8"}) == 1
    assert kv_bytes_of({"kv_cache_dtype": "auto"}) == kv_bytes_of({}) == 2


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="llama"):
        decode_bytes({"model_type": "llama"})


def test_prepared_folders_have_the_reasoning_and_tool_tokens_and_turn_thinking_off(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    prepare(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "qwen3-30b-a3b-fp8")
    assert tokenizer.convert_tokens_to_ids(["<think>", "</think>", "<｜tool▁calls▁begin｜>"]) == [
        151667,
        151668,
        151669,
    ]
    assert tokenizer("<think>x</think>")["input_ids"][0] == 151667
    messages = [{"role": "user", "content": "hi"}]
    off = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    on = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert off.endswith("<think>\n\n</think>\n\n") and not on.endswith("</think>\n\n")
    deepseek = json.loads((tmp_path / "deepseek-v3-5-layers" / "config.json").read_text())
    assert deepseek["num_hidden_layers"] == 5 and deepseek["vocab_size"] >= len(tokenizer)
