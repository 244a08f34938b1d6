"""What the GPU run measures: each variant of a profile (settings, environment, GPUs, concurrency levels),
grouped in phases whose variants start together on different GPUs, in named plans."""

from __future__ import annotations

import dataclasses
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
    fallback: Variant | None = None  # run instead when this one stops before it is ready
    # A start that takes longer has hung (a cold start took 402 s with vLLM's 51 default graph sizes).
    ready_timeout_s: float = 600
    fallback_for: str | None = None  # on a fallback: the variant it stands in for
    note: str = ""  # why this variant runs as it does, recorded with its results
    # A variant of the same phase (same weights) whose greedy answers this one's must equal: speculative
    # decoding must not change them.
    same_answers_as: str | None = None


TUNED = {
    "max_num_seqs": "256",
    "max_num_batched_tokens": "16384",
    "compilation_config": json.dumps({"cudagraph_capture_sizes": CAPTURE_SIZES}),
    # The Qwen3 profile speculates since 2026-11-30: the variants built on these settings do not, unless they
    # say so (the speculating ones replace this value).
    "speculative_config": "none",
}
DEEPSEEK = {
    # Multi-GPU sizes of the deepseek-v3-fp8 profile don't apply to one GPU; everything else does.
    "tensor_parallel_size": "1",
    "enable_expert_parallel": "false",
    "max_model_len": "8192",
    "chat_template": "none",
    "compilation_config": json.dumps({"cudagraph_capture_sizes": [1, 2, 4, 8, 16, 32, 64]}),
}
# DeepGEMM's warm-up (503 kernels, 3.5 of the 7.3 minutes a cold start took) is skipped: the
# benchmark's own warm-up pass (every level at full length) runs what the measurement will, and the
# run counts kernels compiled while a level is timed.
FAST_START = {"VLLM_DEEP_GEMM_WARMUP": "skip"}

QWEN3 = "qwen3-30b-a3b-fp8"  # profile and model folder


def qwen3(name: str, gpus: str, **fields: object) -> Variant:
    return Variant(name, QWEN3, QWEN3, gpus, **fields)  # type: ignore[arg-type]


def deepseek_v3(name: str, model: str, gpus: str, **fields: object) -> Variant:
    return Variant(name, "deepseek-v3-fp8", model, gpus, **fields)  # type: ignore[arg-type]


# Phases run in order; the variants of one phase start together (each on its own GPUs).
# "single-gpu": what ran on 2026-11-29 (results in benchmarks/results/gpu.json).
SINGLE_GPU_PLAN: list[list[Variant]] = [
    [
        qwen3("qwen3-tp1-profile", "0", checks=True),
        qwen3("qwen3-tp1-tuned", "1", settings=TUNED),
    ],
    [
        deepseek_v3(
            "deepseek-v3-8-layers-tp1",
            "deepseek-v3-8-layers",
            "0",
            settings=DEEPSEEK,
            env=FAST_START,
            levels=[1, 1, 16],
            checks=True,
        ),
        deepseek_v3(
            "deepseek-v3-5-layers-tp1",
            "deepseek-v3-5-layers",
            "1",
            settings=DEEPSEEK,
            env=FAST_START,
            levels=[1, 1, 16],
        ),
    ],
    [
        qwen3(
            "qwen3-dp2-tuned",
            "0",
            settings=TUNED,
            replicas=["1"],
        )
    ],
    [
        qwen3(
            "qwen3-tp2-tuned",
            "0,1",
            settings={**TUNED, "tensor_parallel_size": "2"},
        )
    ],
    [
        qwen3(
            "qwen3-tp2-ep-tuned",
            "0,1",
            settings={**TUNED, "tensor_parallel_size": "2", "enable_expert_parallel": "true"},
        )
    ],
    [
        deepseek_v3(
            "deepseek-v3-8-layers-tp2-ep",
            "deepseek-v3-8-layers",
            "0,1",
            settings={**DEEPSEEK, "tensor_parallel_size": "2", "enable_expert_parallel": "true"},
            env=FAST_START,
            levels=[1, 1, 16],
        )
    ],
]


