"""Build a tiny random Mixture-of-Experts checkpoint (Qwen3-MoE), optionally quantized to int8 W8A8.

Why this exists: the MoE, quantization and tensor-parallel paths of the model worker need a checkpoint to
exercise them in tests and CI, and no MoE or quantized model reaches our machines (there is no Hugging
Face Hub access). A model of a few layers with random weights starts in seconds and still runs every code
path a real one does: expert routing, fused experts, int8 GEMMs, sharding across ranks. Its output is
gibberish, but deterministic from run to run, which is what comparisons between deployments need.

The weights are drawn from a seeded generator, so the same seed always gives the same bytes. Vocabulary
and tokenizer come from the chat model's prepared folder, so every token id the tokenizer produces is valid
and the server's chat template works.

``quantize="w8a8-int8"`` writes the compressed-tensors ``int-quantized`` format that llm-compressor
produces: per-output-channel symmetric int8 weights with a float32 ``weight_scale``, activations quantized
dynamically per token at run time. Only the attention (and any dense MLP) projections are quantized. The
routed experts are listed in ``ignore`` and kept in bf16, because vLLM 0.32 has no int8 (nor int4) MoE
kernel for x86 CPUs without AMX: ``CPUExpertsInt8`` and ``CPUExpertsInt4`` require AMX tiles, Triton has no
CPU backend, and the server would stop with "No Int8 MoE backend supports the deployment configuration".
Embeddings, ``lm_head``, router gates and norms stay unquantized as in llm-compressor's usual recipes.
The unquantized twin (``quantize=None``) holds exactly the weights the int8 one was quantized from.

``o_proj`` stays unquantized too. It is row-parallel: at TP=2 each rank would quantize its half of the
activations with its own dynamic per-token scale, which TP=1 computes over the whole row, so the numerics
differ slightly and, with a random model's nearly tied logits, greedy tokens part ways (measured: 2 of 4
prompts). With ``o_proj`` in bf16, the int8 q/k/v projections (column-parallel: each rank quantizes the
same full activation row) still run the int8 kernel under tensor parallelism, and greedy output at TP=2
equals TP=1 exactly, which the tests check.

The result is cached like :mod:`inference.prepare`'s conversions: one folder per content key, built in a
temporary folder, renamed into place, with the marker written last, under a file lock.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.prepare import (
    MARKER_NAME,
    ModelPrepareError,
    Progress,
    exclusive_lock,
    file_sha256,
    staged_dir,
)

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_CONFIG", "QUANTIZE_SCHEMES", "WEIGHTS_NAME", "tiny_moe_prepare"]

QUANTIZE_SCHEMES = ("w8a8-int8",)

WEIGHTS_NAME = "model.safetensors"

DEFAULT_CONFIG: dict[str, Any] = {
    "hidden_size": 256,
    "num_hidden_layers": 2,
    # 4 query / 2 key-value heads of 64: each of two tensor-parallel ranks holds 2 and 1.
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    # Multiples of 32, the granularity vLLM's CPU MoE kernels ask for, also after a split across 2 ranks.
    "moe_intermediate_size": 128,
    # Dense MLP width, used only by layers listed in mlp_only_layers (none by default: every layer is MoE).
    "intermediate_size": 512,
    "mlp_only_layers": [],
    "decoder_sparse_step": 1,
    "norm_topk_prob": True,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1_000_000.0,
    "hidden_act": "silu",
}
"""Architecture of the tiny model; ``config_overrides`` may replace any of these keys and only these."""

_RECIPE_VERSION = 2
"""Part of the content key: bump it whenever the bytes written for the same inputs change."""

_INIT_STD = 0.02
"""Standard deviation of the random weights: the usual initializer range, so that activations stay in a
normal range through the layers and the logits are neither flat nor dominated by one token."""

_INT8_MAX = 127
_PREPARE_STEPS = 4  # weights, quantization, save, marker: what `progress` counts
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
)
"""Copied from ``tokenizer_dir`` when present; generation_config.json carries the chat model's end tokens."""

_EXPERT_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")


