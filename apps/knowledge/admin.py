from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.knowledge.models import Document, IngestionJob, KnowledgeBase
from apps.knowledge.services import document_delete, knowledge_base_create


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "embedder_name", "document_count", "upload_link"]
    search_fields = ["name", "slug"]
    readonly_fields = [
        "embedder_name",
        "embedder_dimension",
        "identity_verification",
        "created_at",
        "updated_at",
    ]
    # The identity secret is shown once by ``manage.py kb_identity_secret``, never on a page.
    exclude = ["identity_secret"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description="identity verification")
    def identity_verification(self, obj: KnowledgeBase) -> str:
        return "on" if obj.identity_secret else "off (manage.py kb_identity_secret --kb SLUG turns it on)"

    @admin.display(description="documents")
    def document_count(self, obj: KnowledgeBase) -> int:
        return obj.documents.count()

    @admin.display(description="")
    def upload_link(self, obj: KnowledgeBase) -> str:
        return format_html(
            '<a href="{}">Upload documents</a>', reverse("admin:knowledge_upload", args=[obj.slug])
        )

    def save_model(self, request: HttpRequest, obj: KnowledgeBase, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = knowledge_base_create(name=obj.name, slug=obj.slug, language_hints=obj.language_hints)
        obj.pk = created.pk
        KnowledgeBase.objects.filter(pk=created.pk).update(
            chunk_max_tokens=obj.chunk_max_tokens,
            chunk_overlap_tokens=obj.chunk_overlap_tokens,
            max_upload_mb=obj.max_upload_mb,
            system_prompt=obj.system_prompt,
        )

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path(
                "<slug:slug>/upload/",
                self.admin_site.admin_view(self.upload_view),
                name="knowledge_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest, slug: str) -> HttpResponse:
        """Drag-and-drop several files; a live list of documents with progress and errors.
        The page talks to the admin REST API (session auth), the same one scripts use."""
        knowledge_base = get_object_or_404(KnowledgeBase, slug=slug)
        if not self.has_change_permission(request, knowledge_base):
            messages.error(request, "You may not upload to this knowledge base.")
            return redirect("admin:knowledge_knowledgebase_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Upload documents to {knowledge_base.name}",
            "knowledge_base": knowledge_base,
            "opts": self.model._meta,
            "list_url": reverse("knowledge-documents", args=[knowledge_base.slug]),
            "max_upload_mb": knowledge_base.max_upload_mb,
        }
        return TemplateResponse(request, "admin/knowledge/upload.html", context)


class IngestionJobInline(admin.TabularInline):
    model = IngestionJob
    extra = 0
    can_delete = False
    fields = ["version", "status", "attempts", "error", "created_at", "heartbeat_at", "finished_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "knowledge_base",
        "format",
        "status",
        "progress_percent",
        "chunk_count",
        "version",
        "updated_at",
    ]
    list_filter = ["knowledge_base", "status", "format"]
    search_fields = ["title", "filename"]
    readonly_fields = [
        "knowledge_base", "title", "filename", "file", "size_bytes", "content_hash", "format", "version",
        "live_version", "status", "failure_reason", "progress", "chunk_count", "uploaded_by", "created_at",
        "updated_at", "ready_at",
    ]  # fmt: skip
    inlines = [IngestionJobInline]
    actions = ["delete_with_chunks"]

    @admin.display(description="progress")
    def progress_percent(self, obj: Document) -> str:
        return f"{obj.progress * 100:.0f}%"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Documents are added through the upload page, which queues ingestion.
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Delete the selected documents and their chunks")
    def delete_with_chunks(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        count = 0
        for document in queryset:
            document_delete(document=document)
            count += 1
        self.message_user(request, f"Deleted {count} document(s).")

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        document_delete(document=obj)