# Weight-only FP8 (W8A16) Marlin kernels for the experts and the linear layers: at one stream every
# block-FP8 GEMM first quantizes its activations; Marlin reads FP8 weights and keeps activations in
# bf16. vLLM 0.26 only allows FP8 Marlin on Hopper with VLLM_TEST_FORCE_FP8_MARLIN=1 (the run of
# 2026-11-29 21:12 stopped without it: "To apply FP8 Marlin on high-capability GPUs, please set ...").
MARLIN = {"moe_backend": "marlin"}
MARLIN_ENV = {"VLLM_TEST_FORCE_FP8_MARLIN": "1"}


# FP8 KV cache (FlashAttention 3 reads it on Hopper): at 256 streams of ~1.4k-token contexts a decode step
# reads ~34 GB of BF16 keys and values (96 KB per token for Qwen3-30B-A3B), more than the experts' 30 GB, so
# halving them is the byte lever left for many streams; one stream's context is too short to gain.
FP8_KV = {"kv_cache_dtype": "fp8"}


def nccl_all_reduce(variant: Variant) -> Variant:
    """The variant with vLLM's own all-reduce paths off (custom all-reduce, FlashInfer's fused
    all-reduce + RMSNorm, async TP, sequence parallelism): plain NCCL. The fallback when a
    tensor-parallel start fails: on 2026-11-29 both TP=2 starts died with an illegal memory access in
    their first forward pass, right after FlashInfer set up its multicast ("mnnvl") all-reduce on a host
    where NVLink multicast is off (the runs since set NVLINK_MULTICAST=off: FlashInfer's "trtllm")."""
    compilation = json.loads(variant.settings.get("compilation_config", "{}"))
    compilation["pass_config"] = {"fuse_allreduce_rms": False, "fuse_gemm_comms": False, "enable_sp": False}
    return dataclasses.replace(
        variant,
        name=f"{variant.name}-nccl",
        settings={**variant.settings, "compilation_config": json.dumps(compilation)},
        extra_args=f"{variant.extra_args} --disable-custom-all-reduce".strip(),
        fallback=None,
        fallback_for=variant.name,
    )


# A tensor-parallel start with 15 graph sizes should be ready in about 4 minutes (TP=1 with vLLM's 51
# default sizes took 402 s, 245 s of it graphs); one that takes 7 has hung, like the TP=2 start whose
# all-reduce workspace never finished on 2026-11-29, and its fallback gets the time instead.
TP_READY_TIMEOUT_S = 420


def with_fallback(variant: Variant) -> Variant:
    variant = dataclasses.replace(variant, ready_timeout_s=TP_READY_TIMEOUT_S)
    return dataclasses.replace(variant, fallback=nccl_all_reduce(variant))


# DeepGEMM's grouped GEMMs for the experts when a batch is large (prefill), Triton's kernel when it is
# small (vLLM's TritonOrDeepGemmExperts, chosen by moe_backend=deep_gemm; "auto" picks plain Triton on
# Hopper). At 256 streams the assistant's ~1.3k-token prompts make the work mostly prefill: the byte and
# FLOP floor allows ~16,700 tok/s there and the profile reached 3,787 (23%), while at 16 streams it
# reached 63% of its floor, so the experts' prefill GEMMs are the suspect.
DEEPGEMM_MOE = {"moe_backend": "deep_gemm"}
# With expert parallelism vLLM 0.26 picks FlashInfer's CUTLASS experts on Hopper, which FlashInfer compiles
# on first use unless its precompiled kernels are installed (the vllm/vllm-openai image has them; the
# benchmark host has pip wheels only): on 2026-11-30 the TP=2 + EP start was still compiling them when its
# 420 s ran out. The expert-parallel variants keep Triton's experts, as TP=1 and TP=2 use, so the
# comparison is of the parallelism alone.
TRITON_MOE = {"moe_backend": "triton"}

