import pytest

from apps.feedback.models import IntentCorrection
from apps.triage.models import TrainingExample
from tests.inbox.factories import conversation_create
from tests.inbox.test_ticket_actions import seen
from tests.knowledge.conftest import DEMO_KB
from tests.triage.factories import IntentFactory

pytestmark = pytest.mark.django_db


def test_agent_changes_the_intent_from_the_ticket_page(agent_client, agent):
    # given
    IntentFactory(name="refund")
    IntentFactory(name="delivery_delay")
    ticket = conversation_create(body="My parcel is a week late", intent="refund")
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/intent", {**seen(ticket), "intent": "delivery_delay"}
    )
    # then
    assert '<option value="delivery_delay">delivery_delay</option>' in page
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.intent == "delivery_delay"
    assert TrainingExample.objects.get().text == "My parcel is a week late"
    assert IntentCorrection.objects.get().corrected_by == agent


def test_unknown_intent_is_refused_next_to_the_field(agent_client):
    # given
    IntentFactory(name="refund")
    ticket = conversation_create(intent="refund")
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/intent", {**seen(ticket), "intent": "made_up"}
    )
    # then
    assert response.status_code == 422
    assert "Select a valid choice. made_up is not one of the available choices." in (
        response.content.decode()
    )
    assert (TrainingExample.objects.count(), IntentCorrection.objects.count()) == (0, 0)


def test_choosing_the_same_intent_says_so_and_changes_nothing(agent_client):
    # given
    IntentFactory(name="refund")
    ticket = conversation_create(intent="refund")
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/intent", {**seen(ticket), "intent": "refund"}
    )
    # then
    assert response.status_code == 400
    assert "the ticket&#x27;s intent is already &#x27;refund&#x27;" in response.content.decode()
    assert TrainingExample.objects.count() == 0


def test_knowledge_search_refuses_an_overlong_query_with_a_message(agent_client):
    # when
    response = agent_client.get("/inbox/knowledge/search", {"kq": "x" * 2001})
    # then
    assert response.status_code == 200
    assert "the query is longer than 2000 characters" in response.content.decode()


@pytest.mark.slow
def test_knowledge_search_offers_passages_and_links_to_insert(agent_client):
    # given
    from apps.knowledge.imports import kb_import

    kb_import(paths=[DEMO_KB / "shipping"], source_name="demo")
    ticket = conversation_create()
    # when
    partial = agent_client.get("/inbox/knowledge/search", {"kq": "how long does delivery take"})
    full = agent_client.get(f"/inbox/tickets/{ticket.pk}/", {"kq": "delivery times"})
    # then
    body = partial.content.decode()
    assert body.count('data-insert="') >= 2
    assert 'href="/inbox/knowledge/demo/' in body
    assert "Insert passage" in full.content.decode()
    article_url = body.split('href="', 1)[1].split('"', 1)[0]
    article = agent_client.get(article_url)
    assert article.status_code == 200
    assert "Knowledge base · demo · " in article.content.decode()
