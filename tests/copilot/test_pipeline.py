"""The copilot pipeline end to end in-process: decisions, reasons, ticket moves."""

from __future__ import annotations

import pytest

from apps.copilot.models import Decision, Draft, DraftStatus, HandoffReason
from apps.copilot.services import pipeline_run
from apps.tickets.models import AuthorKind, PipelineStatus, TicketStatus
from tests.copilot.conftest import customer_ticket

pytestmark = pytest.mark.django_db


def test_an_answerable_question_is_auto_sent_citing_the_right_article(copilot_ready):
    # given
    ticket, message = customer_ticket("I forgot my password and the reset email never arrives")
    # when
    draft = pipeline_run(message_id=message.id)
    # then
    assert draft.decision == Decision.AUTO_SENT
