"""Widget endpoints, mounted at /widget/api/."""

from django.urls import path

from apps.widget.conversation_views import (
    ConversationStreamView,
    CsatView,
    HumanRequestView,
    MessageRatingView,
)
from apps.widget.views import ConversationMessagesView, ConversationStartView

app_name = "widget"

urlpatterns = [
    path("<str:public_key>/conversations", ConversationStartView.as_view(), name="conversations"),
    path("<str:public_key>/messages", ConversationMessagesView.as_view(), name="messages"),
    path(
        "<str:public_key>/messages/<int:message_id>/rating",
        MessageRatingView.as_view(),
        name="message-rating",
    ),
    path("<str:public_key>/human", HumanRequestView.as_view(), name="human"),
    path("<str:public_key>/csat", CsatView.as_view(), name="csat"),
    path("<str:public_key>/stream", ConversationStreamView.as_view(), name="stream"),
]
