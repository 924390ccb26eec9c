"""Canned replies: placeholders filled for the ticket, the CSV import's per-line report."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.accounts.models import Role, User
from apps.tickets.macros import macro_render, macros_for
from apps.tickets.models import Macro
from apps.tickets.services.macros import macros_import
from tests.inbox.factories import conversation_create
from tests.tickets.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent() -> User:
    return User.objects.create_user(
        username="agnes", password="x", role=Role.AGENT, first_name="Agnes", last_name="Moor"
    )


def test_placeholders_are_filled_for_the_ticket_and_unknown_ones_left_as_written(agent):
    # given
    customer = CustomerFactory(name="Maria Lopez", email="maria@example.com")
    ticket = conversation_create(customer=customer, subject="Refund")
    macro = Macro.objects.create(
        shortcut="hi",
        name="Hi",
        body="Hi {{customer.first_name}} ({{ customer.email }}), #{{ticket.id}} "
        "{{ticket.subject}}. {{agent.name}} {{customer.password}}",
    )
    # when
    text = macro_render(macro=macro, ticket=ticket, agent=agent)
    # then
    assert text == (
        f"Hi Maria (maria@example.com), #{ticket.pk} Refund. Agnes Moor {{{{customer.password}}}}"
    )


def test_an_anonymous_visitor_is_greeted_as_there_and_inactive_macros_are_not_offered(agent):
    # given
    ticket = conversation_create(customer=CustomerFactory(name="", email=""))
    Macro.objects.create(shortcut="hi", name="Hi", body="Hello {{customer.first_name}},")
    Macro.objects.create(shortcut="old", name="Old", body="gone", is_active=False)
    # when / then
    assert macros_for(ticket=ticket, agent=agent) == [
        {"shortcut": "hi", "name": "Hi", "text": "Hello there,"}
    ]


def test_the_import_stores_good_lines_and_reports_each_bad_one_keeping_what_was_there():
    # given: a macro already there, and a file with good and bad lines
    Macro.objects.create(shortcut="keep", name="Keep", body="kept")
    text = (
        "shortcut,name,body\n"
        "/thanks,Thanks,Thank you {{customer.first_name}}!\\nBye\n"
        "bad shortcut!,Name,Body\n"
        "typo,Typo,Hello {{customer.frist_name}}\n"
        "empty,,Body\n"
        "keep,Keep,kept\n"
    )
    # when
    report = macros_import(text=text)
    # then
    assert (report.created, report.updated, report.unchanged) == (1, 0, 1)
    assert report.errors == [
        "line 3: shortcut 'bad shortcut!' must be 1 to 40 of a-z, 0-9, - and _",
        "line 4: unknown placeholder(s) customer.frist_name",
        "line 5: the name is empty",
    ]
    assert Macro.objects.get(shortcut="thanks").body == "Thank you {{customer.first_name}}!\nBye"
    assert set(Macro.objects.values_list("shortcut", flat=True)) == {"keep", "thanks"}


def test_the_demo_macros_import_cleanly(capsys):
    call_command("macros_import", "fixtures/demo/macros.csv")
    assert "3 created, 0 updated, 0 unchanged, 0 line(s) refused" in capsys.readouterr().out


def test_the_admin_refuses_a_macro_with_an_unknown_placeholder(admin_client):
    # when
    response = admin_client.post(
        "/admin/tickets/macro/add/",
        {"shortcut": "x", "name": "X", "body": "Hi {{customer.nme}}", "is_active": "on"},
    )
    # then
    assert response.status_code == 200
    assert "Unknown placeholder(s): customer.nme" in response.content.decode()
    assert not Macro.objects.exists()
