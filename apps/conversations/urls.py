from django.urls import path

from apps.conversations import api

urlpatterns = [
    path("conversations/", api.conversation_create, name="widget-conversation-create"),
    path("conversations/<int:conversation_id>/messages/", api.conversation_messages, name="widget-messages"),
    path("conversations/<int:conversation_id>/send/", api.conversation_message_send, name="widget-send"),
    path("conversations/<int:conversation_id>/handoff/", api.conversation_handoff, name="widget-handoff"),
    path(
        "conversations/<int:conversation_id>/messages/<int:message_id>/feedback/",
        api.message_feedback,
        name="widget-feedback",
    ),
]
