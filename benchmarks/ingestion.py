"""Ingestion throughput: chunks per second through the whole pipeline (parse, chunk,
embed, store, switch live) against the raw encoder on the same chunk texts, in the
same run. The corpus is generated deterministically from a seed, mixed Chinese and English.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import write_result
from benchmarks.services import benchmark_database

EN_SENTENCES = [
    "Items can be returned within {n} days of delivery if they are unused.",
    "Refunds reach the original payment method within {n} business days.",
    "Orders over {n} dollars ship for free to the mainland.",
    "Warranty claims need the order number and a photo of the fault.",
    "Large furniture is delivered to your room by a two-person team within {n} days.",
    "Points expire {n} months after they are earned.",
]
ZH_SENTENCES = [
    "商品签收后{n}天内可以申请无理由退货。",
    "退款将在{n}个工作日内原路退回。",
    "订单满{n}元包邮，偏远地区除外。",
    "保修申请需要提供订单号和故障照片。",
    "大件家具由专业团队在{n}天内送货上门。",
    "积分自获得之日起{n}个月内有效。",
]


def synthetic_documents(count: int, *, seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    documents = []
    for index in range(count):
        chinese = index % 2 == 1
        sentences = ZH_SENTENCES if chinese else EN_SENTENCES
        lines = [f"# {'政策' if chinese else 'Policy'} {index}", ""]
        for section in range(12):
            lines += [f"## {'第' + str(section + 1) + '节' if chinese else f'Section {section + 1}'}", ""]
            for _ in range(3):
                picks = rng.choice(len(sentences), 4)
                joiner = "" if chinese else " "
                lines += [joiner.join(sentences[p].format(n=int(rng.integers(2, 90))) for p in picks), ""]
        documents.append((f"policy-{index}.md", "\n".join(lines).encode()))
    return documents


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingestion")
    parser.add_argument("--documents", type=int, default=8)
    args = parser.parse_args(argv)
    with benchmark_database():
        from apps.knowledge.chunking import chunks_build
        from apps.knowledge.embedders import embedder_for
        from apps.knowledge.models import Chunk, IngestionJob
        from apps.knowledge.parsing import document_parse
        from apps.knowledge.services import (
            EMBED_BATCH_SIZE,
            document_ingest,
            document_upload,
            knowledge_base_create,
        )

        knowledge_base = knowledge_base_create(name="bench ingestion", slug="bench-ingestion")
        embedder = embedder_for(knowledge_base.embedder_name)
        embedder.embed_passages(["warm-up"])
        documents = synthetic_documents(args.documents, seed=11)

        texts = []
        for name, data in documents:
            for draft in chunks_build(
                blocks=document_parse(data=data, filename=name).blocks,
                max_tokens=knowledge_base.chunk_max_tokens,
                overlap_tokens=knowledge_base.chunk_overlap_tokens,
            ):
                texts.append(" > ".join((*draft.heading_path, draft.text)))
        started = time.perf_counter()
        for start in range(0, len(texts), EMBED_BATCH_SIZE):
            embedder.embed_passages(texts[start : start + EMBED_BATCH_SIZE])
        encoder_s = time.perf_counter() - started

        # The worker's service runs in-process: the broker hop is not what is measured.
        uploads = [
            document_upload(knowledge_base=knowledge_base, filename=n, data=d, enqueue=False)
            for n, d in documents
        ]
        started = time.perf_counter()
        for upload in uploads:
            document_ingest(job_id=IngestionJob.objects.get(document=upload.document).pk)
        pipeline_s = time.perf_counter() - started
        chunks = Chunk.objects.filter(knowledge_base=knowledge_base, is_live=True).count()
        assert chunks == len(texts), (chunks, len(texts))
    result: dict[str, Any] = {
        "documents": len(documents),
        "chunks": chunks,
        "raw_encoder_chunks_per_s": len(texts) / encoder_s,
        "pipeline_chunks_per_s": chunks / pipeline_s,
        "ratio": (chunks / pipeline_s) / (len(texts) / encoder_s),
    }
    print(f"wrote {write_result('ingestion', result)}")


if __name__ == "__main__":
    main()
