"""Which fused-MoE kernel configuration vLLM's Triton FP8 MoE backend looks up for a deployment, and
whether vLLM ships one tuned for the GPU.

vLLM reads block sizes, warps and stages per batch size from a JSON file named after the layer's local
shape: ``E`` experts on one GPU and ``N`` intermediate columns per expert on one GPU, the GPU's name, the
weight dtype and the quantization block. Without the file it falls back to a generic config and logs
"Using default MoE config. Performance might be sub-optimal!". Tensor parallelism without expert
parallelism splits every expert's columns (``N`` / TP); expert parallelism keeps experts whole and
spreads them over the ranks (``E`` / TP, with pipeline stages holding different layers, not experts).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from inference.profiles import Profile


def experts_and_columns(
    config: dict[str, Any], *, tensor_parallel: int, expert_parallel: bool
) -> tuple[int, int]:
    experts = config.get("n_routed_experts") or config["num_experts"]
    columns = config["moe_intermediate_size"]
    if expert_parallel:
        if experts % tensor_parallel:
            raise ValueError(f"{experts} experts do not spread evenly over {tensor_parallel} ranks")
        return experts // tensor_parallel, columns
    return experts, columns // tensor_parallel


def fused_moe_config_name(
    config: dict[str, Any], *, tensor_parallel: int, expert_parallel: bool, device: str = "NVIDIA_H200"
) -> str:
    """The file name vLLM looks for (``get_config_file_name`` in vLLM's fused_moe for block-FP8 weights)."""
    experts, columns = experts_and_columns(
        config, tensor_parallel=tensor_parallel, expert_parallel=expert_parallel
    )
    block = config["quantization_config"]["weight_block_size"]
    return f"E={experts},N={columns},device_name={device},dtype=fp8_w8a8,block_shape=[{block[0]},{block[1]}].json"


def profile_config_name(profile: Profile, config: dict[str, Any], device: str = "NVIDIA_H200") -> str:
    return fused_moe_config_name(
        config,
        tensor_parallel=profile.engine.tensor_parallel_size,
        expert_parallel=profile.engine.enable_expert_parallel,
        device=device,
    )


def shipped_config_names() -> set[str]:
    """The tuned configurations in the installed vLLM package (found without importing vLLM)."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return set()
    folder = (
        Path(next(iter(spec.submodule_search_locations)))
        / "model_executor"
        / "layers"
        / "fused_moe"
        / "configs"
    )
    return {path.name for path in folder.glob("*.json")}
