"""Reads from the knowledge base: hybrid retrieval."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from apps.knowledge.embedders import embedder_for
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.segmentation import query_terms, websearch_query


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: int
    document_title: str
    filename: str
    heading_path: list[str]
    text: str
    score: float  # fused reciprocal-rank score
    vector_rank: int | None
    lexical_rank: int | None
    similarity: float | None  # cosine similarity of query and chunk (uncorrected), when a vector candidate


# Hybrid retrieval in one statement:
# 1. Vector candidates per language, each from the knowledge base's partial HNSW index
#    (``services.kb_vector_index_ensure``; the expression and predicate are repeated so the
#    planner uses it, and the language filter relies on pgvector 0.8's iterative scans).
#    Each candidate's cosine similarity is corrected by the query's similarity to its
#    language's centroid (``models.LanguageCentroid``), so a Chinese question can rank an
#    English passage first and the reverse.
# 2. Full-text candidates over the jieba-segmented ``search_vector``.
# 3. Weighted reciprocal-rank fusion of both lists.
# ``{kb_id}`` and ``{dim}`` are integers from our own database, inlined so the predicate
# matches the partial index literally.
HYBRID_SQL = """
WITH query AS (SELECT %(query_vector)s::vector({dim}) AS embedding),
languages AS (
    SELECT c.language, (c.centroid::vector({dim}) <#> q.embedding) * -1 AS bias
    FROM knowledge_languagecentroid c, query q
    WHERE c.knowledge_base_id = {kb_id}
),
vector_candidates AS (
    SELECT nearest.id, nearest.similarity, nearest.similarity - l.bias AS adjusted
    FROM languages l
    CROSS JOIN LATERAL (
        -- The query vector is repeated as a parameter, not read from the CTE: an HNSW
        -- index scan needs a constant to order by.
        SELECT ch.id, 1 - ((ch.embedding::vector({dim})) <=> %(query_vector)s::vector({dim})) AS similarity
        FROM knowledge_chunk ch
        WHERE ch.knowledge_base_id = {kb_id} AND ch.is_live AND ch.language = l.language
        ORDER BY (ch.embedding::vector({dim})) <=> %(query_vector)s::vector({dim})
        LIMIT %(candidates)s
    ) AS nearest
),
vector_hits AS (
    SELECT id, similarity, row_number() OVER (ORDER BY adjusted DESC, id) AS rank
    FROM vector_candidates
    ORDER BY adjusted DESC, id
    LIMIT %(candidates)s
),
lexical_matches AS (
    -- Ranking is the costly part of full-text search, so at most lexical_scan_limit
    -- matches are ranked: a question of common words would otherwise rank most of the
    -- knowledge base, for a signal that only breaks ties between vector candidates.
    SELECT id, search_vector, tsq
    FROM knowledge_chunk, websearch_to_tsquery('shopdesk', %(query_text)s) AS tsq
    WHERE knowledge_base_id = {kb_id} AND is_live AND search_vector @@ tsq
    LIMIT %(lexical_scan_limit)s
),
lexical_hits AS (
    SELECT id, row_number() OVER (ORDER BY lexical_score DESC, id) AS rank
    FROM (
        SELECT id, ts_rank(search_vector, tsq) AS lexical_score
        FROM lexical_matches
        ORDER BY lexical_score DESC, id
        LIMIT %(candidates)s
    ) AS matching
),
fused AS (
    SELECT COALESCE(v.id, l.id) AS id,
           COALESCE(%(vector_weight)s / (%(rrf_k)s + v.rank), 0)
             + COALESCE(%(lexical_weight)s / (%(rrf_k)s + l.rank), 0) AS score,
           v.rank AS vector_rank, l.rank AS lexical_rank, v.similarity
    FROM vector_hits v FULL OUTER JOIN lexical_hits l ON v.id = l.id
)
SELECT c.id, c.document_id, d.title, d.filename, c.heading_path, c.text,
       f.score, f.vector_rank, f.lexical_rank, f.similarity
FROM fused f
JOIN knowledge_chunk c ON c.id = f.id
JOIN knowledge_document d ON d.id = c.document_id
ORDER BY f.score DESC, c.id
LIMIT %(k)s
"""


def vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{value:.7f}" for value in vector) + "]"


def kb_search(
    *,
    knowledge_base: KnowledgeBase,
    query: str,
    k: int = 5,
    candidates: int | None = None,
    ef_search: int | None = None,
    vector_weight: float | None = None,
    lexical_weight: float | None = None,
    query_vector: list[float] | None = None,
) -> list[SearchHit]:
    """The ``k`` best live chunks of ``knowledge_base`` for ``query`` (Chinese or English).

    ``query_vector`` lets a caller that embedded the query already (a benchmark) skip the encoder.
    """
    if query_vector is None:
        query_vector = embedder_for(knowledge_base.embedder_name).embed_queries([query])[0]
    terms = query_terms(query)
    params = {
        "query_vector": vector_literal(query_vector),
        "query_text": websearch_query(terms) if terms else "",
        "candidates": candidates or settings.KNOWLEDGE_SEARCH_CANDIDATES,
        "vector_weight": settings.KNOWLEDGE_VECTOR_WEIGHT if vector_weight is None else vector_weight,
        "lexical_weight": settings.KNOWLEDGE_LEXICAL_WEIGHT if lexical_weight is None else lexical_weight,
        "rrf_k": settings.KNOWLEDGE_RRF_K,
        "lexical_scan_limit": settings.KNOWLEDGE_LEXICAL_SCAN_LIMIT,
        "k": k,
    }
    sql = HYBRID_SQL.format(kb_id=int(knowledge_base.pk), dim=int(knowledge_base.embedder_dimension))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [int(ef_search or settings.KNOWLEDGE_HNSW_EF_SEARCH)])
        # pgvector 0.8: keep scanning when a filter drops candidates, so k rows come back.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        SearchHit(
            chunk_id=row[0],
            document_id=row[1],
            document_title=row[2],
            filename=row[3],
            heading_path=list(row[4]),
            text=row[5],
            score=float(row[6]),
            vector_rank=row[7],
            lexical_rank=row[8],
            similarity=float(row[9]) if row[9] is not None else None,
        )
        for row in rows
    ]
