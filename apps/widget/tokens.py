"""Signed visitor tokens: a visitor's proof that a widget conversation is theirs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from apps.accounts.models import WidgetKey

SALT = "deskpilot.widget.visitor"


@dataclass(frozen=True)
class Visitor:
    widget_key_id: int
    ticket_id: int
    customer_id: int


class VisitorTokenError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def visitor_token_issue(*, visitor: Visitor) -> tuple[str, datetime]:
    """A token for the visitor and the time it expires (WIDGET_VISITOR_TOKEN_MAX_AGE)."""
    token = signing.dumps(
        {"w": visitor.widget_key_id, "t": visitor.ticket_id, "c": visitor.customer_id}, salt=SALT
    )
    expires_at = timezone.now() + timedelta(seconds=settings.WIDGET_VISITOR_TOKEN_MAX_AGE_SECONDS)
    return token, expires_at


def visitor_token_read(*, token: str, widget_key: WidgetKey) -> Visitor:
    """The visitor of a valid token for this widget key; VisitorTokenError says why not."""
    try:
        data = signing.loads(
            token, salt=SALT, max_age=settings.WIDGET_VISITOR_TOKEN_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        raise VisitorTokenError("the visitor token has expired; start a new conversation") from None
    except signing.BadSignature:
        raise VisitorTokenError("the visitor token is not valid") from None
    try:
        visitor = Visitor(
            widget_key_id=int(data["w"]), ticket_id=int(data["t"]), customer_id=int(data["c"])
        )
    except (KeyError, TypeError, ValueError):
        raise VisitorTokenError("the visitor token is not valid") from None
    if visitor.widget_key_id != widget_key.pk:
        raise VisitorTokenError("the visitor token belongs to another widget")
    return visitor
