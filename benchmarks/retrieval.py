"""Hybrid search latency and HNSW recall at 10k and 100k chunks.

Vectors are deterministic synthetic embeddings (a seeded mixture of clusters on the
unit sphere, like topical passages); the text for the full-text half is generated
from a seeded bilingual vocabulary and segmented like real chunks. Embedding 100k
real passages would take hours on 2 cores; the search path is the same either way.
Baseline, measured in the same run: exact (sequential) cosine search on the same
queries, for recall@10 and latency.
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Any

import numpy as np

from benchmarks.common import summary, write_result
from benchmarks.services import benchmark_database

DIM = 384
EN_STEMS = (
    "return refund parcel delivery warranty lamp sofa invoice order payment card exchange point member ship "
    "courier damage repair week fee address account password coupon discount receipt label colour size fabric "
    "cushion frame drawer hinge bulb cable plug kettle blender toaster rug curtain pillow mattress wardrobe"
).split()
HANZI = "退货款包裹配送保修台灯沙发票订单支付换积分会员快递损坏运费地址账户优惠券折扣收据标签颜色尺寸面料靠垫框架抽屉铰链灯泡线插头水壶"


def _vocabulary(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Thousands of English-like and Chinese two-character words, so that a query
    matches a realistic share of chunks instead of nearly all of them."""
    english = [f"{stem}{suffix}" for stem in EN_STEMS for suffix in ("", "s", "ed", "ing", "er")]
    english += [f"{stem}{n}" for stem in EN_STEMS for n in range(60)]
    chinese = sorted({a + b for a in HANZI for b in HANZI if a != b})
    rng.shuffle(english)
    rng.shuffle(chinese)
    return english, chinese


def synthetic_vectors(count: int, *, seed: int, clusters: int = 1000, spread: float = 0.35) -> np.ndarray:
    """Unit vectors around ``clusters`` topic centres (topical passages); ``spread`` is the
    per-dimension noise relative to the centres."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((clusters, DIM)).astype(np.float32)
    labels = rng.integers(0, clusters, count)
    vectors = centres[labels] + spread * rng.standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_texts(count: int, *, seed: int, words: int = 40) -> tuple[list[str], list[str]]:
    """Segmented chunk text (words separated by spaces, as jieba leaves it), Zipf-distributed."""
    rng = np.random.default_rng(seed)
    english, chinese = _vocabulary(np.random.default_rng(54321))

    def zipf(size: int) -> np.ndarray:
        weights = 1 / np.arange(1, size + 1) ** 1.1
        return weights / weights.sum()

    weights = {"en": zipf(len(english)), "zh": zipf(len(chinese))}
    texts, languages = [], []
    for index in range(count):
        vocabulary, language = (chinese, "zh") if index % 2 else (english, "en")
        picks = rng.choice(len(vocabulary), words, p=weights[language])
        texts.append(" ".join(vocabulary[i] for i in picks))
        languages.append(language)
    return texts, languages


def _load_chunks(kb_id: int, count: int, seed: int) -> float:
    """Insert ``count`` live chunks with COPY; returns the HNSW index build time in seconds."""
    from django.db import connection

    from apps.knowledge.models import Document, KnowledgeBase
    from apps.knowledge.services import kb_centroids_refresh, kb_vector_index_ensure, kb_vector_index_name

    knowledge_base = KnowledgeBase.objects.get(pk=kb_id)
    vectors = synthetic_vectors(count, seed=seed)
    texts, languages = synthetic_texts(count, seed=seed + 1)
    per_document = 100
    documents = Document.objects.bulk_create(
        [
            Document(knowledge_base=knowledge_base, title=f"doc {n}", filename=f"doc-{n}.md", content_hash=f"{n:064d}",
                     status=Document.Status.READY, live_version=1)
            for n in range(count // per_document)
        ]
    )  # fmt: skip
    buffer = io.StringIO()
    for index in range(count):
        vector = "[" + ",".join(f"{x:.6f}" for x in vectors[index]) + "]"
        document_id = documents[index // per_document].pk
        row = [str(kb_id), str(document_id), "1", str(index % per_document), "t", "{}", texts[index], "40",
               languages[index], vector, texts[index]]  # fmt: skip
        buffer.write("\t".join(row) + "\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {kb_vector_index_name(knowledge_base)}")
        with cursor.copy(
            "COPY knowledge_chunk (knowledge_base_id, document_id, version, ordinal, is_live, heading_path, text, "
            "token_count, language, embedding, search_text) FROM STDIN"
        ) as copy:
            copy.write(buffer.read())
        cursor.execute("ANALYZE knowledge_chunk")
    started = time.perf_counter()
    kb_vector_index_ensure(knowledge_base=knowledge_base)
    build_s = time.perf_counter() - started
    kb_centroids_refresh(knowledge_base=knowledge_base)
    return build_s


def _vector_top(kb_id: int, query: np.ndarray, k: int, *, ef: int | None) -> tuple[list[int], float]:
    """The k nearest live chunks through the HNSW index at ``ef``, or exactly (index scans
    off: the sequential scan is the baseline) when ``ef`` is None; with the query's time."""
    from django.db import connection, transaction

    from apps.knowledge.selectors import vector_literal

    with transaction.atomic(), connection.cursor() as cursor:
        if ef is None:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        else:
            cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
        started = time.perf_counter()
        cursor.execute(
            f"SELECT id FROM knowledge_chunk WHERE knowledge_base_id = {kb_id} AND is_live "
            f"ORDER BY embedding::vector({DIM}) <=> %s::vector({DIM}) LIMIT %s",
            [vector_literal(query.tolist()), k],
        )
        rows = [row[0] for row in cursor.fetchall()]
        return rows, time.perf_counter() - started


