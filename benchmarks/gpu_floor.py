"""The physical floor of a decode step: the bytes one step must read from GPU memory over the measured
copy bandwidth.

A decode step for B sequences reads every non-expert weight once, the experts the B tokens are routed
to, the output head, and each sequence's KV cache. With random weights (``--load-format dummy``)
routing is close to uniform, so the expected number of distinct experts a layer touches for B tokens
is E·(1 − (1 − k/E)^B). Weights are FP8 (1 byte) where the checkpoint quantizes them, bf16 (2 bytes)
for the output head and the router; the KV cache is bf16 unless the run stores it in FP8
(``kv_bytes``). Communication, kernel launch and the
scheduler's own time come on top: the floor is what no implementation can beat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

FP8, BF16 = 1, 2


@dataclass(frozen=True)
class DecodeBytes:
    dense: (
        float  # read once per step whatever B is (attention projections, dense MLPs, shared experts, router)
    )
    per_expert: float  # one routed expert of one layer
    moe_layers: int
    experts: int
    active_experts: int
    head: float  # output head
    kv_per_token: float  # KV-cache bytes per cached token, all layers

    def step_bytes(self, batch: int, context: float) -> float:
        touched = self.experts * (1 - (1 - self.active_experts / self.experts) ** batch)
        return (
            self.dense
            + self.head
            + self.moe_layers * touched * self.per_expert
            + batch * context * self.kv_per_token
        )


def _qwen3_moe(config: dict[str, Any]) -> DecodeBytes:
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2  # q, o + k, v
    router = hidden * config["num_experts"] * BF16
    return DecodeBytes(
        dense=layers * (attention * FP8 + router),
        per_expert=3 * hidden * config["moe_intermediate_size"] * FP8,
        moe_layers=layers,
        experts=config["num_experts"],
        active_experts=config["num_experts_per_tok"],
        head=config["vocab_size"] * hidden * BF16,
        kv_per_token=layers * 2 * kv_heads * head_dim * BF16,
    )


def _deepseek_v3(config: dict[str, Any]) -> DecodeBytes:
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    nope, rope, v_dim = config["qk_nope_head_dim"], config["qk_rope_head_dim"], config["v_head_dim"]
    q_lora, kv_lora = config["q_lora_rank"], config["kv_lora_rank"]
    attention = (
        hidden * q_lora
        + q_lora * heads * (nope + rope)
        + hidden * (kv_lora + rope)
        + kv_lora * heads * (nope + v_dim)
        + heads * v_dim * hidden
    )
    dense_layers = min(config["first_k_dense_replace"], layers)
    moe_layers = layers - dense_layers
    expert = 3 * hidden * config["moe_intermediate_size"] * FP8
    return DecodeBytes(
        dense=layers * attention * FP8
        + dense_layers * 3 * hidden * config["intermediate_size"] * FP8
        + moe_layers * (config["n_shared_experts"] * expert + hidden * config["n_routed_experts"] * BF16),
        per_expert=expert,
        moe_layers=moe_layers,
        experts=config["n_routed_experts"],
        active_experts=config["num_experts_per_tok"],
        head=config["vocab_size"] * hidden * BF16,
        # MLA caches the compressed latent and the rope key per token and layer.
        kv_per_token=layers * (kv_lora + rope) * BF16,
    )


def decode_bytes(config: dict[str, Any], *, kv_bytes: int = BF16) -> DecodeBytes:
    kind = config["model_type"]
    if kind == "qwen3_moe":
        found = _qwen3_moe(config)
    elif kind == "deepseek_v3":
        found = _deepseek_v3(config)
    else:
        raise ValueError(f"no byte model for {kind!r}")
    return replace(found, kv_per_token=found.kv_per_token * kv_bytes / BF16)


def kv_bytes_of(settings: dict[str, str]) -> int:
    """Bytes per KV-cache element of a run: ``kv_cache_dtype`` fp8 (any of its variants) stores one."""
    return FP8 if settings.get("kv_cache_dtype", "auto").startswith("fp8") else BF16


def floor_tpot_s(
    config: dict[str, Any],
    *,
    batch: int,
    context: float,
    bandwidth: float,
    gpus: int = 1,
    kv_bytes: int = BF16,
) -> float:
    """The shortest possible time per decode step, weights and KV cache split evenly over ``gpus``."""
    return decode_bytes(config, kv_bytes=kv_bytes).step_bytes(batch, context) / gpus / bandwidth


# Dense FP8 tensor-core peak of one H200 SXM (NVIDIA's datasheet, without sparsity).
H200_FP8_FLOPS = 1.979e15


def active_weights(config: dict[str, Any]) -> float:
    """Weights one token multiplies through, output head excluded (a prompt's prefill computes the head
    for its last token only): the FP8 weights count one per byte, the bf16 router two bytes each."""
    bytes_ = decode_bytes(config)
    router = bytes_.moe_layers * config["hidden_size"] * bytes_.experts * BF16
    return (
        bytes_.dense - router + router / BF16 + bytes_.moe_layers * bytes_.active_experts * bytes_.per_expert
    )


def prefill_flops_per_token(config: dict[str, Any], context: float) -> float:
    """Two FLOPs per weight, plus causal attention over half the context on average."""
    layers, heads = config["num_hidden_layers"], config["num_attention_heads"]
    if config["model_type"] == "deepseek_v3":
        per_position = heads * (
            config["qk_nope_head_dim"] + config["qk_rope_head_dim"] + config["v_head_dim"]
        )
    else:
        per_position = heads * 2 * (config.get("head_dim") or config["hidden_size"] // heads)
    return 2 * active_weights(config) + 2 * layers * per_position * context / 2


def level_floor_s(
    config: dict[str, Any],
    *,
    requests: int,
    streams: int,
    prompt_tokens: float,
    output_tokens: int,
    bandwidth: float,
    replicas: int = 1,
    gpus_per_replica: int = 1,
    flops: float = H200_FP8_FLOPS,
    kv_bytes: int = BF16,
) -> float:
    """The shortest possible wall time of one benchmark level: ``requests`` requests on ``streams``
    closed-loop streams, no faster than all their prompts' FLOPs on all GPUs at peak, nor than their
    decode steps' bytes at the measured bandwidth (whichever is longer: the two can overlap)."""
    gpus = replicas * gpus_per_replica
    compute = requests * prompt_tokens * prefill_flops_per_token(config, prompt_tokens) / (flops * gpus)
    rounds = requests / streams
    step = floor_tpot_s(
        config,
        batch=max(1, streams // replicas),
        context=prompt_tokens + output_tokens / 2,
        bandwidth=bandwidth,
        gpus=gpus_per_replica,
        kv_bytes=kv_bytes,
    )
    return max(compute, rounds * output_tokens * step)
