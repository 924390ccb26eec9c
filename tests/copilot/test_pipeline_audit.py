"""`manage.py pipeline_audit`: what an operator runs after an incident."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from apps.copilot.models import Decision, Draft, DraftStatus, HandoffReason
from apps.tickets.models import AuthorKind
from apps.tickets.services import Actor, message_add
from tests.copilot.conftest import customer_ticket

pytestmark = pytest.mark.django_db


def _auto_sent(ticket, message) -> Draft:  # type: ignore[no-untyped-def]
    reply = message_add(
        ticket=ticket, author_kind=AuthorKind.COPILOT, body="Here is how.", actor=Actor.copilot()
    )
    return Draft.objects.create(
        ticket=ticket,
        message=message,
        body="Here is how.",
        decision=Decision.AUTO_SENT,
        status=DraftStatus.AUTO_SENT,
        sent_message_id=reply.pk,
    )


def test_the_audit_passes_when_every_message_has_its_outcome(capsys):
    # given: one message auto-answered, one handed off with its reason
    ticket, message = customer_ticket("how do I reset my password?")
    _auto_sent(ticket, message)
    other, question = customer_ticket("I want a refund", email="bo@example.com")
    Draft.objects.create(
        ticket=other,
        message=question,
        decision=Decision.HANDED_OFF,
        status=DraftStatus.PENDING,
        reason=HandoffReason.LOW_CONFIDENCE,
    )
    # when
    call_command("pipeline_audit", "--hours", "1")
    # then
    out = capsys.readouterr().out
    assert "decided: auto_sent 1, handed_off 1" in out
    assert "tickets with a reply sent twice: 0" in out


def test_the_audit_names_a_reply_sent_twice_and_an_undecided_message(capsys):
    # given: a reply sent twice; a message with no draft
    doubled, message = customer_ticket("where is my card?")
    _auto_sent(doubled, message)
    message_add(
        ticket=doubled, author_kind=AuthorKind.COPILOT, body="Here is how.", actor=Actor.copilot()
    )
    waiting, _ = customer_ticket("hello?", email="cy@example.com")
    # when / then: exit 1, each named
    with pytest.raises(CommandError, match="without the outcome they should have"):
        call_command("pipeline_audit", "--ticket", str(doubled.pk), "--ticket", str(waiting.pk))
    out = capsys.readouterr().out
    assert f"tickets with a reply sent twice: 1 (tickets {doubled.pk})" in out
    assert "undecided (no draft, not finished): 1" in out


def test_a_window_that_is_not_positive_is_refused():
    with pytest.raises(CommandError, match="--hours must be above 0, not -1"):
        call_command("pipeline_audit", "--hours", "-1")
