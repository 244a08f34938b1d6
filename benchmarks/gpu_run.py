"""The GPU profiles on a real GPU host, measured with the project's own launcher and benchmark.

Two steps:

* ``python -m benchmarks.gpu_run prepare OUT_DIR`` (here, with the CPU model prepared) writes the model
  folders the run needs: the published configurations in ``benchmarks/gpu/models/`` plus a tokenizer
  taken from the bundled Qwen2.5 model. Weights are not needed: vLLM's ``--load-format dummy``
  initialises random weights of the right shapes, which is what speed depends on.
* ``python -m benchmarks.gpu_run run --models DIR --out DIR`` (on the GPU host, vLLM installed) starts
  each variant with ``python -m inference serve --profile … --set …`` — the same launcher ``make run``
  uses — checks it answers through the project's client (streaming and a JSON-schema ``decide``),
  and measures it with :func:`benchmarks.inference.measure_levels` at several concurrency levels.
  Results go to ``OUT/gpu.json`` after every step, so a run cut short keeps what it measured.

Every variant is one entry of a plan in ``benchmarks/gpu_plans.py``; servers of one phase run side by side on different GPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.engine_counters import step_yield, worker_counters
from benchmarks.gpu_plans import LEVELS, PLANS, Variant
from inference.profiles import MULTICAST_OFF_ENV

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "gpu" / "models"
MAX_TOKENS = 128
# NVLink multicast stays off on shared hosts (it can take the host's GPUs out of service): in NCCL, PyTorch,
# NVSHMEM and FlashInfer's all-reduce alike (the launcher's NVLINK_MULTICAST=off).
SAFE_NCCL = {"NVLINK_MULTICAST": "off", **MULTICAST_OFF_ENV}
# What vLLM logs when a kernel is compiled on first use while serving: a measurement it falls in is spoiled.
JIT_DURING_SERVING = "JIT compilation during inference"


# ---------------------------------------------------------------- prepare (here)


# Qwen3's extra tokens in the padding slots Qwen3 uses for them (vLLM's qwen3 reasoning parser needs
# <think>), then DeepSeek-V3's tool-call markers in later padding slots (its deepseek_v3 tool parser needs them).
EXTRA_TOKENS = {
    151665: "<tool_response>",
    151666: "</tool_response>",
    151667: "<think>",
    151668: "</think>",
    151669: "<｜tool▁calls▁begin｜>",
    151670: "<｜tool▁calls▁end｜>",
    151671: "<｜tool▁call▁begin｜>",
    151672: "<｜tool▁call▁end｜>",
    151673: "<｜tool▁sep｜>",
}


def _tokenizer_with_extra_tokens(source: Path, target: Path) -> None:
    """The bundled Qwen2.5 tokenizer with :data:`EXTRA_TOKENS` in place of its padding placeholders."""
    data = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    by_id = {token_id: token for token, token_id in vocab.items()}
    for token_id, content in EXTRA_TOKENS.items():
        placeholder = by_id.get(token_id)
        if placeholder is not None and placeholder != content:
            del vocab[placeholder]
        vocab[content] = token_id
        data["added_tokens"].append(
            {
                "id": token_id,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
    (target / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    shutil.copyfile(source / "tokenizer_config.json", target / "tokenizer_config.json")
    # Qwen3's template closes an empty thinking block when the caller turns thinking off, which is how
    # vLLM's qwen3 reasoning parser (and structured output after it) knows the answer starts at once.
    template = (source / "chat_template.jinja").read_text(encoding="utf-8")
    opening = "{{- '<|im_start|>assistant\\n' }}"
    if opening not in template:
        raise RuntimeError("unexpected chat template: no assistant opening to extend")
    template = template.replace(
        opening,
        opening + "\n    {%- if enable_thinking is defined and enable_thinking is false %}"
        "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}",
    )
    (target / "chat_template.jinja").write_text(template, encoding="utf-8")


def prepare(out_dir: Path) -> None:
    from inference.launcher import model_path_for
    from inference.profiles import load

    tokenizer_source = Path(model_path_for(load("cpu-dev")))
    qwen = json.loads((CONFIGS / "qwen3-30b-a3b-fp8.json").read_text())
    deepseek = json.loads((CONFIGS / "deepseek-v3-8-layers.json").read_text())
    # The stand-in tokenizer's ids reach 151,935: the embedding must cover them (DeepSeek's own is 129,280).
    deepseek["vocab_size"] = 151936
    models = {
        "qwen3-30b-a3b-fp8": qwen,
        "deepseek-v3-8-layers": deepseek,
        # 3 dense + 2 MoE layers: with the 8-layer run this gives the time of one MoE layer.
        "deepseek-v3-5-layers": {**deepseek, "num_hidden_layers": 5},
    }
    for name, config in models.items():
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        _tokenizer_with_extra_tokens(tokenizer_source, folder)
        eos = [config["eos_token_id"]] if name.startswith("qwen3") else [151645, 151643]
        (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": eos}), encoding="utf-8")
        print(f"wrote {folder}")


# ---------------------------------------------------------------- run (on the GPU host)


def _gpu_facts() -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torch": torch.__version__,
    }
    try:
        import vllm

        facts["vllm"] = vllm.__version__
    except ImportError:
        facts["vllm"] = None
    # Copy bandwidth: bytes read + written per second, the ceiling for reading weights.
    size = 4 * 2**30
    source = torch.empty(size, dtype=torch.uint8, device="cuda")
    source.random_(0, 255)
    target = torch.empty_like(source)
    for _ in range(3):
        target.copy_(source)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        start.record()
        target.copy_(source)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    times.sort()
    facts["copy_bandwidth_bytes_per_s"] = 2 * size / times[len(times) // 2]
    del source, target
    torch.cuda.empty_cache()
    return facts


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


@dataclass
class Server:
    variant: Variant
    gpus: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float
    ready_s: float | None = None
    failed: str | None = None  # why it stopped before it was ready (the end of its log)


def _start(variant: Variant, gpus: str, port: int, models: Path, logs: Path) -> Server:
    command = [sys.executable, "-m", "inference", "serve", "--profile", variant.profile, "--port", str(port)]
    command += ["--model", str(models / variant.model)]
    for name, value in variant.settings.items():
        command += ["--set", f"{name}={value}"]
    env = {
        **os.environ,
        **SAFE_NCCL,
        **variant.env,
        "CUDA_VISIBLE_DEVICES": gpus,
        "VLLM_EXTRA_ARGS": f"--load-format dummy {variant.extra_args}".strip(),
        "MODEL_WORKER_READY_TIMEOUT": "1500",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = logs / f"{variant.name}-gpu{gpus.replace(',', '')}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(variant, gpus, port, process, log_path, time.monotonic())


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def _wait_ready(servers: list[Server], timeout: float) -> None:
    """Waits until every server answers /health or has exited; a server that exits is marked failed and
    the others go on (one variant's unsupported flag must not cost its neighbour on the other GPU)."""
    deadline = time.monotonic() + timeout
    waiting = lambda: [s for s in servers if s.ready_s is None and s.failed is None]  # noqa: E731
    while waiting() and time.monotonic() < deadline:
        for server in waiting():
            if _health(server.port):
                server.ready_s = time.monotonic() - server.started
                print(
                    f"{server.variant.name} (GPU {server.gpus}) ready after {server.ready_s:.0f}s", flush=True
                )
            elif server.process.poll() is not None or _engine_stopped(server.log_path):
                server.failed = _first_error(server.log_path)
            elif time.monotonic() - server.started > server.variant.ready_timeout_s:
                # A hang (a collective that never completes) neither exits nor logs an error.
                tail = server.log_path.read_text(errors="replace").splitlines()[-6:]
                server.failed = (
                    f"not ready after {server.variant.ready_timeout_s:.0f} s; its log ends:\n"
                    + "\n".join(line[-300:] for line in tail)
                )
            if server.failed:
                print(f"{server.variant.name} (GPU {server.gpus}) failed:\n{server.failed}", flush=True)
                _stop(server)  # the launcher would restart it; its GPUs are free for the rest of the phase
        time.sleep(2)


def _engine_stopped(log_path: Path) -> bool:
    """The launcher restarts a vLLM that stops; its own line says so (inference/launcher.py)."""
    return "model worker stopped" in log_path.read_text(errors="replace")


def _first_error(log_path: Path) -> str:
    """The lines that say why vLLM stopped: the first exception message, else the log's end."""
    lines = log_path.read_text(errors="replace").splitlines()
    reasons = [
        line[-400:]
        for line in lines
        if ("Error:" in line or "Error " in line or "error:" in line) and "Traceback" not in line
    ]
    return "\n".join(reasons[:6] if reasons else [line[-300:] for line in lines[-15:]])


def _jit_count(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count(JIT_DURING_SERVING)


def kernel_cache_dirs() -> list[Path]:
    """Where kernels compiled on first use are kept: DeepGEMM's JIT cache (a folder with a ``kernel.cubin``
    per kernel) and FlashInfer's (a ``.so`` per module). vLLM points DeepGEMM at ``deep_gemm`` under its own
    cache root unless ``DG_JIT_CACHE_DIR`` says otherwise (the 2026-11-30 counts looked in DeepGEMM's own
    default, ``~/.deep_gemm``, and found nothing)."""
    home = Path.home()
    vllm_cache = Path(os.environ.get("VLLM_CACHE_ROOT") or home / ".cache" / "vllm")
    return [
        Path(os.environ.get("DG_JIT_CACHE_DIR") or vllm_cache / "deep_gemm"),
        Path(os.environ.get("FLASHINFER_WORKSPACE_BASE") or home) / ".cache" / "flashinfer",
    ]


def compiled_kernels(log_paths: list[Path], cache_dirs: list[Path]) -> int:
    """Kernels compiled so far: Triton's, which vLLM logs while serving, plus DeepGEMM's and FlashInfer's,
    which it does not log but leave in their caches. On 2026-11-30 DeepGEMM compilations (its start-up
    warm-up skipped) stalled every stream for ~5 s inside timed levels while the log counted none: a level
    during which this number grows is spoiled."""
    count = sum(_jit_count(path) for path in log_paths)
    for folder in cache_dirs:
        if folder.is_dir():
            count += sum(1 for path in folder.rglob("*") if path.suffix in (".cubin", ".so"))
    return count


def _counters(servers: list[Server]) -> dict[str, float] | None:
    """vLLM's generated/drafted/accepted token counters, summed over a variant's servers (None if one
    cannot be read: the level's numbers stand without them)."""
    totals: dict[str, float] = {}
    for server in servers:
        try:
            counters = worker_counters(f"http://127.0.0.1:{server.port}", timeout=10)
        except OSError:
            return None
        for key, value in counters.items():
            totals[key] = totals.get(key, 0.0) + value
    return totals


def _log_facts(log_path: Path) -> dict[str, Any]:
    """What vLLM said it chose: MoE backend and kernel config, attention backend, the command line."""
    wanted = (
        "serving profile",
        "MoE",
        "moe",
        "backend",
        "Backend",
        "configuration from",
        "default MoE config",
    )
    lines = log_path.read_text(errors="replace").splitlines()
    picked = [line[-400:] for line in lines if any(word in line for word in wanted)]
    return {"log_lines": picked[:40]}


async def _client_checks(port: int) -> dict[str, Any]:
    from inference.client import ClientConfig, OpenAICompatibleModel, TextDelta

    config = ClientConfig(
        base_url=f"http://127.0.0.1:{port}/v1",
        model="shopdesk-chat",
        total_timeout=120,
        # Decisions and answers without a thinking block (Qwen3's chat-template switch; ignored elsewhere).
        default_sampling={"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}},
    )
    model = OpenAICompatibleModel(config)
    result: dict[str, Any] = {}
    try:
        deltas = 0
        async for event in model.stream(
            [{"role": "user", "content": "我的订单什么时候发货？ When will my order ship?"}], max_tokens=32
        ):
            deltas += isinstance(event, TextDelta)
        result["stream_deltas"] = deltas
        schema = {
            "type": "object",
            "properties": {"tool": {"type": "string", "enum": ["track_shipment", "open_ticket", "answer"]}},
            "required": ["tool"],
            "additionalProperties": False,
        }
        decision = await model.decide(
            [{"role": "user", "content": "Where is order DS20240501?"}], schema=schema, name="route"
        )
        result["decide"] = decision
        result["ok"] = deltas > 0 and decision.get("tool") in ("track_shipment", "open_ticket", "answer")
    except Exception as exc:  # noqa: BLE001 - recorded as the check's outcome
        result["ok"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        await model.close()
    return result


def same_answers(port: int, twin_port: int, prompts: list[list[dict[str, str]]], tokens: int = 64) -> dict:
    """Greedy answers of two servers of the same weights to the same prompts: with speculative decoding
    on one of them they must not change. Counts identical answers and the characters each pair agrees on
    before it parts (numerics of a many-token check step may differ in the last bits, and a near-tie
    then goes the other way)."""
    import openai

    from benchmarks.common import summary

    def answer(client: openai.OpenAI, messages: list[dict[str, str]]) -> str:
        reply = client.chat.completions.create(
            model="shopdesk-chat",
            messages=messages,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=tokens,
            extra_body={"ignore_eos": True, "chat_template_kwargs": {"enable_thinking": False}},
        )
        return reply.choices[0].message.content or ""

    clients = [
        openai.OpenAI(base_url=f"http://127.0.0.1:{p}/v1", api_key="unused", max_retries=0, timeout=300)
        for p in (port, twin_port)
    ]
    prefixes = []
    for messages in prompts:
        mine, theirs = (answer(client, messages) for client in clients)
        prefixes.append(len(os.path.commonprefix([mine, theirs])) / max(len(theirs), 1))
    return {
        "compared": len(prompts),
        "identical": sum(share == 1.0 for share in prefixes),
        "agreed_share": summary(prefixes),
    }


def _warm_up(base_urls: list[str], prompts: list[list[dict[str, str]]], levels: list[int]) -> None:
    """Kernels compiled on first use (DeepGEMM's, when its start-up warm-up is skipped; Triton's MoE
    kernels for prefill sizes) before anything is timed: the same levels at the full output length, so
    every batch size the measurement reaches has been run once. A 16-token pass was not enough: on
    2026-11-29 it left compilations inside the 16- to 256-stream levels."""
    from benchmarks.inference import measure_levels

    asyncio.run(
        measure_levels(
            base_urls, "shopdesk-chat", levels=sorted(set(levels)), prompts=prompts[-400:],
            max_tokens=MAX_TOKENS, requests_per_stream=1,
        )
    )  # fmt: skip


def run_phase(
    phase: list[Variant], models: Path, out: Path, results: dict[str, Any], budget_end: float
) -> None:
    from benchmarks.inference import assistant_prompts, measure_levels

    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    prompts = assistant_prompts(1200)
    servers: list[Server] = []
    for variant in phase:
        for gpus in [variant.gpus, *variant.replicas]:
            servers.append(_start(variant, gpus, _free_port(), models, logs))
    try:
        _wait_ready(servers, timeout=max(60.0, budget_end - time.monotonic()))
        for variant in phase:
            mine = [s for s in servers if s.variant is variant]
            entry: dict[str, Any] = {
                "variant": variant.name,
                "profile": variant.profile,
                "model": variant.model,
                "settings": variant.settings,
                "env": variant.env,
                "extra_args": variant.extra_args,
                "gpus": [s.gpus for s in mine],
                "start_to_health_s": [s.ready_s for s in mine],
            }
            if variant.fallback_for:
                entry["fallback_for"] = variant.fallback_for
            if variant.note:
                entry["note"] = variant.note
            results["runs"].append(entry)
            failed = [s.failed for s in mine if s.failed]
            if failed:
                entry["error"] = f"stopped before it was ready: {failed[0]}"
                continue
            if any(s.ready_s is None for s in mine):
                entry["error"] = "not ready in time"
                continue
            urls = [f"http://127.0.0.1:{s.port}/v1" for s in mine]
            if variant.checks:
                entry["checks"] = asyncio.run(_client_checks(mine[0].port))
                print(f"{variant.name} checks: {entry['checks']}", flush=True)
            _warm_up(urls, prompts, variant.levels)
            print(f"{variant.name}:", flush=True)
            entry["levels"] = []
            used = 0  # each level gets prompts no earlier level used
            log_paths = [s.log_path for s in mine]
            for level in variant.levels:
                before = compiled_kernels(log_paths, kernel_cache_dirs())
                counters = _counters(mine)
                [row] = asyncio.run(
                    measure_levels(
                        urls, "shopdesk-chat", levels=[level], prompts=prompts[used:], max_tokens=MAX_TOKENS
                    )
                )
                used += row["requests"] + row["errors"]
                # Non-zero: a kernel was compiled while this level was timed, and its numbers are spoiled.
                row["kernels_compiled"] = compiled_kernels(log_paths, kernel_cache_dirs()) - before
                after = _counters(mine)
                if counters is not None and after is not None:
                    row["engine_counters"] = step_yield(counters, after)  # tokens per step (speculation)
                entry["levels"].append(row)
            entry["jit_compilations_while_measured"] = sum(row["kernels_compiled"] for row in entry["levels"])
            entry.update(_log_facts(mine[0].log_path))
            _write(out, results)
        for variant in phase:
            if not variant.same_answers_as:
                continue
            twin = next((s for s in servers if s.variant.name == variant.same_answers_as), None)
            mine = [s for s in servers if s.variant is variant]
            entry = [e for e in results["runs"] if e["variant"] == variant.name][-1]
            if twin and twin.ready_s is not None and mine[0].ready_s is not None and "levels" in entry:
                # Prompts no level and no warm-up used (levels take the first ones, the warm-up the last 400).
                entry["same_answers"] = same_answers(mine[0].port, twin.port, prompts[-408:-400])
                print(f"{variant.name} answers like {twin.variant.name}: {entry['same_answers']}", flush=True)
                _write(out, results)
    finally:
        for server in servers:
            _stop(server)
        for variant in phase:
            for entry in results["runs"]:
                if entry["variant"] == variant.name and "log_lines" not in entry:
                    entry.update(_log_facts([s for s in servers if s.variant is variant][0].log_path))
        _write(out, results)


def _did_not_start(results: dict[str, Any], name: str) -> bool:
    entries = [entry for entry in results["runs"] if entry["variant"] == name]
    return not entries or str(entries[-1].get("error", "")).startswith("stopped before it was ready")


def _write(out: Path, results: dict[str, Any]) -> None:
    path = out / "gpu.json"
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")


def run_plan(
    phases: list[list[Variant]],
    models: Path,
    out: Path,
    results: dict[str, Any],
    *,
    budget_end: float,
    only: list[str] | None,
    levels: list[int] | None,
    gpu_count: int,
) -> None:
    """Runs the phases in order within the time budget; a phase that needs more GPUs than the host has
    is skipped, and a variant that stops before it is ready is followed at once by its fallback. Once one
    variant needed its fallback, later variants that have one start with it: a host whose GPUs could not
    start one tensor-parallel variant with vLLM's own all-reduce paths would fail (or hang until the ready
    timeout) the same way for the next, and that time is the lease's."""
    queue = list(phases)
    fell_back: str | None = None  # the first variant that needed its fallback
    while queue:
        phase = queue.pop(0)
        phase = [v for v in phase if not only or v.name in only or (v.fallback_for or "") in only]
        if fell_back:
            phase = [
                dataclasses.replace(
                    v.fallback,
                    note=f"started with its fallback at once: {fell_back} could not start on this host",
                )
                if v.fallback
                else v
                for v in phase
            ]
        if levels:
            phase = [dataclasses.replace(v, levels=list(levels)) for v in phase]
        needed = {g for v in phase for gpus in [v.gpus, *v.replicas] for g in gpus.split(",")}
        if not phase or len(needed) > gpu_count:
            continue
        if time.monotonic() > budget_end - 240:
            print(f"skipping {[v.name for v in phase]}: time budget spent", flush=True)
            continue
        try:
            run_phase(phase, models, out, results, budget_end)
        except Exception as exc:  # noqa: BLE001 - one failed phase must not lose the others
            print(f"phase {[v.name for v in phase]} failed: {exc}", flush=True)
            results.setdefault("failures", []).append(
                {"phase": [v.name for v in phase], "error": str(exc)[:1000]}
            )
            _write(out, results)
        # A variant that could not start gets its fallback (the same measurement with the suspect feature
        # off) right away, before the next phase.
        failed = [v for v in phase if v.fallback and _did_not_start(results, v.name)]
        if failed:
            fell_back = fell_back or failed[0].name
            queue.insert(0, [v.fallback for v in failed if v.fallback])


def stop_on_sigterm() -> None:
    """``kill PID`` (SIGTERM) of a run stops it as an exception would: the phase's ``finally`` stops every
    model worker it started (their whole process groups) and writes the results so far. Without this, a
    killed run left its launchers behind, which restarted vLLM and held the GPUs (2026-11-30)."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, _exit)


def run(
    models: Path,
    out: Path,
    *,
    plan: str,
    minutes: float,
    only: list[str] | None,
    levels: list[int] | None = None,
) -> None:
    stop_on_sigterm()
    out.mkdir(parents=True, exist_ok=True)
    budget_end = time.monotonic() + minutes * 60
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _gpu_facts(),
        "levels": LEVELS,
        "max_tokens": MAX_TOKENS,
        "configs": {
            name: json.loads((models / name / "config.json").read_text())
            for name in sorted(os.listdir(models))
            if (models / name / "config.json").exists()
        },
        "plan": plan,
        "runs": [],
    }
    print(json.dumps(results["machine"]), flush=True)
    _write(out, results)
    run_plan(
        PLANS[plan], models, out, results, budget_end=budget_end, only=only, levels=levels,
        gpu_count=len(results["machine"]["gpus"]),
    )  # fmt: skip
    print("done", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_run")
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="write the model folders (config + tokenizer)")
    prep.add_argument("out", type=Path)
    go = commands.add_parser("run", help="run the plan on a GPU host")
    go.add_argument("--models", type=Path, required=True)
    go.add_argument("--out", type=Path, required=True)
    go.add_argument("--plan", choices=sorted(PLANS), default="multi-gpu")
    go.add_argument("--minutes", type=float, default=22)
    go.add_argument("--only", nargs="*")
    go.add_argument(
        "--levels", nargs="*", type=int, help="concurrency levels for every variant (a short run)"
    )
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.out)
    else:
        run(args.models, args.out, plan=args.plan, minutes=args.minutes, only=args.only, levels=args.levels)


if __name__ == "__main__":
    main()
