"""What the GPU run measures: each variant of a profile (settings, environment, GPUs, concurrency levels),
grouped in phases whose variants start together on different GPUs, in named plans."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

LEVELS = [1, 16, 64, 256]

# Graph sizes for decode batches up to 256: capturing fewer sizes starts faster than vLLM's default list.
CAPTURE_SIZES = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256]


@dataclass
class Variant:
    name: str
    profile: str
    model: str  # folder name under --models
    gpus: str  # CUDA_VISIBLE_DEVICES
    settings: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    levels: list[int] = field(default_factory=lambda: list(LEVELS))
    checks: bool = False  # client checks: streaming + JSON-schema decide
    replicas: list[str] = field(default_factory=list)  # extra GPUs serving the same variant (data parallel)
    extra_args: str = ""  # vLLM flags the profile has no field for (VLLM_EXTRA_ARGS)


TUNED = {
    "max_num_seqs": "256",
    "max_num_batched_tokens": "16384",
    "compilation_config": json.dumps({"cudagraph_capture_sizes": CAPTURE_SIZES}),
}
DEEPSEEK = {
    # Multi-GPU sizes of the deepseek-v3-fp8 profile don't apply to one GPU; everything else does.
    "tensor_parallel_size": "1",
    "enable_expert_parallel": "false",
    "max_model_len": "8192",
    "chat_template": "none",
    "compilation_config": json.dumps({"cudagraph_capture_sizes": [1, 2, 4, 8, 16, 32, 64]}),
}
# Phases run in order; the variants of one phase start together (each on its own GPUs).
# "single-gpu": what ran on 2026-11-29 (results in benchmarks/results/gpu.json).
SINGLE_GPU_PLAN: list[list[Variant]] = [
    [
        Variant("qwen3-tp1-profile", "qwen3-30b-a3b-fp8", "qwen3-30b-a3b-fp8", "0", checks=True),
        Variant("qwen3-tp1-tuned", "qwen3-30b-a3b-fp8", "qwen3-30b-a3b-fp8", "1", settings=TUNED),
    ],
    [
        Variant(
            "deepseek-v3-8-layers-tp1",
            "deepseek-v3-fp8",
            "deepseek-v3-8-layers",
            "0",
            settings=DEEPSEEK,
            env={"VLLM_DEEP_GEMM_WARMUP": "skip"},
            levels=[1, 1, 16],
            checks=True,
        ),
        Variant(
            "deepseek-v3-5-layers-tp1",
            "deepseek-v3-fp8",
            "deepseek-v3-5-layers",
            "1",
            settings=DEEPSEEK,
            env={"VLLM_DEEP_GEMM_WARMUP": "skip"},
            levels=[1, 1, 16],
        ),
    ],
    [
        Variant(
            "qwen3-dp2-tuned",
            "qwen3-30b-a3b-fp8",
            "qwen3-30b-a3b-fp8",
            "0",
            settings=TUNED,
            replicas=["1"],
        )
    ],
    [
        Variant(
            "qwen3-tp2-tuned",
            "qwen3-30b-a3b-fp8",
            "qwen3-30b-a3b-fp8",
            "0,1",
            settings={**TUNED, "tensor_parallel_size": "2"},
        )
    ],
    [
        Variant(
            "qwen3-tp2-ep-tuned",
            "qwen3-30b-a3b-fp8",
            "qwen3-30b-a3b-fp8",
            "0,1",
            settings={**TUNED, "tensor_parallel_size": "2", "enable_expert_parallel": "true"},
        )
    ],
    [
        Variant(
            "deepseek-v3-8-layers-tp2-ep",
            "deepseek-v3-fp8",
            "deepseek-v3-8-layers",
            "0,1",
            settings={**DEEPSEEK, "tensor_parallel_size": "2", "enable_expert_parallel": "true"},
            env={"VLLM_DEEP_GEMM_WARMUP": "skip"},
            levels=[1, 1, 16],
        )
    ],
]


# DeepGEMM's warm-up (503 kernels, 3.5 of the 7.3 minutes a cold start took) is skipped: the
# benchmark's own warm-up pass compiles what the measured batch sizes use before anything is timed.
FAST_START = {"VLLM_DEEP_GEMM_WARMUP": "skip"}
# Weight-only FP8 (W8A16) Marlin kernels for the experts and the linear layers: at one stream every
# layer's activations are quantized to FP8 before each block-FP8 GEMM; Marlin reads FP8 weights and
# keeps activations in bf16, one kernel fewer per GEMM. A lever for time per token at one stream.
MARLIN = {"moe_backend": "marlin"}
# "multi-gpu": the run on a machine with 2 GPUs. Phase 1 runs the profile as it is (TP=1, with the
# client checks: the JSON-schema decision with thinking turned off) beside the Marlin variant; then
# tensor parallelism over both GPUs, with and without expert parallelism, and the shortened DeepSeek-V3
# with TP=2 + EP. Data parallelism (two replicas) was measured in the single-gpu run.
MULTI_GPU_PLAN: list[list[Variant]] = [
    [
        Variant(
            "qwen3-tp1-profile", "qwen3-30b-a3b-fp8", "qwen3-30b-a3b-fp8", "0", env=FAST_START, checks=True
        ),
        Variant(
            "qwen3-tp1-marlin",
            "qwen3-30b-a3b-fp8",
            "qwen3-30b-a3b-fp8",
            "1",
            settings=MARLIN,
            env=FAST_START,
            extra_args="--linear-backend marlin",
        ),
    ],
    [
        Variant(
            "qwen3-tp2",
            "qwen3-30b-a3b-fp8",
            "qwen3-30b-a3b-fp8",
            "0,1",
            settings={"tensor_parallel_size": "2"},
            env=FAST_START,
        )
    ],
    [
        Variant(
            "qwen3-tp2-ep",
            "qwen3-30b-a3b-fp8",
            "qwen3-30b-a3b-fp8",
            "0,1",
            settings={"tensor_parallel_size": "2", "enable_expert_parallel": "true"},
            env=FAST_START,
        )
    ],
    [
        Variant(
            "deepseek-v3-8-layers-tp2-ep",
            "deepseek-v3-fp8",
            "deepseek-v3-8-layers",
            "0,1",
            settings={**DEEPSEEK, "tensor_parallel_size": "2", "enable_expert_parallel": "true"},
            env=FAST_START,
            levels=[1, 1, 16],
            checks=True,
        )
    ],
]
PLANS = {"single-gpu": SINGLE_GPU_PLAN, "multi-gpu": MULTI_GPU_PLAN}
