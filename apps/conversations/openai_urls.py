"""The OpenAI-compatible API, mounted at ``/v1/``."""

from django.urls import path

from apps.conversations import openai_api

urlpatterns = [
    path("chat/completions", openai_api.chat_completions, name="openai-chat-completions"),
    path("models", openai_api.models_list, name="openai-models"),
    path("models/<str:model>", openai_api.model_retrieve, name="openai-model"),
]
