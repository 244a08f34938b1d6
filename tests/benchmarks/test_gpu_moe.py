"""The GPU profiles' MoE layers run with kernel configurations vLLM tuned for the H200. The installed vLLM
(the CPU build) carries the same H200 files as vLLM 0.26.0, the GPU image's version (compared by hand on
2026-11-29: 9 block-FP8 H200 files, identical names)."""

from __future__ import annotations

import json

import pytest

from benchmarks.gpu_moe import fused_moe_config_name, profile_config_name, shipped_config_names
from benchmarks.gpu_run import CONFIGS
from inference.profiles import load

MODELS = {
    "qwen3-30b-a3b-fp8": "qwen3-30b-a3b-fp8",
    "deepseek-v3-fp8": "deepseek-v3-8-layers",  # the published DeepSeek-V3 shapes (layers don't matter here)
    "deepseek-v3-fp8-2node": "deepseek-v3-8-layers",
}


def _config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


@pytest.mark.parametrize("profile", sorted(MODELS))
def test_every_block_fp8_gpu_profile_has_a_tuned_h200_moe_config(profile: str) -> None:
    shipped = shipped_config_names()
    assert len(shipped) > 100  # the installed vLLM carries its tuned configs
    assert profile_config_name(load(profile), _config(MODELS[profile])) in shipped


def test_the_shapes_follow_the_parallelism() -> None:
    qwen3, deepseek = _config("qwen3-30b-a3b-fp8"), _config("deepseek-v3-8-layers")
    name = fused_moe_config_name
    # The names vLLM 0.26 logged on the H200 runs (benchmarks/results/gpu.json).
    assert name(qwen3, tensor_parallel=1, expert_parallel=False).startswith(
        "E=128,N=768,device_name=NVIDIA_H200"
    )
    assert name(deepseek, tensor_parallel=1, expert_parallel=False).startswith("E=256,N=2048,")
    # Tensor parallelism splits columns; expert parallelism splits experts.
    assert name(qwen3, tensor_parallel=2, expert_parallel=False).startswith("E=128,N=384,")
    assert name(qwen3, tensor_parallel=2, expert_parallel=True).startswith("E=64,N=768,")
    assert name(deepseek, tensor_parallel=8, expert_parallel=True).startswith("E=32,N=2048,")
    assert name(deepseek, tensor_parallel=8, expert_parallel=False).startswith("E=256,N=256,")
    with pytest.raises(ValueError, match="evenly"):
        name(qwen3, tensor_parallel=3, expert_parallel=True)


def test_the_benchmark_only_shapes_without_a_tuned_config_are_known() -> None:
    """The shortened DeepSeek-V3 on one or two GPUs and Qwen3 at TP=2 + EP run with vLLM's default MoE
    config (the runs logged it); the report says so next to their numbers."""
    shipped = shipped_config_names()
    qwen3, deepseek = _config("qwen3-30b-a3b-fp8"), _config("deepseek-v3-8-layers")
    untuned = [
        fused_moe_config_name(deepseek, tensor_parallel=1, expert_parallel=False),
        fused_moe_config_name(deepseek, tensor_parallel=2, expert_parallel=True),
        fused_moe_config_name(qwen3, tensor_parallel=2, expert_parallel=True),
    ]
    assert not set(untuned) & shipped
