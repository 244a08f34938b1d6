"""Writes to the knowledge base: create, upload, ingest, delete, sweep."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from apps.core.logging import log_context
from apps.core.tasks import RETRYABLE_ERRORS
from apps.knowledge.chunking import chunks_build
from apps.knowledge.embedders import embedder_dimension, embedder_for
from apps.knowledge.models import Chunk, Document, IngestionJob, KnowledgeBase, KnowledgeBaseApiKey
from apps.knowledge.parsing import DocumentRejected, detect_format, document_parse
from apps.knowledge.segmentation import segment_for_index

logger = logging.getLogger(__name__)

EMBED_BATCH_SIZE = 32


def kb_vector_index_name(knowledge_base: KnowledgeBase) -> str:
    return f"knowledge_chunk_hnsw_kb{knowledge_base.pk}"


def kb_vector_index_ensure(*, knowledge_base: KnowledgeBase) -> None:
    """One partial HNSW index per knowledge base, over its live chunks, at its
    embedder's dimension. Queries repeat the same expression and predicate
    (``selectors.kb_search``), so the planner uses it and the filter costs nothing."""
    kb_id = int(knowledge_base.pk)
    dimension = int(knowledge_base.embedder_dimension)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {kb_vector_index_name(knowledge_base)} ON knowledge_chunk "
            f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) "
            f"WHERE knowledge_base_id = {kb_id} AND is_live"
        )


def kb_centroids_refresh(*, knowledge_base: KnowledgeBase) -> None:
    """Recompute the per-language mean embeddings of the live chunks (see ``LanguageCentroid``).
    Called in the transaction that changes the live chunks, so search always sees a matching pair."""
    kb_id = int(knowledge_base.pk)
    dimension = int(knowledge_base.embedder_dimension)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH live AS (
                SELECT language, avg(embedding::vector({dimension})) AS centroid, count(*) AS chunk_count
                FROM knowledge_chunk WHERE knowledge_base_id = {kb_id} AND is_live GROUP BY language
            ), upserted AS (
                INSERT INTO knowledge_languagecentroid (knowledge_base_id, language, centroid, chunk_count)
                SELECT {kb_id}, language, centroid, chunk_count FROM live
                ON CONFLICT (knowledge_base_id, language)
                DO UPDATE SET centroid = EXCLUDED.centroid, chunk_count = EXCLUDED.chunk_count
            )
            DELETE FROM knowledge_languagecentroid
            WHERE knowledge_base_id = {kb_id} AND language NOT IN (SELECT language FROM live)
            """
        )


def knowledge_base_create(
    *, name: str, slug: str, language_hints: list[str] | None = None, embedder_name: str | None = None
) -> KnowledgeBase:
    embedder_name = embedder_name or settings.KNOWLEDGE_DEFAULT_EMBEDDER
    with transaction.atomic():
        knowledge_base = KnowledgeBase.objects.create(
            name=name,
            slug=slug,
            language_hints=language_hints or ["zh", "en"],
            embedder_name=embedder_name,
            embedder_dimension=embedder_dimension(embedder_name),
        )
        kb_vector_index_ensure(knowledge_base=knowledge_base)
    return knowledge_base


