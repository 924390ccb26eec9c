"""What the admin sees for one flagged reply: the conversation, the draft, what was sent."""

from __future__ import annotations

from typing import Any

from apps.feedback.models import DraftAction, FlaggedReply
from apps.tickets.selectors import message_list


def flagged_review_context(flagged: FlaggedReply) -> dict[str, Any]:
    conversation = list(message_list(ticket=flagged.ticket).select_related("author_user"))
    draft = flagged.draft
    action = (
        DraftAction.objects.filter(draft=draft).select_related("agent").first() if draft else None
    )
    return {
        "ticket": flagged.ticket,
        "conversation": conversation,
        "flagged_message_id": flagged.message_id,
        "draft": draft,
        "draft_action": action,
    }