def _tokenizer_identity(tokenizer_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tokenizer folder's model config (vocabulary size, special ids) and the sha256 of each file copied.

    The vocabulary size is the chat model's embedding-table size (config.json ``vocab_size``, 151936 for
    Qwen2.5), the number the tokenizer was built against: with the same table size every id the tokenizer
    or the copied generation config can produce is a valid row of the new model.
    """
    config_path = tokenizer_dir / "config.json"
    if not (tokenizer_dir / "tokenizer.json").is_file() or not config_path.is_file():
        raise ModelPrepareError(
            f"{tokenizer_dir} is not a prepared model folder: it needs tokenizer.json and config.json"
        )
    source_config = json.loads(config_path.read_text(encoding="utf-8"))
    if not isinstance(source_config.get("vocab_size"), int):
        raise ModelPrepareError(f"{config_path} has no integer vocab_size")
    hashes = {
        name: file_sha256(tokenizer_dir / name)
        for name in _TOKENIZER_FILES
        if (tokenizer_dir / name).is_file()
    }
    return source_config, hashes


def _model_config(source_config: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """DEFAULT_CONFIG with ``overrides`` applied, plus the tokenizer's vocabulary size and special ids.

    Unknown override keys are refused: transformers would keep a misspelt key as a silent extra attribute.
    """
    unknown = sorted(set(overrides or {}) - set(DEFAULT_CONFIG))
    if unknown:
        raise ModelPrepareError(
            f"unknown tiny-moe config keys {unknown}; allowed: {', '.join(sorted(DEFAULT_CONFIG))}"
        )
    params = {**DEFAULT_CONFIG, **(overrides or {})}
    params["vocab_size"] = source_config["vocab_size"]
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        params[key] = source_config.get(key)
    # head_dim is derived (hidden_size / num_attention_heads), and grouped-query attention needs whole groups.
    heads, kv_heads = params["num_attention_heads"], params["num_key_value_heads"]
    if params["hidden_size"] % heads != 0 or heads % kv_heads != 0:
        raise ModelPrepareError(
            f"hidden_size {params['hidden_size']} must be a multiple of num_attention_heads {heads}, "
            f"and that a multiple of num_key_value_heads {kv_heads}"
        )
    return params


def _content_key(
    *, seed: int, quantize: str | None, params: dict[str, Any], tokenizer: dict[str, str]
) -> str:
    """A sha256 over everything the folder's bytes depend on: the cache is keyed by content, not by name."""
    recipe = {
        "recipe_version": _RECIPE_VERSION,
        "seed": seed,
        "quantize": quantize,
        "config": params,
        "tokenizer_sha256": tokenizer,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()


def _marker_matches(folder: Path, content_key: str) -> bool:
    """Whether ``folder`` is a finished build of exactly this recipe."""
    try:
        found = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and found.get("content_key") == content_key


def _moe_layers(params: dict[str, Any]) -> list[int]:
    """Indices of the layers vLLM and transformers build as sparse MoE blocks (the same rule both use)."""
    return [
        index
        for index in range(params["num_hidden_layers"])
        if index not in params["mlp_only_layers"]
        and params["num_experts"] > 0
        and (index + 1) % params["decoder_sparse_step"] == 0
    ]


def _tensor_shapes(params: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor of a Qwen3-MoE checkpoint, by its Hugging Face name, in a fixed generation order.

    Experts use the per-expert names (``experts.{e}.gate_proj``) of published Qwen3-MoE checkpoints:
    that is the layout vLLM's loader and compressed-tensors' ``ignore`` matching expect.
    """
    hidden, vocab = params["hidden_size"], params["vocab_size"]
    head_dim = hidden // params["num_attention_heads"]
    q_width = params["num_attention_heads"] * head_dim
    kv_width = params["num_key_value_heads"] * head_dim
    moe_layers = set(_moe_layers(params))
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for index in range(params["num_hidden_layers"]):
        layer = f"model.layers.{index}"
        shapes |= {
            f"{layer}.input_layernorm.weight": (hidden,),
            f"{layer}.post_attention_layernorm.weight": (hidden,),
            f"{layer}.self_attn.q_proj.weight": (q_width, hidden),
            f"{layer}.self_attn.k_proj.weight": (kv_width, hidden),
            f"{layer}.self_attn.v_proj.weight": (kv_width, hidden),
            f"{layer}.self_attn.o_proj.weight": (hidden, q_width),
            f"{layer}.self_attn.q_norm.weight": (head_dim,),
            f"{layer}.self_attn.k_norm.weight": (head_dim,),
        }
        if index in moe_layers:
            width = params["moe_intermediate_size"]
            shapes[f"{layer}.mlp.gate.weight"] = (params["num_experts"], hidden)
            for expert in range(params["num_experts"]):
                prefix = f"{layer}.mlp.experts.{expert}"
                shapes |= {
                    f"{prefix}.gate_proj.weight": (width, hidden),
                    f"{prefix}.up_proj.weight": (width, hidden),
                    f"{prefix}.down_proj.weight": (hidden, width),
                }
        else:
            width = params["intermediate_size"]
            shapes |= {
                f"{layer}.mlp.gate_proj.weight": (width, hidden),
                f"{layer}.mlp.up_proj.weight": (width, hidden),
                f"{layer}.mlp.down_proj.weight": (hidden, width),
            }
    shapes["model.norm.weight"] = (hidden,)
    shapes["lm_head.weight"] = (vocab, hidden)
    return shapes


def _random_weights(params: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """Draw all weights from one generator seeded with ``seed``, in _tensor_shapes order, as bf16.

    Norm scales are ones, as in a freshly initialised model. Values are rounded to bf16 here, once, so
    that the twin stores them exactly and the int8 checkpoint is quantized from those same values.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    for name, shape in _tensor_shapes(params).items():
        if len(shape) == 1:
            weights[name] = torch.ones(shape, dtype=torch.bfloat16)
        else:
            values = torch.randn(shape, generator=generator, dtype=torch.float32).mul_(_INIT_STD)
            weights[name] = values.to(torch.bfloat16)
    return weights


def _ignored_modules(params: dict[str, Any]) -> list[str]:
    """Linear modules left unquantized, named as compressed-tensors' ``ignore`` expects (no ``.weight``).

    ``lm_head`` and the router gates follow llm-compressor's recipes (quality is most sensitive there and
    they cost little); the experts are listed because vLLM 0.32 has no int8 MoE kernel for CPUs without
    AMX (see the module docstring). Embeddings and norms are not Linear modules, so the "Linear" target
    never matches them.
    """
    ignored = ["lm_head"]
    # Row-parallel: per-rank dynamic activation scales would make TP=2 differ from TP=1 (module docstring).
    ignored += [f"model.layers.{index}.self_attn.o_proj" for index in range(params["num_hidden_layers"])]
    for index in _moe_layers(params):
        ignored.append(f"model.layers.{index}.mlp.gate")
        ignored.extend(
            f"model.layers.{index}.mlp.experts.{expert}.{projection}"
            for expert in range(params["num_experts"])
            for projection in _EXPERT_PROJECTIONS
        )
    return ignored


def _quantization_config(ignored: list[str]) -> dict[str, Any]:
    """The compressed-tensors ``quantization_config`` of an llm-compressor W8A8 int8 (``int-quantized``) model."""
    common = {"num_bits": 8, "type": "int", "symmetric": True, "group_size": None, "block_structure": None}
    return {
        "quant_method": "compressed-tensors",
        "format": "int-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {**common, "strategy": "channel", "dynamic": False, "observer": "minmax"},
                "input_activations": {**common, "strategy": "token", "dynamic": True, "observer": None},
                "output_activations": None,
            }
        },
        "ignore": ignored,
        "kv_cache_scheme": None,
    }