class UploadRejected(ValueError):
    """An upload refused before anything is stored (answered with a 4xx)."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"

    def __init__(self, reason: str, *, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class UploadResult:
    document: Document
    queued: bool  # False: identical content was already there, nothing to do


def document_upload(
    *,
    knowledge_base: KnowledgeBase,
    filename: str,
    data: bytes,
    uploaded_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> UploadResult:
    """Store an uploaded file and queue its ingestion.

    The same name with changed content becomes a new version that replaces the
    old one when ready; identical content (under any name) is a no-op.
    ``enqueue=False`` leaves the job for the caller to run (``document_ingest``).
    """
    filename = PurePath(filename.replace("\\", "/")).name.strip()[:255] or "document"
    limit = knowledge_base.max_upload_mb * 1024 * 1024
    if not data:
        raise UploadRejected("the file is empty", kind=UploadRejected.EMPTY)
    if len(data) > limit:
        raise UploadRejected(
            f"the file is larger than the {knowledge_base.max_upload_mb} MB limit",
            kind=UploadRejected.TOO_LARGE,
        )
    try:
        file_format = detect_format(data, filename)
    except DocumentRejected as exc:
        raise UploadRejected(exc.reason, kind=UploadRejected.UNSUPPORTED) from exc
    content_hash = hashlib.sha256(data).hexdigest()

    with transaction.atomic():
        KnowledgeBase.objects.select_for_update(no_key=True).get(pk=knowledge_base.pk)
        same_content = Document.objects.filter(knowledge_base=knowledge_base, content_hash=content_hash)
        existing = Document.objects.filter(knowledge_base=knowledge_base, filename=filename).first()
        duplicate = same_content.exclude(status=Document.Status.FAILED).first()
        if duplicate is not None:
            return UploadResult(document=duplicate, queued=False)
        if existing is None:
            document = Document(
                knowledge_base=knowledge_base,
                filename=filename,
                title=PurePath(filename).stem[:300],
                version=1,
            )
        else:
            document = existing
            document.version = existing.version + 1
        document.content_hash = content_hash
        document.size_bytes = len(data)
        document.format = file_format
        document.status = Document.Status.QUEUED
        document.failure_reason = ""
        document.progress = 0.0
        document.uploaded_by = uploaded_by if uploaded_by and uploaded_by.is_authenticated else None
        document.file.save(f"{content_hash[:16]}-{filename}", ContentFile(data), save=False)
        document.save()
        job = IngestionJob.objects.create(document=document, version=document.version)
        if enqueue:
            transaction.on_commit(lambda: _enqueue(job.pk))
    logger.info("document queued", extra={"document_id": document.pk, "version": document.version})
    return UploadResult(document=document, queued=True)


def _enqueue(job_id: int) -> None:
    from apps.knowledge.tasks import ingest_document

    ingest_document.delay(job_id)


def ingestion_job_claim(*, job_id: int) -> bool:
    """Take the job for this worker. A conditional UPDATE with a row count: two
    deliveries of the same message never ingest at once."""
    stale_before = timezone.now() - timedelta(seconds=settings.KNOWLEDGE_JOB_STALE_SECONDS)
    claimed = IngestionJob.objects.filter(
        Q(status=IngestionJob.Status.QUEUED)
        | Q(status=IngestionJob.Status.RUNNING, heartbeat_at__lt=stale_before),
        pk=job_id,
    ).update(
        status=IngestionJob.Status.RUNNING,
        attempts=F("attempts") + 1,
        claimed_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    return claimed == 1


def _job_progress(job: IngestionJob, document: Document, *, status: str, progress: float) -> None:
    now = timezone.now()
    IngestionJob.objects.filter(pk=job.pk).update(heartbeat_at=now)
    Document.objects.filter(pk=document.pk, version=job.version).update(
        status=status, progress=round(progress, 4)
    )


def _job_fail(job: IngestionJob, reason: str) -> None:
    with transaction.atomic():
        IngestionJob.objects.filter(pk=job.pk).update(
            status=IngestionJob.Status.FAILED, error=reason, finished_at=timezone.now()
        )
        # Only the newest version's failure shows on the document; the live version stays searchable.
        Document.objects.filter(pk=job.document_id, version=job.version).update(
            status=Document.Status.FAILED, failure_reason=reason, progress=0.0
        )
        Chunk.objects.filter(document_id=job.document_id, version=job.version, is_live=False).delete()
    # A failure also counts as "done" for a knowledge base being re-embedded.
    _reembed_switch(
        knowledge_base_id=Document.objects.values_list("knowledge_base_id", flat=True).get(pk=job.document_id)
    )


def document_ingest(*, job_id: int) -> None:
    """Parse, chunk and embed one document version, then switch it live atomically.

    Safe to run again after a crash: embedded chunks of this version are kept
    (chunking is deterministic, so ordinals match) and embedding resumes after them.
    """
    if not ingestion_job_claim(job_id=job_id):
        logger.info(
            "ingestion job not claimable (done, running elsewhere, or gone)", extra={"job_id": job_id}
        )
        return
    job = IngestionJob.objects.select_related("document__knowledge_base").get(pk=job_id)
    try:
        _document_ingest_claimed(job)
    except RETRYABLE_ERRORS:
        # The task retries a passing fault (a lost connection, a deadlock): give the job back, or the
        # retry finds it claimed and running and leaves it until the stale-job sweeper, minutes later.
        with contextlib.suppress(DatabaseError):  # a lost connection: the sweeper gives it back instead
            IngestionJob.objects.filter(
                pk=job.pk, status=IngestionJob.Status.RUNNING, claimed_at=job.claimed_at
            ).update(status=IngestionJob.Status.QUEUED)
        raise


def _document_ingest_claimed(job: IngestionJob) -> None:
    document = job.document
    knowledge_base = document.knowledge_base
    with log_context(job_id=job.pk, document_id=document.pk, version=job.version):
        if document.version != job.version:
            IngestionJob.objects.filter(pk=job.pk).update(status=IngestionJob.Status.SUPERSEDED)
            return
        _job_progress(job, document, status=Document.Status.PARSING, progress=0.02)
        try:
            with document.file.open("rb") as fh:
                data = fh.read()
            parsed = document_parse(
                data=data, filename=document.filename, max_bytes=knowledge_base.max_upload_mb * 1024 * 1024
            )
            drafts = chunks_build(
                blocks=parsed.blocks,
                max_tokens=knowledge_base.chunk_max_tokens,
                overlap_tokens=knowledge_base.chunk_overlap_tokens,
            )
            if not drafts:
                raise DocumentRejected("no text was found in the document")
        except DocumentRejected as exc:
            logger.warning("document rejected", extra={"reason": exc.reason})
            _job_fail(job, exc.reason)
            return
        if parsed.title and parsed.title != document.title:
            Document.objects.filter(pk=document.pk).update(title=parsed.title[:300], format=parsed.format)

        embedder = embedder_for(knowledge_base.embedder_name)
        done = Chunk.objects.filter(document=document, version=job.version).aggregate(last=Max("ordinal"))[
            "last"
        ]
        start = 0 if done is None else done + 1
        total = len(drafts)
        _job_progress(job, document, status=Document.Status.EMBEDDING, progress=0.05 + 0.9 * start / total)
        for batch_start in range(start, total, EMBED_BATCH_SIZE):
            batch = drafts[batch_start : batch_start + EMBED_BATCH_SIZE]
            # The heading path travels with the text: "Returns > Damaged items: ..." embeds the context.
            vectors = embedder.embed_passages(
                [" > ".join((*draft.heading_path, draft.text)) for draft in batch]
            )
            Chunk.objects.bulk_create(
                [
                    Chunk(
                        knowledge_base=knowledge_base,
                        document=document,
                        version=job.version,
                        ordinal=draft.ordinal,
                        heading_path=list(draft.heading_path),
                        text=draft.text,
                        token_count=draft.token_count,
                        language=draft.language,
                        embedding=vector,
                        search_text=segment_for_index(" ".join((*draft.heading_path, draft.text))),
                    )
                    for draft, vector in zip(batch, vectors, strict=True)
                ]
            )
            done_count = batch_start + len(batch)
            _job_progress(
                job, document, status=Document.Status.EMBEDDING, progress=0.05 + 0.9 * done_count / total
            )
        _switch_live(job, document, chunk_count=total)


def _switch_live(job: IngestionJob, document: Document, *, chunk_count: int) -> None:
    if KnowledgeBase.objects.filter(pk=document.knowledge_base_id).exclude(pending_embedder_name="").exists():
        _reembed_job_done(job, document, chunk_count=chunk_count)
        return
    with transaction.atomic():
        locked = Document.objects.select_for_update(no_key=True).get(pk=document.pk)
        if locked.version != job.version:
            # A newer upload arrived meanwhile; its own job will switch it live.
            Chunk.objects.filter(document=locked, version=job.version).delete()
            IngestionJob.objects.filter(pk=job.pk).update(
                status=IngestionJob.Status.SUPERSEDED, finished_at=timezone.now()
            )
            return
        Chunk.objects.filter(document=locked).exclude(version=job.version).delete()
        Chunk.objects.filter(document=locked, version=job.version).update(is_live=True)
        kb_centroids_refresh(knowledge_base=locked.knowledge_base)
        now = timezone.now()
        Document.objects.filter(pk=locked.pk).update(
            status=Document.Status.READY,
            live_version=job.version,
            chunk_count=chunk_count,
            progress=1.0,
            failure_reason="",
            ready_at=now,
        )
        IngestionJob.objects.filter(pk=job.pk).update(
            status=IngestionJob.Status.SUCCEEDED, finished_at=now, heartbeat_at=now, error=""
        )
    logger.info("document ready", extra={"chunks": chunk_count})


def knowledge_base_reembed(*, knowledge_base: KnowledgeBase, embedder_name: str, enqueue: bool = True) -> int:
    """Re-embed every document with ``embedder_name`` (another model, another dimension).

    Each document gets a new version embedded with the new model beside the live one;
    search keeps using the old model and chunks meanwhile. When the last document is
    done, everything switches over in one transaction (``_reembed_switch``): old chunks
    out, new ones live, the vector index rebuilt at the new dimension. Returns the
    number of documents queued; ``enqueue=False`` leaves their jobs for the caller to run
    (``document_ingest``), as ``document_upload`` does.
    """
    embedder_dimension(embedder_name)  # unknown names fail here, before anything changes
    with transaction.atomic():
        locked = KnowledgeBase.objects.select_for_update(no_key=True).get(pk=knowledge_base.pk)
        locked.pending_embedder_name = embedder_name
        locked.save(update_fields=["pending_embedder_name", "updated_at"])
        documents = list(
            Document.objects.select_for_update(no_key=True).filter(knowledge_base=locked).order_by("pk")
        )
        jobs = []
        for document in documents:
            document.version += 1
            document.save(update_fields=["version", "updated_at"])
            jobs.append(IngestionJob.objects.create(document=document, version=document.version))
        if enqueue:
            transaction.on_commit(lambda: [_enqueue(job.pk) for job in jobs])
    if not documents:
        _reembed_switch(knowledge_base_id=knowledge_base.pk)
    return len(documents)


def _reembed_job_done(job: IngestionJob, document: Document, *, chunk_count: int) -> None:
    now = timezone.now()
    IngestionJob.objects.filter(pk=job.pk).update(
        status=IngestionJob.Status.SUCCEEDED, finished_at=now, heartbeat_at=now, error=""
    )
    logger.info(
        "document re-embedded; waiting for the rest of the knowledge base", extra={"chunks": chunk_count}
    )
    _reembed_switch(knowledge_base_id=document.knowledge_base_id)


def _reembed_switch(*, knowledge_base_id: int) -> None:
    """Switch the whole knowledge base to its pending embedder once every document's
    newest version is embedded (or failed, in which case its old version is dropped too).

    The row locks are FOR NO KEY UPDATE (no key changes here): a plain FOR UPDATE also blocks the
    FOR KEY SHARE locks that inserting a chunk takes on its document and knowledge base (foreign-key
    checks), and a document still being embedded then deadlocked with this check (seen in CI: one of
    two documents' jobs died with "deadlock detected" and the knowledge base never switched)."""
    with transaction.atomic():
        knowledge_base = KnowledgeBase.objects.select_for_update(no_key=True).get(pk=knowledge_base_id)
        if not knowledge_base.pending_embedder_name:
            return
        documents = list(
            Document.objects.select_for_update(no_key=True)
            .filter(knowledge_base=knowledge_base)
            .order_by("pk")
        )
        newest = {
            (job.document_id, job.version): job.status
            for job in IngestionJob.objects.filter(document__in=documents)
        }
        finished = {IngestionJob.Status.SUCCEEDED, IngestionJob.Status.FAILED}
        if any(newest.get((d.pk, d.version)) not in finished for d in documents):
            return
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {kb_vector_index_name(knowledge_base)}")
        now = timezone.now()
        for document in documents:
            succeeded = newest[(document.pk, document.version)] == IngestionJob.Status.SUCCEEDED
            Chunk.objects.filter(document=document).exclude(version=document.version).delete()
            if succeeded:
                count = Chunk.objects.filter(document=document, version=document.version).update(is_live=True)
                Document.objects.filter(pk=document.pk).update(
                    status=Document.Status.READY, live_version=document.version, chunk_count=count,
                    progress=1.0, failure_reason="", ready_at=now,
                )  # fmt: skip
            else:
                Document.objects.filter(pk=document.pk).update(live_version=None, chunk_count=0)
        knowledge_base.embedder_name = knowledge_base.pending_embedder_name
        knowledge_base.embedder_dimension = embedder_dimension(knowledge_base.pending_embedder_name)
        knowledge_base.pending_embedder_name = ""
        knowledge_base.save(update_fields=["embedder_name", "embedder_dimension", "pending_embedder_name"])
        kb_vector_index_ensure(knowledge_base=knowledge_base)
        kb_centroids_refresh(knowledge_base=knowledge_base)
    logger.info("knowledge base switched to its new embedder", extra={"knowledge_base_id": knowledge_base_id})


def document_delete(*, document: Document) -> None:
    """Delete a document and its chunks in one transaction; the file goes after commit."""
    storage, name = document.file.storage, document.file.name
    knowledge_base = document.knowledge_base
    with transaction.atomic():
        document.delete()
        kb_centroids_refresh(knowledge_base=knowledge_base)
        if name:
            transaction.on_commit(lambda: storage.delete(name))


def ingestion_jobs_requeue_stale(*, older_than_seconds: int | None = None) -> list[int]:
    """Re-queue jobs stuck in a non-final state: queued but never picked up (a
    lost broker message) or running with a stopped heartbeat (a killed worker)."""
    seconds = older_than_seconds if older_than_seconds is not None else settings.KNOWLEDGE_JOB_STALE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stale = list(
        IngestionJob.objects.filter(
            Q(status=IngestionJob.Status.QUEUED, created_at__lt=cutoff)
            | Q(status=IngestionJob.Status.RUNNING, heartbeat_at__lt=cutoff)
        ).values_list("pk", flat=True)
    )
    for job_id in stale:
        _enqueue(job_id)
    if stale:
        logger.warning("re-queued stale ingestion jobs", extra={"job_ids": stale})
    return stale


# --- API keys of the OpenAI-compatible endpoint ---------------------------------------------

API_KEY_PREFIX = "sdk_"  # recognisable in logs and by secret scanners
API_KEY_DISPLAY_CHARS = 12  # "sdk_" + 8 random characters, kept to list and revoke keys
API_KEY_TOUCH_SECONDS = 60  # last_used_at is updated at most this often per key


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: KnowledgeBaseApiKey
    key: str  # shown once; only its hash is stored


def api_key_create(*, knowledge_base: KnowledgeBase, name: str = "") -> CreatedApiKey:
    while True:
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = key[:API_KEY_DISPLAY_CHARS]
        # 48 random bits in the prefix: a clash is next to impossible, but the prefix must stay unique.
        if not KnowledgeBaseApiKey.objects.filter(prefix=prefix).exists():
            break
    api_key = KnowledgeBaseApiKey.objects.create(
        knowledge_base=knowledge_base, name=name, prefix=prefix, key_hash=api_key_hash(key)
    )
    logger.info("api key created", extra={"knowledge_base": knowledge_base.slug, "key_prefix": prefix})
    return CreatedApiKey(api_key=api_key, key=key)


def api_key_revoke(*, prefix: str) -> KnowledgeBaseApiKey | None:
    """Revoke the key shown as ``prefix``; None when there is no such key. Revoking twice
    keeps the first revocation time."""
    api_key = KnowledgeBaseApiKey.objects.filter(prefix=prefix).first()
    if api_key is None:
        return None
    KnowledgeBaseApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    api_key.refresh_from_db()
    logger.info("api key revoked", extra={"key_prefix": prefix})
    return api_key


async def api_key_authenticate(*, key: str) -> KnowledgeBaseApiKey | None:
    """The live key presented as ``key`` with its knowledge base, or None (unknown or revoked).
    Records when it was last used, at most once a minute, so a busy key costs one query."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    api_key = (
        await KnowledgeBaseApiKey.objects.select_related("knowledge_base")
        .filter(key_hash=api_key_hash(key), revoked_at__isnull=True)
        .afirst()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(seconds=API_KEY_TOUCH_SECONDS):
        api_key.last_used_at = now
        await KnowledgeBaseApiKey.objects.filter(pk=api_key.pk).aupdate(last_used_at=now)
    return api_key


def identity_secret_rotate(*, knowledge_base: KnowledgeBase) -> str:
    """A new secret for signing customer ids (identity verification on). The old one stops
    working at once: signatures the shop's server made with it are then refused (403)."""
    secret = secrets.token_hex(32)
    KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(
        identity_secret=secret, updated_at=timezone.now()
    )
    knowledge_base.identity_secret = secret
    logger.info("identity secret rotated", extra={"knowledge_base": knowledge_base.slug})
    return secret


def identity_secret_clear(*, knowledge_base: KnowledgeBase) -> None:
    """Identity verification off: new conversations are anonymous whatever the page sends."""
    KnowledgeBase.objects.filter(pk=knowledge_base.pk).update(identity_secret="", updated_at=timezone.now())
    knowledge_base.identity_secret = ""
    logger.info("identity secret cleared", extra={"knowledge_base": knowledge_base.slug})
