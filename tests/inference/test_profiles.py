"""Each profile renders exactly the vLLM command line it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from inference import profiles
from inference.profiles import ProfileError, engine_env, load, vllm_command

SERVER = ["python", "-m", "vllm.entrypoints.openai.api_server"]


def _flags(command: list[str]) -> dict[str, str | bool]:
    """--flag value pairs and bare --switches of a rendered command."""
    assert command[:3] == SERVER
    flags: dict[str, str | bool] = {}
    items = command[3:]
    index = 0
    while index < len(items):
        key = items[index]
        assert key.startswith("--"), key
        if index + 1 < len(items) and not items[index + 1].startswith("--"):
            flags[key] = items[index + 1]
            index += 2
        else:
            flags[key] = True
            index += 1
    return flags


def test_every_profile_loads() -> None:
    names = profiles.available()
    assert {"cpu-dev", "deepseek-v3-fp8", "deepseek-v3-awq", "qwen3-30b-a3b-fp8"} <= set(names)
    for name in names:
        assert load(name).name == name


def test_unknown_profile_names_the_available_ones() -> None:
    with pytest.raises(ProfileError, match="available: .*cpu-dev"):
        load("no-such-profile")


def test_cpu_dev_command() -> None:
    command = vllm_command(load("cpu-dev"), model="/models/qwen", port=8011)
    assert command == [
        *SERVER,
        "--model", "/models/qwen",
        "--served-model-name", "shopdesk-chat",
        "--host", "127.0.0.1",
        "--port", "8011",
        "--dtype", "float32",
        "--max-model-len", "8192",
        "--tensor-parallel-size", "1",
        "--enforce-eager",
        "--enable-auto-tool-choice",
        "--tool-call-parser", "hermes",
        "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]  # fmt: skip


def test_deepseek_v3_fp8_command_follows_the_vllm_recipe() -> None:
    profile = load("deepseek-v3-fp8")
    flags = _flags(vllm_command(profile, model=profile.source["model"], host="0.0.0.0", port=8000))
    assert flags["--model"] == "deepseek-ai/DeepSeek-V3-0324"
    assert flags["--tensor-parallel-size"] == "8"
    assert flags["--enable-expert-parallel"] is True
    assert flags["--trust-remote-code"] is True
    assert flags["--tool-call-parser"] == "deepseek_v3"
    assert flags["--enable-auto-tool-choice"] is True
    assert flags["--chat-template"].endswith("tool_chat_template_deepseekv3.jinja")
    # The checkpoint is natively FP8 (block-wise): no online quantization flag.
    assert "--quantization" not in flags
    assert "--enforce-eager" not in flags
    assert flags["--host"] == "0.0.0.0"


def test_deepseek_v3_awq_command() -> None:
    profile = load("deepseek-v3-awq")
    flags = _flags(vllm_command(profile, model=profile.source["model"]))
    assert flags["--tensor-parallel-size"] == "4"
    assert flags["--quantization"] == "awq_marlin"
    assert flags["--dtype"] == "float16"
    assert flags["--enable-expert-parallel"] is True
    assert flags["--tool-call-parser"] == "deepseek_v3"


def test_qwen3_moe_fp8_command() -> None:
    profile = load("qwen3-30b-a3b-fp8")
    flags = _flags(vllm_command(profile, model=profile.source["model"]))
    assert flags["--model"] == "Qwen/Qwen3-30B-A3B-FP8"
    assert flags["--tensor-parallel-size"] == "1"
    assert flags["--reasoning-parser"] == "qwen3"
    assert flags["--tool-call-parser"] == "hermes"
    assert flags["--enable-prefix-caching"] is True


def test_operator_overrides_reach_the_command(monkeypatch) -> None:
    profile = load("qwen3-30b-a3b-fp8")
    flags = _flags(
        vllm_command(profile, model="m", api_key="k3y", max_model_len=4096, gpu_memory_utilization=0.5)
    )
    assert flags["--api-key"] == "k3y"
    assert flags["--max-model-len"] == "4096"
    assert flags["--gpu-memory-utilization"] == "0.5"


def test_engine_env_binds_all_cores_and_lets_the_operator_override(monkeypatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    env = engine_env(load("cpu-dev"))
    assert env["VLLM_CPU_OMP_THREADS_BIND"].startswith("0-")
    assert env["HF_HUB_OFFLINE"] == "1"
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")
    assert engine_env(load("cpu-dev"))["VLLM_CPU_KVCACHE_SPACE"] == "4"


MULTICAST_NAMES = ("NVLINK_MULTICAST", *profiles.MULTICAST_OFF_ENV)


def test_nvlink_multicast_is_left_to_the_engine_unless_turned_off(monkeypatch) -> None:
    for name in MULTICAST_NAMES:
        monkeypatch.delenv(name, raising=False)
    env = engine_env(load("qwen3-30b-a3b-fp8"))
    assert not set(profiles.MULTICAST_OFF_ENV) & set(env)


def test_nvlink_multicast_off_turns_it_off_in_every_library(monkeypatch) -> None:
    for name in MULTICAST_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NVLINK_MULTICAST", "off")
    env = engine_env(load("deepseek-v3-fp8"))
    assert env["NCCL_NVLS_ENABLE"] == "0"
    assert env["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "1"
    assert env["NVSHMEM_DISABLE_NVLS"] == "1"
    # FlashInfer's "mnnvl" all-reduce creates multicast memory; on a 2x H200 VM with NCCL's multicast off
    # it failed with an illegal memory access at tensor-parallel size 2 (benchmarks/REPORT.md).
    assert env["VLLM_FLASHINFER_ALLREDUCE_BACKEND"] == "trtllm"


def test_one_library_with_multicast_off_turns_it_off_for_all(monkeypatch) -> None:
    for name in MULTICAST_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "0")
    assert engine_env(load("qwen3-30b-a3b-fp8"))["VLLM_FLASHINFER_ALLREDUCE_BACKEND"] == "trtllm"
    # An explicit "on" wins over the guess.
    monkeypatch.setenv("NVLINK_MULTICAST", "on")
    assert "VLLM_FLASHINFER_ALLREDUCE_BACKEND" not in engine_env(load("qwen3-30b-a3b-fp8"))


def _compilation(profile: profiles.Profile) -> dict | None:
    command = vllm_command(profile, model="m")
    if "--compilation-config" not in command:
        return None
    return json.loads(command[command.index("--compilation-config") + 1])


def test_multicast_off_turns_the_fused_all_reduce_off_only_with_tensor_parallelism(monkeypatch) -> None:
    for name in MULTICAST_NAMES:
        monkeypatch.delenv(name, raising=False)
    tp1 = load("qwen3-30b-a3b-fp8")
    tp2 = profiles.with_overrides(
        tp1, {"tensor_parallel_size": "2", "compilation_config": '{"cudagraph_capture_sizes": [1, 2]}'}
    )
    assert _compilation(tp2) == {"cudagraph_capture_sizes": [1, 2]}  # multicast left to vLLM
    monkeypatch.setenv("NVLINK_MULTICAST", "off")
    assert "pass_config" not in _compilation(tp1)  # one GPU: nothing to reduce
    assert _compilation(tp2) == {
        "cudagraph_capture_sizes": [1, 2],
        "pass_config": {"fuse_allreduce_rms": False},
    }
    assert _compilation(load("deepseek-v3-fp8"))["pass_config"] == {"fuse_allreduce_rms": False}
    # A profile that asks for the fusion keeps it.
    chosen = profiles.with_overrides(
        tp2, {"compilation_config": '{"pass_config": {"fuse_allreduce_rms": true}}'}
    )
    assert _compilation(chosen) == {"pass_config": {"fuse_allreduce_rms": True}}


def test_nvlink_multicast_with_a_bad_value_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("NVLINK_MULTICAST", "maybe")
    with pytest.raises(ProfileError, match="NVLINK_MULTICAST"):
        engine_env(load("qwen3-30b-a3b-fp8"))


def test_engine_settings_can_be_overridden_with_typed_values() -> None:
    profile = profiles.with_overrides(
        load("qwen3-30b-a3b-fp8"),
        {
            "tensor_parallel_size": "2",
            "enable_expert_parallel": "true",
            "max_num_batched_tokens": "16384",
            "moe_backend": "triton",
            "compilation_config": '{"cudagraph_capture_sizes": [1, 2, 4]}',
            "speculative_config": '{"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}',
            "chat_template": "none",
        },
    )
    command = vllm_command(profile, model="/models/qwen3")
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    assert "--enable-expert-parallel" in command
    assert command[command.index("--max-num-batched-tokens") + 1] == "16384"
    assert command[command.index("--moe-backend") + 1] == "triton"
    assert command[command.index("--compilation-config") + 1] == '{"cudagraph_capture_sizes":[1,2,4]}'
    assert json.loads(command[command.index("--speculative-config") + 1]) == {
        "method": "ngram",
        "num_speculative_tokens": 4,
        "prompt_lookup_max": 4,
    }
    assert "--chat-template" not in command
    # The profile file itself is unchanged.
    assert load("qwen3-30b-a3b-fp8").engine.tensor_parallel_size == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tensor_parallel_size", "two"),
        ("enable_expert_parallel", "maybe"),
        ("compilation_config", "[1, 2]"),
        ("compilation_config", "{not json"),
        ("speculative_config", '"ngram"'),
        ("no_such_setting", "1"),
        ("extra_args", "--foo"),
    ],
)
def test_bad_overrides_are_refused_with_the_setting_named(name: str, value: str) -> None:
    with pytest.raises(ProfileError, match=name):
        profiles.with_overrides(load("cpu-dev"), {name: value})


def test_cli_set_and_tensor_parallel_size_from_the_environment() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "TENSOR_PARALLEL_SIZE": "4"}
    out = subprocess.run(
        [sys.executable, "-m", "inference", "command", "--profile", "qwen3-30b-a3b-fp8", "--model", "/m",
         "--set", "enable_expert_parallel=true"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "--tensor-parallel-size 4" in out and "--enable-expert-parallel" in out and "--model /m" in out
    bad = subprocess.run(
        [sys.executable, "-m", "inference", "command", "--profile", "cpu-dev", "--set", "max_num_seqs"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr


def _command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inference", "command", "--profile", "qwen3-30b-a3b-fp8", "--model", "/m", *args],
        env={**os.environ, **env}, capture_output=True, text=True,
    )  # fmt: skip


def test_a_deploy_overrides_engine_settings_through_the_environment() -> None:
    settings = {
        "speculative_config": None,  # the profile's prompt lookup off
        "max_num_seqs": 128,
        "enable_expert_parallel": True,
        "compilation_config": {"cudagraph_capture_sizes": [1, 2]},
    }
    out = _command(env={"MODEL_ENGINE_SETTINGS": json.dumps(settings)})
    assert out.returncode == 0, out.stderr
    assert "--speculative-config" not in out.stdout
    assert "--max-num-seqs 128" in out.stdout and "--enable-expert-parallel" in out.stdout
    assert """--compilation-config '{"cudagraph_capture_sizes":[1,2]}'""" in out.stdout
    # The command line wins over the environment.
    out = _command("--set", "max_num_seqs=64", env={"MODEL_ENGINE_SETTINGS": '{"max_num_seqs": 128}'})
    assert "--max-num-seqs 64" in out.stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{max_num_seqs: 128}", "MODEL_ENGINE_SETTINGS is not JSON"),
        ('["max_num_seqs", 128]', "MODEL_ENGINE_SETTINGS must be a JSON object"),
        ('{"max_num_sequences": 128}', "unknown engine setting 'max_num_sequences'"),
        ('{"max_num_seqs": "many"}', "engine setting max_num_seqs"),
    ],
)
def test_bad_engine_settings_in_the_environment_are_refused_with_the_reason(value: str, message: str) -> None:
    out = _command(env={"MODEL_ENGINE_SETTINGS": value})
    assert out.returncode == 2 and message in out.stderr and out.stdout == ""
