"""The GPU run's plan loop, on this machine: a variant whose engine cannot start must not hold the run
(the launcher restarts a stopped vLLM, so waiting for it would spend the whole device lease), its reason
is recorded, and its fallback runs next."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from benchmarks.gpu_plans import MULTI_GPU_PLAN, Variant
from benchmarks.gpu_run import run_phase, run_plan

pytestmark = pytest.mark.slow  # starts the CPU vLLM twice (it stops within seconds)


def plan(phases: list[list[Variant]], tmp_path: Path, results: dict, *, seconds: float) -> None:
    """The plan on a host with one GPU (the CPU here), within ``seconds``."""
    run_plan(
        phases,
        tmp_path / "models",
        tmp_path / "out",
        results,
        budget_end=time.monotonic() + seconds,
        only=None,
        levels=None,
        gpu_count=1,
    )


def test_a_variant_that_cannot_start_is_stopped_and_its_fallback_runs(tmp_path: Path) -> None:
    broken = Variant("cpu-no-model", "cpu-dev", "no-such-model", "0", levels=[1])
    fallback = dataclasses.replace(broken, name="cpu-no-model-fallback", fallback_for=broken.name)
    results: dict = {"runs": []}
    started = time.monotonic()
    plan([[dataclasses.replace(broken, fallback=fallback)]], tmp_path, results, seconds=900)
    assert [entry["variant"] for entry in results["runs"]] == ["cpu-no-model", "cpu-no-model-fallback"]
    for entry in results["runs"]:
        assert entry["error"].startswith("stopped before it was ready")
        assert "no-such-model" in entry["error"]  # vLLM's own reason, not just "not ready"
        assert "levels" not in entry
    assert time.monotonic() - started < 600  # it did not wait for the budget's end
    saved = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert [entry["variant"] for entry in saved["runs"]] == ["cpu-no-model", "cpu-no-model-fallback"]


def test_a_phase_that_needs_more_gpus_than_the_host_has_is_skipped(tmp_path: Path) -> None:
    results: dict = {"runs": []}
    two_gpu_phases = [phase for phase in MULTI_GPU_PLAN if any("," in v.gpus for v in phase)]
    assert two_gpu_phases
    plan(two_gpu_phases, tmp_path, results, seconds=60)
    assert results["runs"] == []


def test_tensor_parallel_variants_fall_back_to_plain_nccl_all_reduce() -> None:
    for phase in MULTI_GPU_PLAN:
        for variant in phase:
            if "," not in variant.gpus:
                continue
            assert variant.fallback is not None and variant.fallback.fallback_for == variant.name
            compilation = json.loads(variant.fallback.settings["compilation_config"])
            assert compilation["pass_config"]["fuse_allreduce_rms"] is False
            assert "--disable-custom-all-reduce" in variant.fallback.extra_args
            # Everything else stays as measured: the same settings apart from the all-reduce path.
            assert {k: v for k, v in variant.fallback.settings.items() if k != "compilation_config"} == {
                k: v for k, v in variant.settings.items() if k != "compilation_config"
            }


def test_only_tensor_parallel_starts_skip_deep_gemms_warm_up() -> None:
    """At TP=2 the warm-up outlasted the ready timeout on a fresh host (2026-11-30); on one GPU skipping it
    left compilations inside timed levels (2026-11-29), so the one-GPU Qwen3 variants keep it."""
    variants = [variant for phase in MULTI_GPU_PLAN for variant in phase]
    for variant in variants:
        skips = variant.env.get("VLLM_DEEP_GEMM_WARMUP") == "skip"
        assert skips == ("," in variant.gpus), variant.name
        if variant.fallback:
            assert variant.fallback.env == variant.env


def test_a_start_that_hangs_is_stopped_after_its_ready_timeout(tmp_path: Path) -> None:
    # vLLM takes longer than a second to import, so the timeout fires before it could answer or fail.
    slow = Variant("cpu-slow", "cpu-dev", "no-such-model", "0", levels=[1], ready_timeout_s=1)
    results: dict = {"runs": []}
    plan([[slow]], tmp_path, results, seconds=900)
    [entry] = results["runs"]
    assert entry["error"].startswith("stopped before it was ready: not ready after 1 s")
    assert "levels" not in entry


def test_after_one_fallback_later_variants_start_with_theirs(tmp_path: Path) -> None:
    def failing(name: str) -> Variant:
        variant = Variant(name, "cpu-dev", "no-such-model", "0", levels=[1])
        fallback = dataclasses.replace(variant, name=f"{name}-fallback", fallback_for=name)
        return dataclasses.replace(variant, fallback=fallback)

    plain = Variant("cpu-plain", "cpu-dev", "no-such-model", "0", levels=[1])
    results: dict = {"runs": []}
    plan([[failing("first")], [failing("second")], [plain]], tmp_path, results, seconds=900)
    # "second" never started: the host already showed that it needs the fallbacks.
    assert [entry["variant"] for entry in results["runs"]] == [
        "first",
        "first-fallback",
        "second-fallback",
        "cpu-plain",
    ]
    by_name = {entry["variant"]: entry for entry in results["runs"]}
    assert by_name["first-fallback"]["fallback_for"] == "first"
    assert "note" not in by_name["first-fallback"]
    assert by_name["second-fallback"]["fallback_for"] == "second"
    assert by_name["second-fallback"]["note"] == (
        "started with its fallback at once: first could not start on this host"
    )
    assert "note" not in by_name["cpu-plain"]  # a variant without a fallback runs as planned


def test_a_phase_measures_each_level_and_counts_the_kernels_compiled_during_it(tmp_path: Path) -> None:
    # The tiny CPU MoE stands in for the GPU profile: the same launcher, warm-up and measurement path.
    from inference.launcher import model_path_for
    from inference.profiles import load

    model = Path(model_path_for(load("cpu-moe-tp1")))
    variant = Variant("cpu-moe", "cpu-moe-tp1", model.name, "0", levels=[1, 2])
    results: dict = {"runs": []}
    run_phase([variant], model.parent, tmp_path / "out", results, time.monotonic() + 600)
    [entry] = results["runs"]
    assert "error" not in entry, entry.get("error")
    assert [level["concurrency"] for level in entry["levels"]] == [1, 2]
    for level in entry["levels"]:
        assert level["errors"] == 0 and level["requests"] == 4
        assert level["output_tok_s"] > 0 and level["tpot_s"]["p50"] > 0
        # No Triton, DeepGEMM or FlashInfer kernel is compiled on the CPU: a count, and zero.
        assert level["kernels_compiled"] == 0
    assert entry["jit_compilations_while_measured"] == 0
    saved = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert [level["concurrency"] for level in saved["runs"][0]["levels"]] == [1, 2]


def test_a_speculating_variant_is_checked_against_its_twins_greedy_answers(tmp_path: Path) -> None:
    # Two tiny CPU MoE workers of the same weights, one with prompt-lookup speculation: its greedy
    # answers are compared with the other's after both were measured.
    from inference.launcher import model_path_for
    from inference.profiles import load

    model = Path(model_path_for(load("cpu-moe-tp1")))
    plain = Variant("cpu-moe", "cpu-moe-tp1", model.name, "0", levels=[1])
    speculating = Variant(
        "cpu-moe-ngram",
        "cpu-moe-tp1",
        model.name,
        "0",
        levels=[1],
        settings={
            "speculative_config": json.dumps(
                {
                    "method": "ngram",
                    "num_speculative_tokens": 4,
                    "prompt_lookup_min": 2,
                    "prompt_lookup_max": 4,
                }
            )
        },
        same_answers_as="cpu-moe",
    )
    results: dict = {"runs": []}
    run_phase([plain, speculating], model.parent, tmp_path / "out", results, time.monotonic() + 900)
    by_name = {entry["variant"]: entry for entry in results["runs"]}
    assert "error" not in by_name["cpu-moe-ngram"], by_name["cpu-moe-ngram"].get("error")
    assert "same_answers" not in by_name["cpu-moe"]
    compared = by_name["cpu-moe-ngram"]["same_answers"]
    assert compared["compared"] == 8
    # Greedy answers do not change with speculation (both workers compute in float32 on the same cores).
    assert compared["identical"] == 8
    assert compared["agreed_share"]["p50"] == 1.0
    # The speculating worker's counters were read per level; the plain one drafted nothing.
    assert by_name["cpu-moe"]["levels"][0]["engine_counters"]["drafted_tokens"] == 0
    assert by_name["cpu-moe-ngram"]["levels"][0]["engine_counters"]["generated_tokens"] > 0


STOPPABLE_RUN = """
import sys, time
from pathlib import Path
from benchmarks.gpu_plans import Variant
from benchmarks.gpu_run import run_plan, stop_on_sigterm

