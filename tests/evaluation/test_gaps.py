"""Knowledge gaps: questions agents answered with no article behind them are clustered, each
gap proposing the agents' answer as a draft article; refreshes are idempotent; personal
data is kept out; an erased customer's questions leave the gaps."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from apps.copilot.models import DraftStatus
from apps.copilot.services import pipeline_run
from apps.evaluation.gaps import knowledge_gap_draft_article, knowledge_gaps_refresh
from apps.evaluation.models import GapStatus, KnowledgeGap
from apps.knowledge.models import Article, ArticleStatus
from apps.tickets.models import AuthorKind, Message, Ticket
from apps.tickets.services import Actor, message_add

pytestmark = pytest.mark.slow
# Real customer questions (Banking77) on two topics the test help center lacks, one one-off.
TOPICS = {
    "loyalty": [  # named for the fixture's keys; Banking77's top-up limit questions
        "What is the highest amount I can top-up?",
        "Can I increase my top-up maximum?",
        "Can someone please tell me how much I can top-up?",
        "Is there a limit on how much I can top up?",
        "What is the maximum top-up amount?",
    ],
    "assembly": [  # Banking77's beneficiary_not_allowed
        "Why was I not allowed to do a transfer to a beneficiary?",
        "Will a beneficiary not accept a transfer?",
        "What is the reason for my beneficiary to be disallowed?",
    ],
    "": ["Can I pay for my sofa in bitcoin?"],
    "careers": ["Are you hiring? I would like to work for you"],
}
ANSWERS = {
    "loyalty": "You can top up up to 10,000 a day; limits are under Settings, Limits.",
    "assembly": "Transfers to a new beneficiary are blocked until you confirm them in the app.",
    "": "We don't accept cryptocurrency.",
    "careers": "Our open roles are on the careers page.",
}


def _topic(name: str) -> list[dict]:
    return [{"question": q, "answer": ANSWERS[name]} for q in TOPICS[name]]


def _ask_and_answer(client, row: dict, email: str, *, answer: bool = True) -> int:  # type: ignore[no-untyped-def]
    """The question posted through the API and drafted; the agent rejects the draft and
    answers in their own words. The customer message's id."""
    posted = client.post(
        "/api/v1/tickets", {"customer": {"email": email}, "body": row["question"]}, format="json"
    )
    assert posted.status_code == 201, posted.content
    ticket = Ticket.objects.get(pk=posted.json()["id"])
    message = Message.objects.get(ticket=ticket)
    draft = pipeline_run(message_id=message.pk)
    if draft is not None and draft.status == DraftStatus.PENDING:
        rejected = client.post(
            f"/api/v1/tickets/{ticket.pk}/draft/reject", {"reason": "not what they asked"},
            format="json",
        )  # fmt: skip
        assert rejected.status_code == 200, rejected.content
    if answer:
        message_add(
            ticket=ticket, author_kind=AuthorKind.AGENT, body=row["answer"], actor=Actor.system()
        )
    return message.pk


@pytest.fixture
def asked(copilot_ready, api_key_client, settings):  # type: ignore[no-untyped-def]
    settings.COPILOT_AUTO_SEND_THRESHOLD = 1.0  # nothing goes out on its own
    client = api_key_client()
    ids = {"loyalty": [], "assembly": [], "one-off": []}
    for i, row in enumerate(_topic("loyalty")[:3]):
        ids["loyalty"].append(_ask_and_answer(client, row, f"l{i}@example.com"))
    for i, row in enumerate(_topic("assembly")[:3]):
        ids["assembly"].append(_ask_and_answer(client, row, f"a{i}@example.com"))
    ids["one-off"].append(_ask_and_answer(client, _topic("")[0], "o@example.com"))
    # asked, never answered by an agent: no evidence
    ids["unanswered"] = [
        _ask_and_answer(client, _topic("careers")[0], "u@example.com", answer=False)
    ]
    return client, ids


def test_questions_answered_without_an_article_are_clustered_into_gaps(asked):
    client, ids = asked
    counts = knowledge_gaps_refresh()
    assert counts["evidence"] == 7  # six topic questions and the one-off, each answered
    gaps = {frozenset(g.message_ids): g for g in KnowledgeGap.objects.all()}
    assert set(gaps) == {frozenset(ids["loyalty"]), frozenset(ids["assembly"])}
    loyalty = gaps[frozenset(ids["loyalty"])]
    assert loyalty.tickets == 3 and loyalty.status == GapStatus.OPEN
    assert loyalty.title in TOPICS["loyalty"]
    assert {a["text"] for a in loyalty.answers} == {ANSWERS["loyalty"]}
    assert loyalty.proposed_body.startswith(f"# {loyalty.title}")
    assert any(answer["text"] in loyalty.proposed_body for answer in loyalty.answers)
    # idempotent: the same evidence, the same gaps, nothing written
    again = knowledge_gaps_refresh()
    assert (again["created"], again["updated"], again["removed"]) == (0, 0, 0)
    # a fourth loyalty question joins its gap, which keeps its id
    extra = _ask_and_answer(client, _topic("loyalty")[3], "l9@example.com")
    knowledge_gaps_refresh()
    grown = KnowledgeGap.objects.get(pk=loyalty.pk)
    assert extra in grown.message_ids and grown.tickets == 4
    out = StringIO()
    call_command("knowledge_gaps", stdout=out)
    assert f"gap #{loyalty.pk}: 4 tickets" in out.getvalue()


def test_a_gap_becomes_a_draft_article_and_is_not_clustered_again(asked):
    knowledge_gaps_refresh()
    gap = KnowledgeGap.objects.order_by("id").first()
    external_id = knowledge_gap_draft_article(gap=gap)
    article = Article.objects.get(external_id=external_id, source__name="knowledge-gaps")
    assert article.status == ArticleStatus.DRAFT  # an admin edits and publishes it
    assert gap.answers[0]["text"][:40] in article.body
    knowledge_gaps_refresh()
    assert KnowledgeGap.objects.get(pk=gap.pk).status == GapStatus.ARTICLE_DRAFTED
    assert KnowledgeGap.objects.filter(status=GapStatus.OPEN).count() == 1


def test_gaps_keep_no_personal_data_and_forget_an_erased_customer(asked):
    client, _ = asked
    row = {**_topic("loyalty")[4], "question": "Kim Walsh here, kim.walsh@example.com: "
           + _topic("loyalty")[4]["question"]}  # fmt: skip
    _ask_and_answer(client, row, "kim.walsh@example.com")
    knowledge_gaps_refresh()
    gap = KnowledgeGap.objects.get(tickets=4)
    stored = json.dumps([gap.questions, gap.answers, gap.title, gap.proposed_body])
    assert "kim.walsh@example.com" not in stored and "<EMAIL_1>" in stored
    call_command("customer_erase", "kim.walsh@example.com")
    gap.refresh_from_db()
    assert gap.tickets == 3 and "Walsh" not in json.dumps(gap.questions)
