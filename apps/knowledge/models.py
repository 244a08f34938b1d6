"""Knowledge bases, their documents, ingestion jobs and searchable chunks.

A document's chunks are searchable only while ``is_live``: a new version is
embedded beside the old one and switched live in one transaction, so readers
never see a half-indexed document. Each knowledge base gets its own partial
HNSW index over ``embedding::vector(dim)`` (see ``services.kb_vector_index_ensure``),
which lets knowledge bases use embedders of different dimensions and makes the
per-knowledge-base filter part of the index instead of a post-filter.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from pgvector.django import VectorField


class KnowledgeBase(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    language_hints = ArrayField(models.CharField(max_length=8), default=list, blank=True)
    embedder_name = models.CharField(max_length=100, default="multilingual-e5-small")
    embedder_dimension = models.PositiveIntegerField(default=384)
    # Set while the knowledge base is being re-embedded with another model: new versions
    # are embedded with it, and everything switches over at once when all are done.
    pending_embedder_name = models.CharField(max_length=100, blank=True)
    chunk_max_tokens = models.PositiveIntegerField(
        default=320, validators=[MinValueValidator(64), MaxValueValidator(500)]
    )
    chunk_overlap_tokens = models.PositiveIntegerField(default=40, validators=[MaxValueValidator(200)])
    max_upload_mb = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    system_prompt = models.TextField(blank=True)
    # Shared with the shop's server, which signs its customer ids with it (HMAC-SHA256) so
    # the widget can carry a verified identity; blank turns verification off. Never sent to
    # a browser; set and rotated with ``manage.py kb_identity_secret``.
    identity_secret = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PARSING = "parsing"
        EMBEDDING = "embedding"
        READY = "ready"
        FAILED = "failed"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    filename = models.CharField(max_length=255)
    file = models.FileField(upload_to="documents/%Y/%m/", max_length=500)
    size_bytes = models.PositiveBigIntegerField(default=0)
    content_hash = models.CharField(max_length=64)
    format = models.CharField(max_length=16, blank=True)
    # ``version`` counts uploads of changed content; ``live_version`` is the one searchable.
    version = models.PositiveIntegerField(default=1)
    live_version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    chunk_count = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["knowledge_base", "filename"]
        constraints = [
            models.UniqueConstraint(
                fields=["knowledge_base", "filename"], name="knowledge_document_unique_name"
            ),
        ]
        indexes = [models.Index(fields=["knowledge_base", "content_hash"])]

    def __str__(self) -> str:
        return self.title


class IngestionJob(models.Model):
    """The durable record of one ingestion of one document version.

    Workers claim it with a conditional UPDATE (see ``services.ingestion_job_claim``);
    the sweeper re-queues jobs whose heartbeat stopped.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SUPERSEDED = "superseded"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="jobs")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "version"], name="knowledge_job_unique_version"),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"ingestion of document {self.document_id} v{self.version} ({self.status})"


class Chunk(models.Model):
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    version = models.PositiveIntegerField()
    ordinal = models.PositiveIntegerField()
    is_live = models.BooleanField(default=False)
    heading_path = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    language = models.CharField(max_length=8)
    # Untyped ``vector``: the dimension belongs to the knowledge base's embedder.
    embedding = VectorField()
    # jieba-segmented text (Chinese words separated by spaces), lower-cased.
    search_text = models.TextField()
    search_vector = models.GeneratedField(
        expression=SearchVector("search_text", config="shopdesk"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document", "version", "ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "version", "ordinal"], name="knowledge_chunk_unique_ordinal"
            ),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="knowledge_chunk_search_gin"),
            models.Index(fields=["knowledge_base", "is_live"], name="knowledge_chunk_kb_live"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.ordinal} of document {self.document_id} v{self.version}"


class LanguageCentroid(models.Model):
    """Mean embedding of a knowledge base's live chunks in one language.

    Multilingual embedders score a question higher against any passage in its own
    language than against the right passage in another language. Subtracting the
    question's similarity to each language's centroid removes that offset, since
    ``mean(q·p) = q·mean(p)`` (measured on the demo set: hit@1 28/48 → 39/48, and
    Chinese questions about English passages 0/11 → 11/11; see the README).
    """

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="centroids")
    language = models.CharField(max_length=8)
    centroid = VectorField()
    chunk_count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["knowledge_base", "language"], name="knowledge_centroid_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.language} centroid of {self.knowledge_base_id}"


class KnowledgeBaseApiKey(models.Model):
    """A bearer key for the OpenAI-compatible endpoint that grants one knowledge base.

    Only the sha256 of the key is stored (the key is a random 256-bit token, so a plain
    hash is enough: nothing to brute-force); ``prefix`` (the key's first characters) is
    kept to recognise and revoke a key without knowing it.
    """

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["knowledge_base", "created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.knowledge_base_id})"
