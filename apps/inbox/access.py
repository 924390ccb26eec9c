"""Who may use the inbox: any signed-in Deskpilot user (agents and admins)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.urls import reverse_lazy

# The inbox has its own sign-in page; the Django admin keeps settings.LOGIN_URL.
inbox_login_required = login_required(login_url=reverse_lazy("inbox:login"))
