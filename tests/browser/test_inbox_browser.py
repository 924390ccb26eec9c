"""The agent inbox and the admin review in a real browser, with a visitor on the widget."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.feedback.models import FlaggedReply, FlagStatus
from apps.tickets.models import AuthorKind, Channel, Message, Ticket, TicketStatus
from apps.tickets.services import Actor, message_add
from tests.browser.conftest import admin_sign_in, sign_in, widget_open, widget_send
from tests.conftest import wait_for
from tests.inbox.factories import conversation_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_agent_finds_a_handed_off_ticket_replies_and_the_visitor_sees_it(
    site, new_page, agent_user
):
    # given: a visitor asks for a human from the widget; another ticket is just new
    conversation_create(subject="Unrelated new ticket", channel=Channel.API)
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, "My sofa arrived damaged")
    expect(panel.locator(".message.customer")).to_have_count(1)
    panel.get_by_role("button", name="Talk to a human").click()
    expect(panel.get_by_role("status")).to_contain_text("taken over")
    ticket = Ticket.objects.get(channel=Channel.WIDGET)
    # when: the agent signs in, opens "Needs a human", moves with j and opens with o
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    agent.get_by_role("link", name=re.compile("Needs a human")).click()
    rows = agent.locator("#queue-rows tr[data-ticket-id]")
    expect(rows).to_have_count(1)
    agent.keyboard.press("j")
    expect(rows.first).to_have_class(re.compile("selected"))
    agent.keyboard.press("o")
    agent.wait_for_url(re.compile(rf"/inbox/tickets/{ticket.pk}/$"))
    expect(agent.get_by_role("heading", level=1)).to_contain_text("My sofa arrived damaged")
    # e focuses the reply box
    agent.keyboard.press("e")
    expect(agent.get_by_label("Reply", exact=True)).to_be_focused()
    agent.keyboard.type("So sorry! A replacement leaves our warehouse tomorrow.")
    agent.get_by_role("button", name="Send reply").click()
    # then
    expect(agent.get_by_role("status").filter(has_text="Reply sent.")).to_be_visible()
    expect(panel.locator(".message.agent .body")).to_have_text(
        ["So sorry! A replacement leaves our warehouse tomorrow."], timeout=15_000
    )
    reply = Message.objects.get(ticket=ticket, author_kind=AuthorKind.AGENT)
    assert reply.author_user == agent_user


def test_queue_updates_without_reload_when_a_ticket_arrives(site, new_page, agent_user):
    # given
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    expect(agent.locator("#queue-rows")).to_contain_text("No tickets here.")
    # when
    ticket = conversation_create(subject="Fresh from the API")
    # then: the htmx poll brings it in, and the view counts follow
    expect(agent.locator("#queue-rows")).to_contain_text("Fresh from the API", timeout=12_000)
    expect(agent.locator("#count-open")).to_have_text("1")
    assert ticket.status == TicketStatus.NEW


def test_conflicting_action_shows_a_clear_message_and_keeps_the_typed_reply(
    site, new_page, agent_user
):
    # given: the agent opened the ticket and typed a reply
    ticket = conversation_create(subject="Refund for order 88")
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    agent.goto(f"{site.url}/inbox/tickets/{ticket.pk}/")
    agent.get_by_label("Reply", exact=True).fill("Your refund is on its way.")
    # when: meanwhile the customer writes again, then the agent sends
    message_add(
        ticket=ticket,
        author_kind=AuthorKind.CUSTOMER,
        body="Actually, can I get store credit instead?",
        actor=Actor.for_customer(ticket.customer),
    )
    agent.get_by_role("button", name="Send reply").click()
    # then
    expect(agent.locator(".flash-error")).to_contain_text(
        f"Ticket #{ticket.pk} changed while you were looking at it: 1 new message."
    )
    expect(agent.locator(".messages")).to_contain_text("can I get store credit instead?")
    expect(agent.get_by_label("Reply", exact=True)).to_have_value("Your refund is on its way.")
    assert not Message.objects.filter(ticket=ticket, author_kind=AuthorKind.AGENT).exists()


def test_help_overlay_lists_the_shortcuts(site, new_page, agent_user):
    # given
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    # when
    agent.keyboard.press("?")
    # then
    dialog = agent.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Send the reply in the draft box")
    agent.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_admin_opens_the_flagged_view_and_marks_an_item_reviewed(site, new_page, admin_user):
    # given: a visitor gave a thumbs-down to a reply
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, "How long do refunds take?")
    expect(panel.locator(".message.customer")).to_have_count(1)
    ticket = Ticket.objects.get(channel=Channel.WIDGET)
    message_add(
        ticket=ticket,
        author_kind=AuthorKind.COPILOT,
        body="Refunds take a year.",
        actor=Actor.copilot(),
    )
    panel.get_by_role("button", name="Not helpful").click()
    flagged = wait_for(lambda: FlaggedReply.objects.first())
    # when: the admin opens the flagged replies, then the item, and marks it reviewed
    admin = new_page()
    admin_sign_in(admin, site.url, "adele")
    admin.goto(f"{site.url}/admin/feedback/flaggedreply/")
    expect(admin.locator("#result_list")).to_contain_text("Customer thumbs-down")
    expect(admin.locator("#changelist-filter")).to_contain_text("Open (1)")
    admin.locator("#result_list").get_by_role("link", name=str(flagged.pk), exact=True).click()
    expect(admin.locator(".flag-messages li.flagged")).to_contain_text("Refunds take a year.")
    admin.get_by_label("Note (optional)").fill("Wrong refund time; KB note added")
    admin.get_by_role("button", name="Mark reviewed").click()
    # then
    expect(admin.locator(".messagelist")).to_contain_text("Done.")
    expect(admin.locator(".flag-log")).to_contain_text("marked_reviewed by adele")
    flagged.refresh_from_db()
    assert (flagged.status, flagged.reviewed_by) == (FlagStatus.REVIEWED, admin_user)


def test_an_agent_inserts_a_canned_reply_by_keyboard_and_saves_a_note_the_visitor_never_sees(
    site, new_page, agent_user
):
    # given: a canned reply, and a visitor's conversation
    from apps.tickets.models import Macro

    Macro.objects.create(
        shortcut="refund-check",
        name="Refund: checking",
        body="Hello {{customer.first_name}}, I'm checking your refund (ticket #{{ticket.id}}).",
    )
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, "Where is my refund?")
    expect(panel.locator(".message.customer")).to_have_count(1)
    ticket = wait_for(lambda: Ticket.objects.filter(channel=Channel.WIDGET).first())
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    agent.goto(f"{site.url}/inbox/tickets/{ticket.pk}/")
    reply = agent.get_by_label("Reply", exact=True)
    expected = f"Hello there, I'm checking your refund (ticket #{ticket.pk})."
    # when: the picker, by keyboard: m, a shortcut's start, Enter
    agent.keyboard.press("m")
    expect(agent.get_by_label("Insert a canned reply")).to_be_focused()
    agent.keyboard.type("/refund")
    agent.keyboard.press("Enter")
    # then: filled for this ticket, in the reply box, which has the focus
    expect(reply).to_have_value(expected + "\n")
    expect(reply).to_be_focused()
    # when: the same by typing its shortcut in the box, then Tab
    reply.fill("")
    reply.type("/refund-c")
    reply.press("Tab")
    expect(reply).to_have_value(expected)
    # when: the agent keeps a note for the team instead of sending
    reply.fill("Customer is a VIP: refund at once.")
    agent.get_by_role("button", name="Save as internal note").click()
    # then: the inbox shows the note; the visitor never gets it
    expect(agent.locator(".message.author-note")).to_contain_text("VIP: refund at once.")
    agent.get_by_role("button", name="Send reply").click()  # nothing typed: refused
    message_add(
        ticket=ticket, author_kind=AuthorKind.AGENT, body="We are on it.", actor=Actor.system()
    )
    expect(panel.locator(".message.agent .body")).to_have_text(["We are on it."], timeout=15_000)
    expect(panel.get_by_text("VIP: refund at once.")).to_have_count(0)