def _quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``scale = max|row| / 127`` (float32), ``q = round(w / scale)``.

    The division runs in float64 against the float32 scale actually stored, so that
    ``|w - q * scale| <= scale / 2`` holds exactly for the values the checkpoint records.
    """
    import torch

    values = weight.to(torch.float64)
    scale = (values.abs().amax(dim=1, keepdim=True) / _INT8_MAX).to(torch.float32)
    # A row of zeros would divide by zero; any positive scale represents it exactly.
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    quantized = torch.round(values / scale.to(torch.float64)).clamp_(-_INT8_MAX, _INT8_MAX)
    return quantized.to(torch.int8), scale


def _quantized_weights(weights: dict[str, torch.Tensor], ignored: list[str]) -> dict[str, torch.Tensor]:
    """Replace each 2-D projection weight not in ``ignored`` by its int8 values and ``weight_scale``."""
    skip = {f"{module}.weight" for module in ignored} | {"model.embed_tokens.weight"}
    result: dict[str, torch.Tensor] = {}
    for name, tensor in weights.items():
        if tensor.dim() == 2 and name not in skip:
            module = name.removesuffix(".weight")
            result[name], result[f"{module}.weight_scale"] = _quantize_int8(tensor)
        else:
            result[name] = tensor
    return result


def tiny_moe_prepare(
    *,
    seed: int,
    quantize: str | None,
    tokenizer_dir: Path,
    cache_root: Path,
    config_overrides: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Make sure the tiny MoE checkpoint for ``seed`` exists in the cache, and return its folder.

    ``quantize`` is None for the bf16 model or ``"w8a8-int8"`` for its compressed-tensors int8 twin;
    both draw the same weights from the same seed. ``tokenizer_dir`` is a prepared chat-model folder
    (the cpu-dev profile's) whose tokenizer, chat template, generation config and vocabulary size are
    reused. ``config_overrides`` replaces keys of DEFAULT_CONFIG.

    The folder is ``cache_root / f"tiny-moe-{key[:16]}-{quantize or 'bf16'}"``, where ``key`` is a sha256
    over the seed, the scheme, the architecture and the tokenizer files: a finished folder is returned
    without touching torch, and a change to any input builds a new folder. Building takes seconds.
    """
    if quantize is not None and quantize not in QUANTIZE_SCHEMES:
        raise ModelPrepareError(
            f"unsupported quantize {quantize!r}; use None or one of {', '.join(QUANTIZE_SCHEMES)}"
        )
    source_config, tokenizer_hashes = _tokenizer_identity(tokenizer_dir)
    params = _model_config(source_config, config_overrides)
    key = _content_key(seed=seed, quantize=quantize, params=params, tokenizer=tokenizer_hashes)
    out_dir = cache_root / f"tiny-moe-{key[:16]}-{quantize or 'bf16'}"
    if _marker_matches(out_dir, key):
        return out_dir
    with exclusive_lock(cache_root / f".{out_dir.name}.lock"):
        # Another process may have finished the same work while this one waited for the lock.
        if _marker_matches(out_dir, key):
            return out_dir
        _build(
            out_dir=out_dir,
            seed=seed,
            quantize=quantize,
            params=params,
            tokenizer_dir=tokenizer_dir,
            tokenizer_files=sorted(tokenizer_hashes),
            content_key=key,
            progress=progress,
        )
    return out_dir


