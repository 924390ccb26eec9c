import pytest

from apps.copilot.pipeline.routing import RoutingInput, RoutingRule, question_count, route_choose

RULE = RoutingRule(
    min_intent_probability=0.6, min_retrieval_score=0.5, max_message_chars=200, max_questions=1
)


def simple(**changes):
    values = {
        "intent_known": True,
        "intent_probability": 0.9,
        "retrieval_top_score": 0.8,
        "message": "How long does a refund take?",
        "sender_verified": True,
    }
    values.update(changes)
    return RoutingInput(**values)


def test_simple_well_covered_question_goes_to_the_fast_model():
    assert route_choose(simple(), RULE).alias == "draft-fast"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"intent_known": False}, "intent unknown"),
        ({"intent_probability": 0.4}, "intent uncertain"),
        ({"retrieval_top_score": 0.3}, "weak retrieval"),
        ({"message": "x" * 201}, "long message"),
        ({"message": "Where is my parcel? And can I change the address?"}, "several questions"),
    ],
)
def test_hard_questions_go_to_the_strong_model_with_a_reason(changes, reason):
    choice = route_choose(simple(**changes), RULE)
    assert (choice.alias, choice.reason) == ("draft-strong", reason)


def test_enumerated_items_count_as_questions():
    assert question_count("I need:\n1. a refund\n2. a new invoice\n3. to close my account") == 3


@pytest.mark.parametrize(
    "message", ["x" * 201, "Where is my parcel? And can I change the address?"]
)
def test_an_unverified_sender_cannot_buy_the_strong_model_by_writing_more(message):
    choice = route_choose(simple(message=message, sender_verified=False), RULE)
    assert choice.alias == "draft-fast"
    assert "unverified sender" in choice.reason
