from django.urls import path

from apps.knowledge import api

urlpatterns = [
    path(
        "knowledge-bases/<slug:slug>/documents/",
        api.DocumentListCreateApi.as_view(),
        name="knowledge-documents",
    ),
    path("documents/<int:document_id>/", api.DocumentDetailApi.as_view(), name="knowledge-document"),
]
