"""`make screenshots`: PNGs of the product's faces, for people to look at.

Not collected by the test suite (the file name does not start with test_); run explicitly:
`.venv/bin/python -m pytest tests/browser/screenshots.py`. It seeds a throwaway test database
with a realistic day at Fernhill (the demo shop), then captures the inbox queue, a ticket,
the widget on desktop and phone, and the admin's flagged replies, into screenshots/ (or
$DESKPILOT_SCREENSHOTS_DIR).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.feedback.drafts import draft_send_recorded
from apps.feedback.models import FlaggedReply
from apps.feedback.services import reply_rate
from apps.operations.rollups import figures_refresh
from apps.tickets.models import AuthorKind, Channel, Ticket, TicketPriority, TicketStatus
from apps.tickets.services import Actor, message_add, ticket_assign
from apps.triage.services import intents_ensure
from tests.browser.conftest import DESKTOP, PHONE, admin_sign_in, sign_in, widget_open
from tests.conftest import wait_for
from tests.copilot.conftest import (  # noqa: F401  (fixtures)
    active_classifier,
    tiny_classifier_artifact,
)
from tests.feedback.factories import draft_create
from tests.inbox.factories import conversation_create
from tests.tickets.factories import CustomerFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("DESKPILOT_SCREENSHOTS_DIR", BASE_DIR / "screenshots"))
DEMO_KB = BASE_DIR / "fixtures/demo/kb"

EXPECTED = [
    "inbox-queue",
    "inbox-ticket",
    "inbox-ticket-draft",
    "inbox-shortcuts",
    "widget-desktop",
    "widget-phone",
    "widget-closed",
    "flagged-list",
    "flagged-item",
    "inbox-ticket-macro",
    "inbox-ticket-note",
    "inbox-identified-visitor",
    "inbox-my-day",
    "widget-offline-reply",
    "insights",
]
NAMES = [
    "Maria Lindqvist",
    "Tom Okafor",
    "Priya Raman",
    "Jonas Weber",
    "Aiko Tanaka",
    "Sam Carter",
    "Lea Fontaine",
    "Diego Alvarez",
    "Hannah Novak",
    "Omar Haddad",
]
# (subject/body, channel, status, intent, confidence, priority)
TICKETS = [
    (
        "My sofa arrived with a torn cushion, what now?",
        Channel.WIDGET,
        TicketStatus.HANDED_OFF,
        "damaged_item",
        0.91,
        TicketPriority.HIGH,
    ),
    (
        "I was charged twice for order 10422",
        Channel.EMAIL,
        TicketStatus.NEEDS_REVIEW,
        "charged_twice",
        0.88,
        TicketPriority.NORMAL,
    ),
    (
        "Someone used my card on your site, not me!",
        Channel.EMAIL,
        TicketStatus.HANDED_OFF,
        "unauthorized_charge",
        0.97,
        TicketPriority.URGENT,
    ),
    (
        "Can I still change the colour of my duvet cover order?",
        Channel.WIDGET,
        TicketStatus.NEW,
        "change_order",
        0.74,
        TicketPriority.NORMAL,
    ),
    (
        "Do you deliver to the Shetland Islands?",
        Channel.API,
        TicketStatus.AWAITING_CUSTOMER,
        "delivery_areas",
        0.93,
        TicketPriority.NORMAL,
    ),
    (
        "reset link never arrives",
        Channel.WIDGET,
        TicketStatus.AWAITING_CUSTOMER,
        "reset_password",
        0.96,
        TicketPriority.LOW,
    ),
    (
        "Gift card balance?",
        Channel.WIDGET,
        TicketStatus.RESOLVED,
        "gift_card",
        0.89,
        TicketPriority.NORMAL,
    ),
    (
        "What's your return window for mattresses?",
        Channel.EMAIL,
        TicketStatus.NEW,
        "return_policy",
        0.41,
        TicketPriority.NORMAL,
    ),
    (
        "Invoice with my company VAT number please",
        Channel.EMAIL,
        TicketStatus.NEEDS_REVIEW,
        "invoice_request",
        0.62,
        TicketPriority.NORMAL,
    ),
    (
        "Where is my parcel? Tracking hasn't moved in 4 days",
        Channel.WIDGET,
        TicketStatus.NEW,
        "",
        None,
        TicketPriority.NORMAL,
    ),
]


def shot(page, name: str, *, full_page: bool = False) -> None:  # type: ignore[no-untyped-def]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=full_page)


@pytest.fixture
def fernhill_day(agent_user, admin_user):  # type: ignore[no-untyped-def]
    from apps.knowledge.imports import kb_import

    kb_import(paths=[DEMO_KB], source_name="demo")
    intents_ensure(names=sorted({row[3] for row in TICKETS if row[3]}))
    tickets = []
    for index, (body, channel, status, intent, confidence, priority) in enumerate(TICKETS):
        name = NAMES[index % len(NAMES)]
        customer = CustomerFactory(name=name, email=f"{name.split()[0].lower()}@example.com")
        ticket = conversation_create(
            customer=customer,
            body=body,
            channel=channel,
            status=status,
            intent=intent,
            intent_confidence=confidence,
        )
        # A working day in progress: some first replies are close, the urgent one is late.
        first_reply_left = {TicketPriority.URGENT: -12, TicketPriority.HIGH: 45}.get(
            priority, 300 - 40 * index
        )
        Ticket.objects.filter(pk=ticket.pk).update(
            priority=priority,
            first_response_due_at=timezone.now() + timedelta(minutes=first_reply_left),
        )
        tickets.append(ticket)
    ticket_assign(ticket=tickets[0], assignee=agent_user, actor=Actor.for_user(agent_user))
    ticket_assign(ticket=tickets[2], assignee=admin_user, actor=Actor.for_user(admin_user))
    sofa = tickets[0]
    message_add(
        ticket=sofa,
        author_kind=AuthorKind.CUSTOMER,
        body="It's the three-seater Alder sofa, delivered yesterday. Photos attached.",
        actor=Actor.for_customer(sofa.customer),
        attachments=[{"name": "cushion.jpg", "content_type": "image/jpeg", "size": 231004}],
    )
    reply = message_add(
        ticket=tickets[5],
        author_kind=AuthorKind.COPILOT,
        body=(
            "Hi! Reset emails can take up to 10 minutes. Check your spam folder, then request "
            "a new link from the sign-in page: each new link cancels the previous one."
        ),
        actor=Actor.copilot(),
    )
    reply_rate(message=reply, value="down")
    # a draft waiting for review, and one an agent rewrote (flagged "heavily edited")
    draft_create(
        tickets[1],
        body=(
            "Hi Tom,\n\nSorry about that! A second charge for one order is usually a "
            "pre-authorisation: it disappears from your statement within 3-5 working days "
            "without you doing anything.\n\nIf both charges are still there after 5 working "
            "days, reply with your order number and we will refund the duplicate.\n\nBest, "
            "Fernhill support"
        ),
        intent="charged_twice",
        confidence=0.71,
        reason_detail="confidence 0.710 < auto-send threshold 0.900",
        citations=[
            {
                "article_id": 0,
                "external_id": "billing/charged-twice.md",
                "title": "I was charged twice",
                "url": "https://help.fernhill.example/billing/charged-twice",
                "heading_path": "Pending authorisations",
                "passage": "A second charge is usually a pending authorisation that your "
                "bank releases within 3-5 working days.",
            }
        ],
    )
    rewritten = draft_create(tickets[8], intent="invoice_request", confidence=0.64)
    draft_send_recorded(
        draft=rewritten,
        user=agent_user,
        body="Hi Hannah, I've attached the corrected invoice with your VAT number. Best, Agnes",
    )
    return tickets


def test_screenshots(site, new_page, fernhill_day, agent_user, active_classifier):  # noqa: F811
    sofa = fernhill_day[0]
    # the inbox queue
    agent = new_page(viewport=DESKTOP)
    sign_in(agent, site.url, "agnes")
    agent.keyboard.press("j")
    agent.keyboard.press("j")
    shot(agent, "inbox-queue")
    # a ticket with the copilot's draft waiting for review
    agent.goto(f"{site.url}/inbox/tickets/{fernhill_day[1].pk}/")
    expect(agent.locator("#draft")).to_be_visible()
    shot(agent, "inbox-ticket-draft", full_page=True)
    # a ticket, with the knowledge panel showing results
    agent.goto(f"{site.url}/inbox/tickets/{sofa.pk}/?kq=damaged+item+on+delivery")
    expect(agent.locator(".hits li").first).to_be_visible()
    agent.get_by_label("Reply", exact=True).fill(
        "I'm so sorry about the cushion. We'll send a replacement cover right away."
    )
    shot(agent, "inbox-ticket", full_page=True)
    agent.keyboard.press("Escape")
    agent.keyboard.press("?")
    shot(agent, "inbox-shortcuts")
    # the widget on the demo page, desktop and phone
    for name, viewport in (("widget-desktop", DESKTOP), ("widget-phone", PHONE)):
        visitor = new_page(viewport=viewport)
        panel = widget_open(visitor, site.url)
        visitor.get_by_label("Your message").fill("Do you deliver on Saturdays?")
        visitor.get_by_role("button", name="Send", exact=True).click()
        expect(panel.locator(".message.customer")).to_have_count(1)
        ticket = Ticket.objects.filter(channel=Channel.WIDGET).order_by("-id").first()
        message_add(
            ticket=ticket,
            author_kind=AuthorKind.COPILOT,
            body=(
                "Hi! Yes: standard delivery runs Monday to Saturday, 8:00-18:00. Large items "
                "(sofas, beds) are delivered on weekdays only. Anything else I can help with?"
            ),
            actor=Actor.copilot(),
        )
        expect(panel.locator(".message.copilot")).to_have_count(1)
        shot(visitor, name)
    closed = new_page(viewport=DESKTOP)
    closed.goto(f"{site.url}/widget/demo/")
    closed.get_by_role("button", name=re.compile("support chat")).wait_for()
    shot(closed, "widget-closed")
    # the admin's flagged replies
    admin = new_page(viewport=DESKTOP)
    admin_sign_in(admin, site.url, "adele")
    admin.goto(f"{site.url}/admin/feedback/flaggedreply/")
    shot(admin, "flagged-list")
    flagged = FlaggedReply.objects.get(reason="heavily_edited")
    admin.goto(f"{site.url}/admin/feedback/flaggedreply/{flagged.pk}/change/")
    shot(admin, "flagged-item", full_page=True)
    helpdesk_basics(site, new_page, sofa)
    offline_reply(site, new_page)
    # the insights page, from the day's figures as beat computes them
    figures_refresh(days=30)
    agent.goto(f"{site.url}/inbox/insights/?days=7")
    expect(agent.locator(".chart[data-drawn='true'] canvas")).to_have_count(4)
    shot(agent, "insights", full_page=True)
    for name in EXPECTED:
        assert (OUTPUT / f"{name}.png").stat().st_size > 10_000, name


def helpdesk_basics(site, new_page, ticket) -> None:  # type: ignore[no-untyped-def]
    """A canned reply inserted, an internal note, an identified visitor, the agent's day."""
    from apps.tickets.models import Macro

    Macro.objects.create(
        shortcut="damage",
        name="Damaged on delivery",
        body="Hello {{customer.first_name}},\n\nI'm sorry your order arrived damaged. A "
        "replacement leaves our warehouse within 2 working days; no need to send anything "
        "back.\n\nBest regards,\n{{agent.name}}",
    )
    agent = new_page(viewport=DESKTOP)
    sign_in(agent, site.url, "agnes")
    agent.goto(f"{site.url}/inbox/tickets/{ticket.pk}/")
    agent.keyboard.press("m")
    agent.keyboard.type("/damage")
    agent.keyboard.press("Enter")
    expect(agent.get_by_label("Reply", exact=True)).to_have_value(re.compile("replacement"))
    shot(agent, "inbox-ticket-macro", full_page=True)
    agent.get_by_label("Reply", exact=True).fill(
        "Customer sent photos: the cushion seam is torn. Replacement approved by Agnes."
    )
    agent.get_by_role("button", name="Save as internal note").click()
    expect(agent.locator(".message.author-note")).to_be_visible()
    shot(agent, "inbox-ticket-note", full_page=True)
    # an identified visitor: the demo page as its signed-in user
    visitor = new_page(viewport=DESKTOP)
    visitor.goto(f"{site.url}/widget/demo/?as=signed-in")
    visitor.get_by_role("button", name=re.compile("support chat")).click()
    visitor.get_by_label("Your message").fill("Can I add a pillowcase to my order?")
    visitor.get_by_role("button", name="Send", exact=True).click()
    identified = wait_for(
        lambda: Ticket.objects.filter(customer__external_id="demo-42").order_by("-id").first()
    )
    agent.goto(f"{site.url}/inbox/tickets/{identified.pk}/")
    expect(agent.get_by_text("verified").first).to_be_visible()
    shot(agent, "inbox-identified-visitor", full_page=True)
    agent.goto(f"{site.url}/inbox/me/")
    shot(agent, "inbox-my-day", full_page=True)


def offline_reply(site, new_page) -> None:  # type: ignore[no-untyped-def]
    """A reply the offline drafter (local/extractive) wrote and sent, in the widget."""
    from apps.copilot.models import CopilotPolicy
    from apps.copilot.services import pipeline_run
    from apps.tickets.models import Message

    CopilotPolicy.objects.update_or_create(
        singleton=True, defaults={"auto_send_threshold": 0.5, "review_threshold": 0.1}
    )
    visitor = new_page(viewport=DESKTOP)
    panel = widget_open(visitor, site.url)
    visitor.get_by_label("Your message").fill("How long do refunds take to reach my card?")
    visitor.get_by_role("button", name="Send", exact=True).click()
    message = wait_for(
        lambda: Message.objects.filter(
            author_kind=AuthorKind.CUSTOMER, body__startswith="How long do refunds"
        ).first()
    )
    pipeline_run(message_id=message.pk)
    expect(panel.locator(".message.copilot:not(.live)")).to_have_count(1, timeout=30_000)
    shot(visitor, "widget-offline-reply")
