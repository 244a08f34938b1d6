"""Admin REST endpoints: upload documents, follow their ingestion, delete them."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsShopAdmin
from apps.knowledge.models import Document, KnowledgeBase
from apps.knowledge.services import UploadRejected, document_delete, document_upload

UPLOAD_REJECTION_STATUS = {
    UploadRejected.EMPTY: status.HTTP_400_BAD_REQUEST,
    UploadRejected.TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    UploadRejected.UNSUPPORTED: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
}


class DocumentOutputSerializer(serializers.ModelSerializer):
    knowledge_base = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Document
        fields = [
            "id", "knowledge_base", "title", "filename", "format", "size_bytes", "content_hash", "version",
            "live_version", "status", "failure_reason", "progress", "chunk_count", "created_at", "updated_at",
            "ready_at",
        ]  # fmt: skip
        read_only_fields = fields


class DocumentUploadInputSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class DocumentListCreateApi(APIView):
    permission_classes = [IsShopAdmin]
    parser_classes = [MultiPartParser]

    @extend_schema(responses=DocumentOutputSerializer(many=True), operation_id="knowledge_documents_list")
    def get(self, request: Request, slug: str) -> Response:
        knowledge_base = get_object_or_404(KnowledgeBase, slug=slug)
        documents = Document.objects.filter(knowledge_base=knowledge_base).select_related("knowledge_base")
        return Response(DocumentOutputSerializer(documents, many=True).data)

    @extend_schema(
        request={"multipart/form-data": DocumentUploadInputSerializer},
        responses={
            202: DocumentOutputSerializer,
            200: OpenApiResponse(DocumentOutputSerializer, description="identical content: nothing to do"),
            400: ErrorSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
        },
        operation_id="knowledge_documents_upload",
    )
    def post(self, request: Request, slug: str) -> Response:
        knowledge_base = get_object_or_404(KnowledgeBase, slug=slug)
        serializer = DocumentUploadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size > knowledge_base.max_upload_mb * 1024 * 1024:
            # Refused before reading the file into memory.
            return Response(
                {"detail": f"the file is larger than the {knowledge_base.max_upload_mb} MB limit"},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            result = document_upload(
                knowledge_base=knowledge_base,
                filename=upload.name,
                data=upload.read(),
                uploaded_by=request.user,
            )
        except UploadRejected as exc:
            return Response({"detail": exc.reason}, status=UPLOAD_REJECTION_STATUS[exc.kind])
        return Response(
            DocumentOutputSerializer(result.document).data,
            status=status.HTTP_202_ACCEPTED if result.queued else status.HTTP_200_OK,
        )


class DocumentDetailApi(APIView):
    permission_classes = [IsShopAdmin]

    @extend_schema(responses=DocumentOutputSerializer, operation_id="knowledge_document_retrieve")
    def get(self, request: Request, document_id: int) -> Response:
        document = get_object_or_404(Document.objects.select_related("knowledge_base"), pk=document_id)
        return Response(DocumentOutputSerializer(document).data)

    @extend_schema(responses={204: None}, operation_id="knowledge_document_delete")
    def delete(self, request: Request, document_id: int) -> Response:
        document_delete(document=get_object_or_404(Document, pk=document_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
