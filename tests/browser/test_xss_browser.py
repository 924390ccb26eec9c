"""Hostile text from customers and models renders as text, in the widget and in the inbox."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.tickets.models import AuthorKind, Channel, Ticket
from apps.tickets.services import Actor, message_add
from tests.browser.conftest import sign_in, widget_open, widget_send

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PAYLOADS = [
    "<script>window.pwned = 'script'</script>",
    "<img src=x onerror=\"window.pwned = 'img'\">",
    "[click me](javascript:window.pwned='link')",
    "<a href=\"javascript:window.pwned='anchor'\">click</a>",
    "**bold** <svg onload=\"window.pwned='svg'\"></svg>",
    '<iframe src="javascript:alert(1)"></iframe> ![x](javascript:alert(1))',
]
CUSTOMER_TEXT = "\n".join(PAYLOADS)
REPLY_TEXT = "Reply: " + " ".join(reversed(PAYLOADS))


def assert_inert(page, scope_selector: str) -> None:  # type: ignore[no-untyped-def]
    """No payload ran, and none became an element or a link."""
    assert page.evaluate("() => window.pwned === undefined")
    counts = page.evaluate(
        """(selector) => {
            const host = document.querySelector('#deskpilot-widget');
            const roots = [document, host && host.shadowRoot].filter(Boolean);
            let found = {img: 0, svg: 0, iframe: 0, jsLinks: 0, scripts: 0};
            for (const root of roots) {
              for (const scope of root.querySelectorAll(selector)) {
                found.img += scope.querySelectorAll('img').length;
                found.svg += scope.querySelectorAll('svg').length;
                found.iframe += scope.querySelectorAll('iframe').length;
                found.scripts += scope.querySelectorAll('script').length;
                found.jsLinks += [...scope.querySelectorAll('a')]
                  .filter(a => a.href.toLowerCase().startsWith('javascript:')).length;
              }
            }
            return found;
        }""",
        scope_selector,
    )
    assert counts == {"img": 0, "svg": 0, "iframe": 0, "jsLinks": 0, "scripts": 0}


def test_payloads_render_inert_in_the_widget_and_the_inbox(site, new_page, agent_user):
    # given: a visitor sends every payload; the reply repeats them
    visitor = new_page()
    panel = widget_open(visitor, site.url)
    widget_send(visitor, CUSTOMER_TEXT)
    expect(panel.locator(".message.customer")).to_have_count(1)
    ticket = Ticket.objects.get(channel=Channel.WIDGET)
    Ticket.objects.filter(pk=ticket.pk).update(subject=PAYLOADS[1])
    message_add(
        ticket=ticket, author_kind=AuthorKind.COPILOT, body=REPLY_TEXT, actor=Actor.copilot()
    )
    # then: the widget shows the characters, nothing runs
    expect(panel.locator(".message.copilot .body")).to_have_text([REPLY_TEXT])
    expect(panel.locator(".message.customer .body")).to_have_text([CUSTOMER_TEXT])
    assert_inert(visitor, ".log .body")  # the messages, not the widget's own icons
    # and the inbox queue and ticket page show them as text too
    agent = new_page()
    sign_in(agent, site.url, "agnes")
    expect(agent.locator("#queue-rows .subject")).to_have_text([PAYLOADS[1]])
    assert_inert(agent, "#queue-rows")
    agent.goto(f"{site.url}/inbox/tickets/{ticket.pk}/")
    expect(agent.locator(".message-body")).to_have_text([CUSTOMER_TEXT, REPLY_TEXT])
    assert_inert(agent, ".ticket-layout")