# Prompt-lookup speculative decoding with vLLM's GPU n-gram proposer (the one that keeps asynchronous
# scheduling): the same drafts as the CPU benchmark's "ngram" (benchmarks/speculative.py measures how many
# tokens a step yields with a real model). How often random weights' answers repeat the prompt says
# nothing about real answers, so here the run reads what steps cost (vLLM's counters per level: steps,
# drafts, accepted tokens), not the gain.
NGRAM_GPU = {
    "speculative_config": json.dumps(
        {"method": "ngram_gpu", "num_speculative_tokens": 4, "prompt_lookup_min": 2, "prompt_lookup_max": 4}
    )
}

# Prompt lookup only while the batch is small: vLLM's dynamic speculative decoding picks the number of
# drafts per step from the number of running requests (here 4 up to 16 requests, none above), so many
# streams do not pay for checking drafts. vLLM then captures piecewise CUDA graphs only (the verification
# length changes at run time), which the one-stream level shows the cost of.
NGRAM_GPU_SMALL_BATCHES = {
    "speculative_config": json.dumps(
        {
            **json.loads(NGRAM_GPU["speculative_config"]),
            "num_speculative_tokens_per_batch_size": [[1, 16, 4], [17, 256, 0]],
        }
    )
}

# With 4 drafts a decode step of n requests checks 5n tokens: the tuned graph sizes (up to 256 tokens) stop at
# 51 requests and larger batches ran without CUDA graphs (2026-11-30: 64 streams slower than without
# speculation). These sizes reach 256 requests' 1,280 tokens.
SPECULATIVE_CAPTURE_SIZES = [*CAPTURE_SIZES, 320, 384, 512, 640, 768, 1024, 1280]
NGRAM_GPU_GRAPHS = {
    **NGRAM_GPU,
    "compilation_config": json.dumps({"cudagraph_capture_sizes": SPECULATIVE_CAPTURE_SIZES}),
}

# The qwen3-30b-a3b-fp8 profile as shipped since 2026-11-30: prompt lookup with CUDA graphs for 5 tokens per
# request and the tuned batch limits (these settings only restate the profile's own; a test checks it).
SHIPPED = "qwen3-tp1-ngram-graphs-tuned"

