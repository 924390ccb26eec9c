"""The agent's own view: what the copilot did on their tickets today."""

from __future__ import annotations

from datetime import datetime, time

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.accounts.access import request_user
from apps.feedback.selectors import agent_day
from apps.inbox.access import InboxRequest, inbox_login_required


def _start_of_today() -> datetime:
    now = timezone.localtime()
    return timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)


@inbox_login_required
def my_day(request: InboxRequest) -> HttpResponse:
    since = _start_of_today()
    day = agent_day(user_id=request_user(request).pk, since=since)
    return render(request, "inbox/my_day.html", {"day": day, "since": since})