def run_size(count: int, *, queries: int, ef_values: list[int], seed: int) -> dict[str, Any]:
    from apps.knowledge.models import KnowledgeBase
    from apps.knowledge.selectors import kb_search
    from apps.knowledge.services import knowledge_base_create

    knowledge_base = knowledge_base_create(name=f"bench {count}", slug=f"bench-{count}")
    build_s = _load_chunks(knowledge_base.pk, count, seed)
    knowledge_base = KnowledgeBase.objects.get(pk=knowledge_base.pk)
    query_vectors = synthetic_vectors(queries, seed=seed + 99)
    query_texts, _ = synthetic_texts(queries, seed=seed + 98, words=5)

    exact = [_vector_top(knowledge_base.pk, q, 10, ef=None) for q in query_vectors]
    recall: dict[str, Any] = {}
    for ef in ef_values:
        found = [_vector_top(knowledge_base.pk, q, 10, ef=ef) for q in query_vectors]
        hits = [len(set(a) & set(b)) / 10 for (a, _), (b, _) in zip(found, exact, strict=True)]
        recall[str(ef)] = {
            "recall_at_10": float(np.mean(hits)),
            "latency_ms": summary([t * 1000 for _, t in found]),
        }

    hybrid_ms = []
    for vector, text in zip(query_vectors, query_texts, strict=True):
        started = time.perf_counter()
        kb_search(knowledge_base=knowledge_base, query=text, k=5, query_vector=vector.tolist())
        hybrid_ms.append((time.perf_counter() - started) * 1000)
    exact_ms = [t * 1000 for _, t in exact]
    hybrid = summary(hybrid_ms)
    exact_summary = summary(exact_ms)
    return {
        "chunks": count,
        "index_build_s": build_s,
        "hybrid_search_ms": hybrid,
        "exact_vector_search_ms": exact_summary,
        "speedup_vs_exact_p50": exact_summary["p50"] / hybrid["p50"],
        "hnsw": recall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval")
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", nargs="+", type=int, default=[40, 80, 160])
    args = parser.parse_args(argv)
    with benchmark_database():
        results = [run_size(size, queries=args.queries, ef_values=args.ef, seed=7) for size in args.sizes]
    print(
        f"wrote {write_result('retrieval', {'sizes': results, 'note': 'query embedding excluded (measured in ingestion)'})}"
    )


if __name__ == "__main__":
    main()