# "multi-gpu": runs on a machine with 2 GPUs, in order of what the open issues need most. On 2026-11-30
# 05:29 the first two phases ran as one run, the next two as runs of their own (--only), started once the
# first phase showed that 64 streams with drafts outgrew the CUDA graphs.
# 1. The TP=1 baseline again in the same run (with the client checks), beside prompt-lookup speculation
#    (the lever for one stream: benchmarks/speculative.py measured 1.86 tokens per step with the CPU model
#    on the assistant's prompts; here vLLM's counters give the steps, the drafts among them and so what a
#    step that checks drafts costs; its client checks run structured output with it).
# 2. FP8 KV cache beside DeepGEMM experts, every level (the same-run comparison with phase 1's baseline).
# 3. Prompt lookup for small batches only (vLLM's dynamic speculative decoding; its GPU proposer refused it)
#    beside Marlin W8A16 kernels at 1 and 16 streams.
# 4. Prompt lookup with CUDA graphs for 5 tokens per request: what the profile ships.
# 5-7. Measured cleanly on 2026-11-30 (benchmarks/REPORT.md), kept to repeat on another host: tensor
#    parallelism over both GPUs without and with expert parallelism, and the shortened DeepSeek-V3 with
#    TP=2 + EP at one stream. They skip DeepGEMM's start-up warm-up (FAST_START): at TP=2 it compiles
#    hundreds of GEMM shapes with nvcc and had not finished after 225 s on a fresh host; the full-length
#    warm-up pass before each level compiles what the level needs, and the per-level kernel count, which
#    reads DeepGEMM's cache, says whether it did.
# One-GPU Qwen3 variants keep the warm-up (~7 min cold start): without it, on 2026-11-29, kernels compiled
# inside timed levels and stalled every stream ~5 s.
# Once a tensor-parallel variant needed its fallback, the later ones start with theirs (run_plan).
MULTI_GPU_PLAN: list[list[Variant]] = [
    [
        qwen3("qwen3-tp1-tuned", "0", settings=TUNED, checks=True),
        qwen3(
            "qwen3-tp1-ngram-tuned",
            "1",
            settings={**TUNED, **NGRAM_GPU},
            checks=True,
            same_answers_as="qwen3-tp1-tuned",
        ),
    ],
    [
        qwen3("qwen3-tp1-fp8-kv-tuned", "0", settings={**TUNED, **FP8_KV}),
        qwen3("qwen3-tp1-deepgemm-moe-tuned", "1", settings={**TUNED, **DEEPGEMM_MOE}),
    ],
    [
        qwen3(
            "qwen3-tp1-ngram-small-batches-tuned",
            "0",
            settings={**TUNED, **NGRAM_GPU_SMALL_BATCHES},
            checks=True,
        ),
        qwen3(
            "qwen3-tp1-marlin-tuned",
            "1",
            settings={**TUNED, **MARLIN},
            env=MARLIN_ENV,
            extra_args="--linear-backend marlin",
            levels=[1, 16],
        ),
    ],
    # What the qwen3-30b-a3b-fp8 profile ships since (tests/benchmarks checks that they agree); 1, 16 and 64
    # streams were what the lease had time for.
    [qwen3(SHIPPED, "0", settings={**TUNED, **NGRAM_GPU_GRAPHS}, levels=[1, 16, 64])],
    [
        with_fallback(
            qwen3(
                "qwen3-tp2-tuned",
                "0,1",
                settings={**TUNED, "tensor_parallel_size": "2"},
                env=FAST_START,
                checks=True,
            )
        )
    ],
    [
        with_fallback(
            qwen3(
                "qwen3-tp2-ep-tuned",
                "0,1",
                settings={
                    **TUNED,
                    **TRITON_MOE,
                    "tensor_parallel_size": "2",
                    "enable_expert_parallel": "true",
                },
                env=FAST_START,
                checks=True,
            )
        )
    ],
    [
        with_fallback(
            deepseek_v3(
                "deepseek-v3-8-layers-tp2-ep",
                "deepseek-v3-8-layers",
                "0,1",
                settings={
                    **DEEPSEEK,
                    **TRITON_MOE,
                    "tensor_parallel_size": "2",
                    "enable_expert_parallel": "true",
                },
                env=FAST_START,
                levels=[1, 1],
                checks=True,
            )
        )
    ],
]
# "shipped-profile": the profile as shipped at every level with the client checks (streaming, the JSON-schema
# decision, both with speculation), its greedy answers against the same settings without speculation, and
# that baseline in the same run, one on each GPU. The lease of 2026-11-30 05:29 measured it at 1, 16 and
# 64 streams only, and ran the checks on the same proposer with smaller graphs.
SHIPPED_PROFILE_PLAN: list[list[Variant]] = [
    [
        qwen3(
            SHIPPED,
            "0",
            settings={**TUNED, **NGRAM_GPU_GRAPHS},
            checks=True,
            same_answers_as="qwen3-tp1-tuned",
        ),
        qwen3("qwen3-tp1-tuned", "1", settings=TUNED),
    ],
    # What the profile's prefix caching gives (on since the first profile, never measured off): every
    # prompt begins with the same system rules, so with the cache only the passages and question prefill.
    [qwen3("qwen3-tp1-no-prefix-caching-tuned", "0", settings={**TUNED, "enable_prefix_caching": "false"})],
]
PLANS = {"single-gpu": SINGLE_GPU_PLAN, "multi-gpu": MULTI_GPU_PLAN, "shipped-profile": SHIPPED_PROFILE_PLAN}
