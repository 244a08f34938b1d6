"""The GPU plan and the profiles agree: what a profile ships is what a measured variant ran."""

from __future__ import annotations

import json

from benchmarks.gpu_plans import (
    NGRAM_GPU_GRAPHS,
    PLANS,
    SHIPPED,
    SHIPPED_PROFILE_PLAN,
    SPECULATIVE_CAPTURE_SIZES,
)
from inference import profiles
from inference.profiles import vllm_command


def _variants(name: str) -> list:
    return [variant for plan in PLANS.values() for phase in plan for variant in phase if variant.name == name]


def test_the_qwen3_profile_ships_the_settings_its_speculating_variant_measured() -> None:
    profile = profiles.load("qwen3-30b-a3b-fp8")
    measured = _variants(SHIPPED)
    assert len(measured) == 2  # the lease that chose it, and the plan that measures it whole
    for variant in measured:
        # Overriding the profile with what the GPU run set changes nothing, so the profile is that variant.
        assert profiles.with_overrides(profile, variant.settings) == profile
    assert measured[0].settings["speculative_config"] == NGRAM_GPU_GRAPHS["speculative_config"]
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


def test_the_shipped_profile_plan_checks_it_whole_beside_its_baseline() -> None:
    shipped, baseline = SHIPPED_PROFILE_PLAN[0]
    assert shipped.name == SHIPPED and shipped.checks
    assert shipped.levels == [1, 16, 64, 256]
    # Greedy answers compared with the baseline of the same phase, on another GPU.
    assert shipped.same_answers_as == baseline.name
    assert shipped.gpus != baseline.gpus
    assert baseline.settings["speculative_config"] == "none"  # the profile speculates; its baseline does not
    assert (
        shipped.env == baseline.env == {}
    )  # DeepGEMM's start-up warm-up kept: no kernel compiles while timed
    # Then, if the lease has time, the baseline without prefix caching.
    [uncached] = SHIPPED_PROFILE_PLAN[1]
    assert uncached.settings == {**baseline.settings, "enable_prefix_caching": "false"}
    command = vllm_command(
        profiles.with_overrides(profiles.load("qwen3-30b-a3b-fp8"), uncached.settings), model="m"
    )
    assert "--no-enable-prefix-caching" in command


def test_only_the_variants_that_say_so_speculate() -> None:
    profile = profiles.load("qwen3-30b-a3b-fp8")
    for plan in PLANS.values():
        for phase in plan:
            for variant in phase:
                if variant.profile != "qwen3-30b-a3b-fp8" or not variant.settings:
                    continue  # the profile as it was committed then
                command = vllm_command(profiles.with_overrides(profile, variant.settings), model="m")
                assert ("--speculative-config" in command) == ("ngram" in variant.name), variant.name
