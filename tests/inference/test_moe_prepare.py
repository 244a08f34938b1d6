"""Tests for building the tiny random MoE checkpoint and its int8 W8A8 twin (no vLLM involved).

The tokenizer folder here is a stand-in with a small vocabulary: tiny_moe_prepare only reads its
config.json and copies its files, and a vocabulary of 4096 rows keeps each build well under a second,
where the chat model's 151936 rows would take seconds. Serving the real profiles is checked separately.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from inference.moe import DEFAULT_CONFIG, WEIGHTS_NAME, tiny_moe_prepare
from inference.prepare import MARKER_NAME, ModelPrepareError

VOCAB_SIZE = 4096
SEED = 1234
QUANTIZED_PROJECTIONS = ("q_proj", "k_proj", "v_proj")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared-folder stand-in: a config with the vocabulary size and special ids, tokenizer files."""
    folder = tmp_path_factory.mktemp("tokenizer")
    config = {"vocab_size": VOCAB_SIZE, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 1}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}', encoding="utf-8")
    (folder / "tokenizer_config.json").write_text('{"eos_token": "<end>"}', encoding="utf-8")
    (folder / "generation_config.json").write_text('{"eos_token_id": [2, 3]}', encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> dict[str, Path]:
    """The twin and the int8 checkpoint of one seed, built once for the module."""
    cache_root = tmp_path_factory.mktemp("cache")
    return {
        "twin": tiny_moe_prepare(
            seed=SEED, quantize=None, tokenizer_dir=tokenizer_dir, cache_root=cache_root
        ),
        "int8": tiny_moe_prepare(
            seed=SEED, quantize="w8a8-int8", tokenizer_dir=tokenizer_dir, cache_root=cache_root
        ),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _config(folder: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return config


def _quantized_modules(num_layers: int) -> set[str]:
    return {
        f"model.layers.{layer}.self_attn.{projection}"
        for layer in range(num_layers)
        for projection in QUANTIZED_PROJECTIONS
    }


def test_same_seed_gives_the_same_bytes(built: dict[str, Path], tokenizer_dir: Path, tmp_path: Path) -> None:
    again = {
        "twin": tiny_moe_prepare(seed=SEED, quantize=None, tokenizer_dir=tokenizer_dir, cache_root=tmp_path),
        "int8": tiny_moe_prepare(
            seed=SEED, quantize="w8a8-int8", tokenizer_dir=tokenizer_dir, cache_root=tmp_path
        ),
    }
    other_seed = tiny_moe_prepare(
        seed=SEED + 1, quantize=None, tokenizer_dir=tokenizer_dir, cache_root=tmp_path
    )

    for kind in ("twin", "int8"):
        assert again[kind].name == built[kind].name
        assert _sha256(again[kind] / WEIGHTS_NAME) == _sha256(built[kind] / WEIGHTS_NAME)
        assert _config(again[kind]) == _config(built[kind])
    assert other_seed.name != built["twin"].name
    assert _sha256(other_seed / WEIGHTS_NAME) != _sha256(built["twin"] / WEIGHTS_NAME)


def test_second_call_reuses_the_folder(built: dict[str, Path], tokenizer_dir: Path) -> None:
    cache_root = built["int8"].parent
    weights_mtime = (built["int8"] / WEIGHTS_NAME).stat().st_mtime_ns
    calls: list[tuple[str, int, int]] = []

    again = tiny_moe_prepare(
        seed=SEED,
        quantize="w8a8-int8",
        tokenizer_dir=tokenizer_dir,
        cache_root=cache_root,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )

    assert again == built["int8"]
    assert calls == []
    assert (built["int8"] / WEIGHTS_NAME).stat().st_mtime_ns == weights_mtime
    assert (again / MARKER_NAME).is_file()
    leftovers = [path.name for path in cache_root.iterdir() if ".tmp-" in path.name or ".stale-" in path.name]
    assert leftovers == []


def test_folder_is_rebuilt_when_its_marker_is_missing(tokenizer_dir: Path, tmp_path: Path) -> None:
    first = tiny_moe_prepare(seed=SEED, quantize=None, tokenizer_dir=tokenizer_dir, cache_root=tmp_path)
    digest = _sha256(first / WEIGHTS_NAME)
    (first / MARKER_NAME).unlink()
    (first / WEIGHTS_NAME).write_bytes(b"half-written")

    second = tiny_moe_prepare(seed=SEED, quantize=None, tokenizer_dir=tokenizer_dir, cache_root=tmp_path)

    assert second == first
    assert _sha256(second / WEIGHTS_NAME) == digest


def test_config_is_a_qwen3_moe_with_the_tokenizer_vocabulary(
    built: dict[str, Path], tokenizer_dir: Path
) -> None:
    for folder in built.values():
        config = _config(folder)
        assert config["architectures"] == ["Qwen3MoeForCausalLM"]
        assert config["model_type"] == "qwen3_moe"
        assert config["vocab_size"] == VOCAB_SIZE
        assert (config["bos_token_id"], config["eos_token_id"]) == (1, 2)
        assert config["num_local_experts"] == DEFAULT_CONFIG["num_experts"]
        assert config["num_experts_per_tok"] == DEFAULT_CONFIG["num_experts_per_tok"]
        assert config["max_position_embeddings"] == DEFAULT_CONFIG["max_position_embeddings"]
        for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
            assert (folder / name).read_bytes() == (tokenizer_dir / name).read_bytes()
    assert "quantization_config" not in _config(built["twin"])


def test_int8_config_is_compressed_tensors_w8a8(built: dict[str, Path]) -> None:
    quantization = _config(built["int8"])["quantization_config"]

    assert quantization["quant_method"] == "compressed-tensors"
    assert quantization["format"] == "int-quantized"
    (group,) = quantization["config_groups"].values()
    assert group["targets"] == ["Linear"]
    weights, activations = group["weights"], group["input_activations"]
    assert (weights["num_bits"], weights["type"], weights["strategy"]) == (8, "int", "channel")
    assert weights["symmetric"] is True and weights["dynamic"] is False
    assert (activations["num_bits"], activations["type"], activations["strategy"]) == (8, "int", "token")
    assert activations["symmetric"] is True and activations["dynamic"] is True


def test_int8_weights_are_per_channel_int8(built: dict[str, Path]) -> None:
    tensors = load_file(built["int8"] / WEIGHTS_NAME)
    scaled = {name.removesuffix(".weight_scale") for name in tensors if name.endswith(".weight_scale")}

    assert scaled == _quantized_modules(DEFAULT_CONFIG["num_hidden_layers"])
    for module in scaled:
        weight, scale = tensors[f"{module}.weight"], tensors[f"{module}.weight_scale"]
        assert weight.dtype == torch.int8
        assert scale.dtype == torch.float32
        assert scale.shape == (weight.shape[0], 1)
        assert bool((scale > 0).all())
        # absmax scaling: every row reaches the edge of the int8 range, nothing uses -128
        assert bool((weight.abs().amax(dim=1) == 127).all())


def test_ignored_modules_stay_unquantized(built: dict[str, Path]) -> None:
    tensors = load_file(built["int8"] / WEIGHTS_NAME)
    ignored = _config(built["int8"])["quantization_config"]["ignore"]
    layers, experts = DEFAULT_CONFIG["num_hidden_layers"], DEFAULT_CONFIG["num_experts"]

    assert "lm_head" in ignored
    assert {f"model.layers.{layer}.mlp.gate" for layer in range(layers)} <= set(ignored)
    expert_modules = {name for name in ignored if ".mlp.experts." in name}
    assert len(expert_modules) == layers * experts * 3
    for module in ignored:
        assert tensors[f"{module}.weight"].dtype == torch.bfloat16
        assert f"{module}.weight_scale" not in tensors
    for name, tensor in tensors.items():
        if "norm" in name or name == "model.embed_tokens.weight":
            assert tensor.dtype == torch.bfloat16


def test_int8_dequantizes_to_the_twin_within_half_a_step(built: dict[str, Path]) -> None:
    twin = load_file(built["twin"] / WEIGHTS_NAME)
    int8 = load_file(built["int8"] / WEIGHTS_NAME)

    assert {name for name in int8 if not name.endswith(".weight_scale")} == set(twin)
    for name, original in twin.items():
        module = name.removesuffix(".weight")
        if f"{module}.weight_scale" not in int8:
            assert torch.equal(int8[name], original), name
            continue
        scale = int8[f"{module}.weight_scale"].to(torch.float64)
        error = (original.to(torch.float64) - int8[name].to(torch.float64) * scale).abs()
        assert bool((error <= scale / 2 * (1 + 1e-9)).all()), name
        # The rounding is real: the int8 weights are not a lossless copy of the twin.
        assert float(error.max()) > 0


def test_weights_have_a_small_random_init(built: dict[str, Path]) -> None:
    twin = load_file(built["twin"] / WEIGHTS_NAME)
    embedding = twin["model.embed_tokens.weight"].float()

    assert embedding.shape == (VOCAB_SIZE, DEFAULT_CONFIG["hidden_size"])
    assert 0.018 < float(embedding.std()) < 0.022
    assert not torch.equal(twin["lm_head.weight"], twin["model.embed_tokens.weight"])
    assert bool((twin["model.norm.weight"] == 1).all())


def test_dense_mlp_layers_are_quantized_too(tokenizer_dir: Path, tmp_path: Path) -> None:
    folder = tiny_moe_prepare(
        seed=SEED,
        quantize="w8a8-int8",
        tokenizer_dir=tokenizer_dir,
        cache_root=tmp_path,
        config_overrides={"mlp_only_layers": [0]},
    )
    tensors = load_file(folder / WEIGHTS_NAME)
    ignored = _config(folder)["quantization_config"]["ignore"]

    for projection in ("gate_proj", "up_proj", "down_proj"):
        assert tensors[f"model.layers.0.mlp.{projection}.weight"].dtype == torch.int8
    assert "model.layers.0.mlp.gate.weight" not in tensors
    # Only the row-parallel o_proj of a dense layer stays unquantized.
    assert [name for name in ignored if name.startswith("model.layers.0.")] == [
        "model.layers.0.self_attn.o_proj"
    ]
    assert "model.layers.1.mlp.gate" in ignored


def test_twin_loads_in_transformers_with_every_weight(built: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    # With output_loading_info the call returns (model, info), which transformers' annotations omit.
    loaded: Any = AutoModelForCausalLM.from_pretrained(built["twin"], output_loading_info=True)
    model, info = loaded

    assert type(model).__name__ == "Qwen3MoeForCausalLM"
    assert {key: value for key, value in info.items() if value} == {}


def test_bad_arguments_are_refused(tokenizer_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelPrepareError, match="unsupported quantize"):
        tiny_moe_prepare(seed=SEED, quantize="fp8", tokenizer_dir=tokenizer_dir, cache_root=tmp_path)
    with pytest.raises(ModelPrepareError, match="unknown tiny-moe config keys"):
        tiny_moe_prepare(
            seed=SEED,
            quantize=None,
            tokenizer_dir=tokenizer_dir,
            cache_root=tmp_path,
            config_overrides={"hiden_size": 128},
        )
    with pytest.raises(ModelPrepareError, match="not a prepared model folder"):
        tiny_moe_prepare(seed=SEED, quantize=None, tokenizer_dir=tmp_path / "missing", cache_root=tmp_path)
    assert list(tmp_path.iterdir()) == []
