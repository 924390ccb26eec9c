"""What the admin sees for one flagged reply: the conversation around it and what was sent."""

from __future__ import annotations

from typing import Any

from apps.feedback.models import FlaggedReply
from apps.tickets.selectors import message_list


def flagged_review_context(flagged: FlaggedReply) -> dict[str, Any]:
    conversation = list(message_list(ticket=flagged.ticket).select_related("author_user"))
    return {
        "ticket": flagged.ticket,
        "conversation": conversation,
        "flagged_message_id": flagged.message_id,
    }