def _build(
    *,
    out_dir: Path,
    seed: int,
    quantize: str | None,
    params: dict[str, Any],
    tokenizer_dir: Path,
    tokenizer_files: list[str],
    content_key: str,
    progress: Progress | None,
) -> None:
    """Write the checkpoint into a temporary folder beside ``out_dir``, marker last, and rename it into place."""
    # Imported here, not at module level: the cache check must stay cheap in processes that never run torch.
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import Qwen3MoeConfig

    def step(done: int) -> None:
        if progress is not None:
            progress("tiny-moe", done, _PREPARE_STEPS)

    with staged_dir(out_dir) as work_dir:
        step(0)
        weights = _random_weights(params, seed)
        step(1)
        config_params = {key: value for key, value in params.items() if key != "rope_theta"}
        config = Qwen3MoeConfig(
            **config_params,
            rope_parameters={"rope_type": "default", "rope_theta": params["rope_theta"]},
            tie_word_embeddings=False,
            architectures=["Qwen3MoeForCausalLM"],
            dtype="bfloat16",
        ).to_diff_dict()
        if quantize == "w8a8-int8":
            ignored = _ignored_modules(params)
            weights = _quantized_weights(weights, ignored)
            config["quantization_config"] = _quantization_config(ignored)
        step(2)
        save_file(weights, str(work_dir / WEIGHTS_NAME), metadata={"format": "pt"})
        (work_dir / "config.json").write_text(
            json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        for name in tokenizer_files:
            shutil.copyfile(tokenizer_dir / name, work_dir / name)
        del weights
        step(3)
        marker = {
            "content_key": content_key,
            "seed": seed,
            "quantize": quantize,
            "tokenizer_dir": str(tokenizer_dir),
            # Recorded for diagnosis only: torch's generator decides the bytes, transformers the config.
            "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
        }
        (work_dir / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    step(4)
