"""Who may use the inbox: any signed-in Deskpilot user (agents and admins)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.urls import reverse_lazy
from django_htmx.middleware import HtmxDetails

from apps.accounts.models import User

# The inbox has its own sign-in page; the Django admin keeps settings.LOGIN_URL.
inbox_login_required = login_required(login_url=reverse_lazy("inbox:login"))


class InboxRequest(HttpRequest):
    """The request an inbox view receives, for the type checker only (Django builds a plain
    HttpRequest): `inbox_login_required` lets only signed-in users through, so `user` is a
    `User`, and `HtmxMiddleware` sets `htmx` on every request."""

    user: User
    htmx: HtmxDetails
