"""Canned replies: their placeholders, filled for a ticket and the agent using them.

A placeholder is a name in double braces ({{customer.first_name}}). Only the names below
exist; filling is plain text substitution (no template language runs), so a macro can never
reach anything else of the ticket, and a customer's name is inserted as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from apps.accounts.models import User
from apps.tickets.models import Macro, Ticket

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")


def _first_name(ticket: Ticket, agent: User) -> str:
    return (ticket.customer.name.split() or [""])[0]


PLACEHOLDERS: dict[str, Callable[[Ticket, User], str]] = {
    "customer.name": lambda ticket, agent: ticket.customer.name,
    "customer.first_name": _first_name,
    "customer.email": lambda ticket, agent: ticket.customer.email,
    "agent.name": lambda ticket, agent: agent.get_full_name() or agent.get_username(),
    "ticket.id": lambda ticket, agent: str(ticket.pk),
    "ticket.subject": lambda ticket, agent: ticket.subject,
}
# What a placeholder reads when the ticket has no value for it ("Hello {{customer.first_name}},"
# for an anonymous visitor reads "Hello there,").
FALLBACKS = {"customer.name": "there", "customer.first_name": "there"}


def placeholders_unknown(body: str) -> list[str]:
    """The placeholders of `body` that do not exist (a typo an admin should hear about)."""
    return [name for name in _PLACEHOLDER.findall(body) if name not in PLACEHOLDERS]


def macro_render(*, macro: Macro, ticket: Ticket, agent: User) -> str:
    """The macro's text for this ticket, placeholders filled (unknown ones left as written)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            return match.group(0)
        return PLACEHOLDERS[name](ticket, agent) or FALLBACKS.get(name, "")

    return _PLACEHOLDER.sub(fill, macro.body)


def macros_for(*, ticket: Ticket, agent: User) -> list[dict[str, str]]:
    """Every active macro, filled for the ticket: what the inbox's picker offers."""
    return [
        {
            "shortcut": m.shortcut,
            "name": m.name,
            "text": macro_render(macro=m, ticket=ticket, agent=agent),
        }
        for m in Macro.objects.filter(is_active=True)
    ]
