"""Tests for assembling a GGUF from chunk files shipped in installed packages.

The packages here are real, importable packages built in a temporary directory, so the lookup through
importlib, the glob, the ordering and the hash check run exactly as they do for the model's packages,
only on a few kilobytes instead of half a gigabyte.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from inference.prepare import MARKER_NAME, ModelPrepareError, gguf_model_prepare, gguf_parts_assemble


def _make_packages(root: Path, chunks: list[list[bytes]]) -> list[str]:
    """Create one package per entry of ``chunks`` under ``root``, each holding its chunks as
    ``data/partNN.bin`` plus a file the glob must not pick up; return the packages' module names.

    The names are unique per call: importlib caches what it found, and tests must not see each
    other's packages.
    """
    prefix = f"shopdesk_fake_{uuid.uuid4().hex[:8]}"
    names: list[str] = []
    number = 0
    for index, package_chunks in enumerate(chunks, start=1):
        name = f"{prefix}_part{index}"
        data = root / name / "data"
        data.mkdir(parents=True)
        (root / name / "__init__.py").write_text("", encoding="utf-8")
        (data / "README.txt").write_text("not a part", encoding="utf-8")
        for chunk in package_chunks:
            number += 1
            (data / f"part{number:02d}.bin").write_bytes(chunk)
        names.append(name)
    return names


@pytest.fixture
def packages_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


CHUNKS = [[b"GGUF" + bytes(range(256)) * 40, b"\x00second chunk of the first package"], [b"tail\xff" * 1000]]
CONTENT = b"".join(chunk for package in CHUNKS for chunk in package)
CONTENT_SHA256 = hashlib.sha256(CONTENT).hexdigest()


def test_assembles_parts_in_package_order(packages_root: Path, tmp_path: Path) -> None:
    packages = _make_packages(packages_root, CHUNKS)
    dest = tmp_path / "out" / "model.gguf"
    calls: list[tuple[str, int, int]] = []

    result = gguf_parts_assemble(
        packages=packages,
        part_glob="data/part*.bin",
        sha256=CONTENT_SHA256,
        dest=dest,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )

    assert result == dest
    assert dest.read_bytes() == CONTENT
    assert calls[-1] == ("assemble", len(CONTENT), len(CONTENT))
    assert sorted(path.name for path in dest.parent.iterdir()) == ["model.gguf"]


def test_wrong_sha256_raises_and_leaves_no_file(packages_root: Path, tmp_path: Path) -> None:
    packages = _make_packages(packages_root, CHUNKS)
    out = tmp_path / "out"
    wrong = "0" * 64

    with pytest.raises(ModelPrepareError) as raised:
        gguf_parts_assemble(
            packages=packages, part_glob="data/part*.bin", sha256=wrong, dest=out / "model.gguf"
        )

    assert wrong in str(raised.value)
    assert CONTENT_SHA256 in str(raised.value)
    assert list(out.iterdir()) == []


def test_existing_file_with_right_hash_is_kept_without_reading_packages(tmp_path: Path) -> None:
    dest = tmp_path / "model.gguf"
    dest.write_bytes(CONTENT)

    result = gguf_parts_assemble(
        packages=["shopdesk_package_that_is_not_installed"],
        part_glob="data/part*.bin",
        sha256=CONTENT_SHA256,
        dest=dest,
    )

    assert result == dest
    assert dest.read_bytes() == CONTENT


def test_existing_file_with_wrong_content_is_replaced(packages_root: Path, tmp_path: Path) -> None:
    packages = _make_packages(packages_root, CHUNKS)
    dest = tmp_path / "model.gguf"
    dest.write_bytes(b"truncated")

    gguf_parts_assemble(packages=packages, part_glob="data/part*.bin", sha256=CONTENT_SHA256, dest=dest)

    assert dest.read_bytes() == CONTENT


def test_missing_package_or_part_is_named(packages_root: Path, tmp_path: Path) -> None:
    packages = _make_packages(packages_root, CHUNKS)

    with pytest.raises(ModelPrepareError, match="shopdesk_package_that_is_not_installed"):
        gguf_parts_assemble(
            packages=[*packages, "shopdesk_package_that_is_not_installed"],
            part_glob="data/part*.bin",
            sha256=CONTENT_SHA256,
            dest=tmp_path / "model.gguf",
        )
    with pytest.raises(ModelPrepareError, match=packages[0]):
        gguf_parts_assemble(
            packages=packages, part_glob="data/*.gguf", sha256=CONTENT_SHA256, dest=tmp_path / "model.gguf"
        )
    assert not (tmp_path / "model.gguf").exists()


def test_prepared_folder_is_reused_without_any_work(tmp_path: Path) -> None:
    sha256 = "ab" * 32
    eos = [151645, 151643]
    folder = tmp_path / f"gguf-{sha256[:16]}-float32"
    folder.mkdir()
    marker = {"source_sha256": sha256, "dtype": "float32", "eos_token_ids": eos, "transformers_version": "x"}
    (folder / MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")

    result = gguf_model_prepare(
        packages=["shopdesk_package_that_is_not_installed"],
        part_glob="data/part*.bin",
        sha256=sha256,
        dtype="float32",
        eos_token_ids=eos,
        cache_root=tmp_path,
    )

    assert result == folder
    assert not (tmp_path / "sources").exists()
