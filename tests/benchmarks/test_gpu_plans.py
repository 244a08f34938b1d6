"""The GPU plan and the profiles agree: what a profile ships is what a measured variant ran."""

from __future__ import annotations

import json

from benchmarks.gpu_plans import MULTI_GPU_PLAN, NGRAM_GPU_GRAPHS, SPECULATIVE_CAPTURE_SIZES
from inference import profiles
from inference.profiles import vllm_command


def _variant(name: str):
    return next(variant for phase in MULTI_GPU_PLAN for variant in phase if variant.name == name)


def test_the_qwen3_profile_ships_the_settings_its_speculating_variant_measured() -> None:
    profile = profiles.load("qwen3-30b-a3b-fp8")
    measured = _variant("qwen3-tp1-ngram-graphs-tuned")
    # Overriding the profile with what the GPU run set changes nothing, so the profile is that variant.
    assert profiles.with_overrides(profile, measured.settings) == profile
    assert measured.settings["speculative_config"] == NGRAM_GPU_GRAPHS["speculative_config"]
    command = vllm_command(profile, model="/models/qwen3")
    speculative = json.loads(command[command.index("--speculative-config") + 1])
    assert speculative["method"] == "ngram_gpu"
    assert speculative["num_speculative_tokens"] == 4


def test_cuda_graphs_cover_a_full_batch_checking_every_draft() -> None:
    profile = profiles.load("qwen3-30b-a3b-fp8")
    drafts = profile.engine.speculative_config["num_speculative_tokens"]
    sizes = profile.engine.compilation_config["cudagraph_capture_sizes"]
    assert sizes == SPECULATIVE_CAPTURE_SIZES == sorted(sizes)
    # A decode step of max_num_seqs requests checks (1 + drafts) tokens each and must fit the largest graph.
    assert max(sizes) >= profile.engine.max_num_seqs * (1 + drafts)


def test_speculation_can_be_turned_off_for_one_run() -> None:
    profile = profiles.with_overrides(profiles.load("qwen3-30b-a3b-fp8"), {"speculative_config": "none"})
    assert "--speculative-config" not in vllm_command(profile, model="/models/qwen3")
