"""End to end with the real copilot: the widget on the demo page, the real pipeline (the
offline local/extractive drafter, a tiny Fernhill knowledge base and classifier), the agent
in the inbox.

The pipeline service is called by the test itself, in the test process, as soon as the
visitor's message is stored (standing in for the Celery worker, which would otherwise keep
running for the rest of the session and act on other browser tests' tickets); its stream
events go through Redis to the live server, as the worker's do. Each test sets the
thresholds it needs in a CopilotPolicy row.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.copilot.models import CopilotPolicy, Decision, Draft
from apps.copilot.services import pipeline_run
from apps.feedback.models import DraftAction
from apps.tickets.models import AuthorKind, Channel, Message, Ticket, TicketStatus
from tests.browser.conftest import sign_in, widget_open, widget_send
from tests.conftest import wait_for
from tests.copilot.conftest import (  # noqa: F401  (fixtures)
    active_classifier,
    tiny_classifier_artifact,
    tiny_kb,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD_QUESTION = "I forgot my password and the reset email never arrives"
PIPELINE_TIMEOUT_MS = 30_000


@pytest.fixture
def copilot(active_classifier, tiny_kb):  # type: ignore[no-untyped-def]  # noqa: F811
    """Runs the pipeline for the latest customer message once the live server stored it."""

    def run() -> Draft | None:
        message = wait_for(
            lambda: Message.objects.filter(author_kind=AuthorKind.CUSTOMER).order_by("-id").first()
        )
        return pipeline_run(message_id=message.pk)

    return run


def test_visitor_asks_and_sees_the_copilot_reply(site, new_page, copilot):
    # given: clear, well-covered questions are sent on their own
    CopilotPolicy.objects.create(auto_send_threshold=0.5, review_threshold=0.1)
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    # when
    widget_send(visitor, PASSWORD_QUESTION)
    copilot()
    # then: the reply streams in as it is written, then the sent message takes its place
    sent = panel.locator(".message.copilot:not(.live)")
    expect(sent).to_have_count(1, timeout=PIPELINE_TIMEOUT_MS)
    draft = Draft.objects.get(is_current=True)
    assert draft.decision == Decision.AUTO_SENT
    expect(sent.locator(".body")).to_have_text(draft.body)
    assert int(sent.get_attribute("data-streamed-pieces") or 0) > 1
    expect(panel.locator(".message.live")).to_have_count(0)
    assert "password" in draft.body.lower()
    expect(panel.locator(".typing")).to_be_hidden()


def test_agent_edits_and_sends_the_draft_of_a_handed_off_ticket_and_the_visitor_sees_it(
    site, new_page, copilot, agent_user
):
    # given: nothing is confident enough; the ticket is handed off with the draft kept
    CopilotPolicy.objects.create(auto_send_threshold=1.0, review_threshold=1.0)
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, PASSWORD_QUESTION)
    copilot()
    expect(panel.get_by_role("status")).to_contain_text("taken over", timeout=PIPELINE_TIMEOUT_MS)
    ticket = Ticket.objects.get(channel=Channel.WIDGET)
    assert ticket.status == TicketStatus.HANDED_OFF
    draft = Draft.objects.get(ticket=ticket, is_current=True)
    # when: the agent finds it among the tickets needing a human and edits the draft
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    agent.get_by_role("link", name=re.compile("Needs a human")).click()
    agent.get_by_role("link", name=PASSWORD_QUESTION).click()
    expect(agent.locator("#draft")).to_contain_text("Handed off")
    box = agent.get_by_label(re.compile("^Draft reply: what you send is the text in this box"))
    expect(box).to_have_value(draft.body)
    edited = draft.body + "\nSorry for the trouble! Agnes"
    box.fill(edited)
    agent.get_by_role("button", name=re.compile("^Send this reply")).click()
    # then
    expect(agent.locator(".flash-success")).to_contain_text("Edited draft sent")
    expect(panel.locator(".message.agent .body")).to_have_text([edited], timeout=20_000)
    action = DraftAction.objects.get(draft=draft)
    assert (action.kind, action.sent_body, action.agent) == ("edited", edited, agent_user)
    assert Message.objects.get(ticket=ticket, author_kind=AuthorKind.AGENT).body == edited
    wait_for(lambda: not Message.objects.filter(author_kind=AuthorKind.COPILOT).exists())


def test_an_edit_sent_with_the_keyboard_is_what_the_visitor_receives(
    site, new_page, copilot, agent_user
):
    # given: a draft waiting for an agent's review
    CopilotPolicy.objects.create(auto_send_threshold=1.0, review_threshold=0.0)
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, PASSWORD_QUESTION)
    draft = copilot()
    assert draft is not None and draft.decision == Decision.NEEDS_REVIEW
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    agent.goto(f"{site.url}/inbox/tickets/{draft.ticket_id}/")
    # when: the agent corrects the draft and presses Ctrl+Enter in the box
    box = agent.get_by_label(re.compile("^Draft reply: what you send is the text in this box"))
    edited = "Hello, use the Forgot password link on the sign-in page. Agnes"
    box.fill(edited)
    box.press("Control+Enter")
    # then: the visitor receives the edit, not the draft
    expect(agent.locator(".flash-success")).to_contain_text("Edited draft sent")
    expect(panel.locator(".message.agent .body")).to_have_text([edited], timeout=20_000)
    assert DraftAction.objects.get(draft=draft).sent_body == edited


def test_the_send_shortcut_sends_the_box_as_it_is_now(site, new_page, copilot, agent_user):
    # given: a draft waiting for review, edited in its box, focus then moved out of it
    CopilotPolicy.objects.create(auto_send_threshold=1.0, review_threshold=0.0)
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, PASSWORD_QUESTION)
    draft = copilot()
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    agent.goto(f"{site.url}/inbox/tickets/{draft.ticket_id}/")
    box = agent.get_by_label(re.compile("^Draft reply: what you send is the text in this box"))
    edited = draft.body.replace("Hello,", "Hello Sam,")
    box.fill(edited)
    box.press("Escape")
    # when: the send shortcut
    agent.keyboard.press("a")
    # then: what was in the box went out
    expect(panel.locator(".message.agent .body")).to_have_text([edited], timeout=20_000)
    assert (
        Message.objects.get(ticket_id=draft.ticket_id, author_kind=AuthorKind.AGENT).body == edited
    )
