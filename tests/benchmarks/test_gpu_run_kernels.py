"""Counting kernels compiled while a level is timed: a level during which the count grows is spoiled.
vLLM logs Triton's compilations while serving; DeepGEMM's and FlashInfer's only show in their caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.gpu_run import JIT_DURING_SERVING, compiled_kernels, kernel_cache_dirs


def test_triton_log_lines_and_cached_kernels_all_count(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(f"INFO ready\nWARNING Triton kernel {JIT_DURING_SERVING}: fused_moe_kernel.\n")
    deep_gemm = tmp_path / "deep_gemm" / "cache"
    flashinfer = tmp_path / "flashinfer"
    missing = tmp_path / "never-created"
    assert compiled_kernels([log], [deep_gemm, flashinfer, missing]) == 1

    kernel = deep_gemm / "kernel.gemm_fp8_1a2b"
    kernel.mkdir(parents=True)
    (kernel / "kernel.cu").write_text("// source is not a compiled kernel")
    (kernel / "kernel.cubin").write_bytes(b"\x7fELF")
    (flashinfer / "90a" / "cached_ops" / "sampling").mkdir(parents=True)
    (flashinfer / "90a" / "cached_ops" / "sampling" / "sampling.so").write_bytes(b"\x7fELF")
    (flashinfer / "90a" / "cached_ops" / "sampling" / "build.ninja").write_text("rule nvcc")
    assert compiled_kernels([log], [deep_gemm, flashinfer, missing]) == 3

    with log.open("a") as stream:
        stream.write(f"WARNING Triton kernel {JIT_DURING_SERVING}: apply_token_bitmask_inplace_kernel.\n")
    assert compiled_kernels([log], [deep_gemm, flashinfer]) == 4


def test_cache_folders_follow_the_libraries_own_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DG_JIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("FLASHINFER_WORKSPACE_BASE", raising=False)
    monkeypatch.delenv("VLLM_CACHE_ROOT", raising=False)
    assert kernel_cache_dirs() == [
        tmp_path / "home" / ".cache" / "vllm" / "deep_gemm",
        tmp_path / "home" / ".cache" / "flashinfer",
    ]
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(tmp_path / "vllm-cache"))
    assert kernel_cache_dirs()[0] == tmp_path / "vllm-cache" / "deep_gemm"
    monkeypatch.setenv("DG_JIT_CACHE_DIR", str(tmp_path / "dg"))
    monkeypatch.setenv("FLASHINFER_WORKSPACE_BASE", str(tmp_path / "fi"))
    assert kernel_cache_dirs() == [tmp_path / "dg", tmp_path / "fi" / ".cache" / "flashinfer"]
