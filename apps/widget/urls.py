"""Widget endpoints, mounted at /widget/api/."""

from django.urls import path

from apps.widget.views import ConversationMessagesView, ConversationStartView

app_name = "widget"

urlpatterns = [
    path("<str:public_key>/conversations", ConversationStartView.as_view(), name="conversations"),
    path("<str:public_key>/messages", ConversationMessagesView.as_view(), name="messages"),
]