stop_on_sigterm()
model, out = Path(sys.argv[1]), Path(sys.argv[2])
slow = Variant("cpu-slow", "cpu-dev", model.name, "0", levels=[1], ready_timeout_s=600)
run_plan(
    [[slow]], model.parent, out, {"runs": []},
    budget_end=time.monotonic() + 900, only=None, levels=None, gpu_count=1,
)
"""


def _processes_mentioning(*texts: str) -> list[int]:
    """Processes whose command line holds every one of ``texts``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue  # gone meanwhile
            if all(text in command for text in texts):
                found.append(int(entry.name))
    return found


def test_a_killed_run_stops_the_model_workers_it_started(tmp_path: Path) -> None:
    """On 2026-11-30 a run killed by hand left its launcher behind, which restarted vLLM and held both
    GPUs; now SIGTERM stops the run through its own clean-up."""
    import signal
    import subprocess
    import sys

    from inference.launcher import model_path_for
    from inference.profiles import load

    # The model through a link of this test's own: the session's model worker serves the same folder, and
    # only this run's processes may name the link.
    model = tmp_path / "models" / "cpu-dev"
    model.parent.mkdir()
    model.symlink_to(Path(model_path_for(load("cpu-dev"))))
    run = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE_RUN, str(model), str(tmp_path / "out")],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180

    # SIGTERM while vLLM itself is starting (launched by our launcher, in a process session of its own).
    while not _processes_mentioning(str(model), "vllm.entrypoints"):
        assert run.poll() is None and time.monotonic() < deadline, "vLLM did not start"
        time.sleep(0.2)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1 and "stopped by signal 15" in stderr
    assert _processes_mentioning(str(model)) == []  # launcher and vLLM, with its engine core, are gone
    assert (tmp_path / "out" / "gpu.json").exists()  # what the run had is written
