"""The chat widget in a real browser, embedded in the demo page like on a customer's site."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.copilot.streaming import stream_publish
from apps.tickets.models import AuthorKind, Message, Ticket, TicketStatus
from apps.tickets.services import Actor, message_add
from tests.browser.conftest import PHONE, sign_in, widget_open, widget_send
from tests.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def only_ticket() -> Ticket:
    return wait_for(lambda: Ticket.objects.order_by("id").last())


def visitor_asks(site, new_page, text: str) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    """A visitor opens the widget and sends `text`: (page, panel, the ticket it opened)."""
    page = new_page()
    panel = widget_open(page, site.url)
    widget_send(page, text)
    expect(panel.locator(".message.customer .body")).to_have_text([text])
    return page, panel, only_ticket()


def test_visitor_asks_and_sees_the_reply_and_history_survives_a_reload(site, new_page):
    # when: the visitor asks; a reply arrives on the ticket
    page, panel, ticket = visitor_asks(site, new_page, "Do you ship to Norway?")
    message_add(
        ticket=ticket,
        author_kind=AuthorKind.COPILOT,
        body="Yes, we ship to Norway in 3-5 days.",
        actor=Actor.copilot(),
    )
    # then
    expect(panel.locator(".message.copilot .body")).to_have_text(
        ["Yes, we ship to Norway in 3-5 days."]
    )
    expect(panel.get_by_label("Conversation")).to_contain_text("Assistant (automated)")
    # and after a reload, the same conversation is there (the panel reopens by itself)
    page.reload()
    expect(page.locator("#deskpilot-widget .message .body")).to_have_text(
        ["Do you ship to Norway?", "Yes, we ship to Norway in 3-5 days."]
    )
    assert Ticket.objects.count() == 1


def test_host_page_styles_do_not_reach_the_widget(site, new_page):
    # given
    page = new_page()
    panel = widget_open(page, site.url)
    # when
    send = panel.get_by_role("button", name="Send", exact=True)
    host_button = page.get_by_role("button", name="A host page button")
    # then: the demo page paints its own buttons pink with uppercase Comic Sans; not ours
    assert host_button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(255, 0, 170)"
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(29, 78, 216)"
    assert send.evaluate("b => getComputedStyle(b).textTransform") == "none"


def test_talk_to_a_human_shows_the_handoff_notice(site, new_page):
    # given
    page = new_page()
    panel = widget_open(page, site.url)
    widget_send(page, "I want a person")
    expect(panel.locator(".message.customer")).to_have_count(1)
    # when
    panel.get_by_role("button", name="Talk to a human").click()
    # then
    expect(panel.get_by_role("status")).to_have_text(
        "A person from our team has taken over and will reply here."
    )
    expect(panel.get_by_role("button", name="Talk to a human")).to_be_hidden()
    assert only_ticket().status == TicketStatus.HANDED_OFF


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "30"}, "Please wait 30 seconds and try again."),
        (503, {}, "Our chat is having trouble right now."),
        (0, {}, "We couldn't reach support."),
    ],
)
def test_failed_send_shows_a_friendly_message_and_keeps_the_text(
    site, new_page, status, headers, expected
):
    # given
    page = new_page()
    panel = widget_open(page, site.url)

    def refuse(route):  # type: ignore[no-untyped-def]
        if status == 0:
            route.abort("internetdisconnected")
        else:
            route.fulfill(status=status, headers=headers, json={"error": {"message": "no"}})

    page.route(re.compile(r".*/widget/api/.*/conversations$"), refuse)
    # when
    widget_send(page, "My unsent question")
    # then
    expect(panel.get_by_role("alert")).to_contain_text(expected)
    expect(panel.get_by_role("alert")).to_contain_text("Your message is kept")
    expect(panel.get_by_label("Your message")).to_have_value("My unsent question")
    assert Message.objects.count() == 0
    # and once the server answers again, the same text goes through
    page.unroute(re.compile(r".*/widget/api/.*/conversations$"))
    panel.get_by_role("button", name="Send", exact=True).click()
    expect(panel.locator(".message.customer .body")).to_have_text(["My unsent question"])
    expect(panel.get_by_role("alert")).to_be_hidden()
    expect(panel.get_by_label("Your message")).to_have_value("")


def test_widget_is_usable_with_the_keyboard_and_on_a_phone(site, new_page):
    # given
    page = new_page(viewport=PHONE)
    page.goto(f"{site.url}/widget/demo/")
    launcher = page.get_by_role("button", name="Open the support chat")
    # when: focus the launcher and press Enter; type and press Enter to send
    launcher.focus()
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Fernhill support")
    expect(panel).to_be_visible()
    expect(page.get_by_label("Your message")).to_be_focused()
    page.keyboard.type("Hello from my phone")
    page.keyboard.press("Enter")
    # then: the panel fills the phone's screen and the message is sent
    expect(panel.locator(".message.customer .body")).to_have_text(["Hello from my phone"])
    box = panel.bounding_box()
    assert box is not None
    assert (round(box["width"]), round(box["height"])) == (PHONE["width"], PHONE["height"])
    # and Escape closes it, returning focus to the launcher
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()


def test_thumbs_on_a_reply_are_saved_and_shown_pressed(site, new_page):
    # given
    _, panel, ticket = visitor_asks(site, new_page, "Is the oak table solid?")
    reply = message_add(
        ticket=ticket, author_kind=AuthorKind.AGENT, body="Yes, solid oak.", actor=Actor.system()
    )
    # (the widget polls every few seconds: allow a slow, shared machine some of them)
    expect(panel.locator(".message.agent")).to_have_count(1, timeout=20_000)
    # when
    panel.get_by_role("button", name="Not helpful").click()
    # then
    expect(panel.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )
    wait_for(lambda: reply.pk in set(_rated_message_ids()))


def _rated_message_ids() -> list[int]:
    from apps.feedback.models import ReplyRating

    return list(ReplyRating.objects.filter(value="down").values_list("message_id", flat=True))


def test_a_reply_that_starts_over_with_a_link_leaves_no_empty_bubble(site, new_page):
    # given: a visitor watching a reply on course to be sent being written
    _, panel, ticket = visitor_asks(site, new_page, "How do I reset my password?")
    message = Message.objects.get(ticket=ticket, author_kind=AuthorKind.CUSTOMER)
    for event in (
        {"type": "start", "message_id": message.id},
        {"type": "audience", "customer": True},
        {"type": "delta", "text": "You can reset it yourself "},
    ):
        stream_publish(ticket_id=ticket.id, event=event)
    live = panel.locator(".message.copilot.live")
    expect(live.locator(".body")).to_have_text("You can reset it yourself ")
    # when: another model starts the reply over, opening with a link the view never shows
    for event in (
        {"type": "reset"},
        {"type": "delta", "text": "https://evil.example/reset is where you do it. "},
    ):
        stream_publish(ticket_id=ticket.id, event=event)
    # then: the old text is gone, with no empty bubble left, and "typing" shows instead
    expect(live).to_have_count(0)
    expect(panel.locator(".typing")).to_be_visible()


def test_a_message_over_the_limit_is_refused_whole_and_kept_not_cut(site, new_page):
    # given: a visitor pastes a message longer than the server takes
    page = new_page()
    panel = widget_open(page, site.url)
    box = panel.get_by_label("Your message")
    long_text = "My order history: " + "x" * 20_500
    box.fill(long_text)
    # when
    panel.get_by_role("button", name="Send", exact=True).click()
    # then: nothing is sent, nothing is cut, and the visitor is told the limit
    expect(panel.get_by_role("alert")).to_contain_text("the limit is 20,000")
    expect(box).to_have_value(long_text)
    assert Message.objects.count() == 0


def test_a_signed_in_visitor_on_the_demo_shows_by_name_in_the_inbox(site, new_page, agent_user):
    # given: the demo page as its signed-in user, whose identity the page's server signed
    page = new_page()
    page.goto(f"{site.url}/widget/demo/?as=signed-in")
    page.get_by_role("button", name=re.compile("support chat")).click()
    panel = page.get_by_role("dialog", name="Fernhill support")
    widget_send(page, "Where is my linen bedding?")
    expect(panel.locator(".message.customer .body")).to_have_text(["Where is my linen bedding?"])
    ticket = only_ticket()
    # when: an agent opens the ticket
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    agent.goto(f"{site.url}/inbox/tickets/{ticket.pk}/")
    # then: the visitor is Maria, verified, and her customer record says so
    identity = agent.locator("#customer-title + .customer-identity")
    expect(identity).to_contain_text("Maria Lopez · maria@example.com")
    expect(identity).to_contain_text("✓ verified")
    customer = Ticket.objects.select_related("customer").get(pk=ticket.pk).customer
    assert (customer.external_id, customer.name) == ("demo-42", "Maria Lopez")
    # and once she signs out of the site, the widget no longer shows her conversation
    page.get_by_role("link", name="Sign out").first.click()
    page.wait_for_url(re.compile(r"/widget/demo/\?$"))
    expect(page.get_by_role("dialog", name="Fernhill support")).to_be_visible()
    expect(page.locator("#deskpilot-widget .message")).to_have_count(0)
