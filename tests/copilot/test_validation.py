from apps.copilot.pipeline.validation import EvidencePassage, draft_validate, groundedness

REFUNDS = EvidencePassage(
    id="P1",
    text="Refunds are issued to the original payment method within 5 business days. "
    "See https://help.example.com/billing/refund-policy for exceptions.",
    url="https://help.example.com/billing/refunds",
)
SHIPPING = EvidencePassage(
    id="P2",
    text="Standard shipping takes 3 to 7 days. Express shipping arrives the next day.",
    url="https://help.example.com/shipping/times",
)


def test_reply_built_from_the_passages_is_valid_and_grounded():
    # when
    result = draft_validate(
        reply="Hello! Refunds are issued to your original payment method within 5 business "
        "days. Details: https://help.example.com/billing/refund-policy. Best regards.",
        citations=["P1"],
        passages=[REFUNDS, SHIPPING],
    )
    # then
    assert result.passed
    assert result.groundedness == 1.0
    assert result.unsupported_sentences == ()


def test_citation_of_a_passage_that_was_not_retrieved_is_invalid():
    # when
    result = draft_validate(
        reply="Refunds are issued within 5 business days.",
        citations=["P1", "P9"],
        passages=[REFUNDS],
    )
    # then
    assert not result.citations_valid
    assert result.invalid_citations == ("P9",)
    assert not result.passed


def test_link_not_from_the_knowledge_base_is_flagged():
    # when
    result = draft_validate(
        reply="Refunds are issued within 5 business days, see https://evil.example.net/phish.",
        citations=["P1"],
        passages=[REFUNDS],
    )
    # then
    assert not result.links_valid
    assert result.foreign_links == ("https://evil.example.net/phish",)


def test_article_url_of_a_passage_is_an_allowed_link():
    # when
    result = draft_validate(
        reply="Standard shipping takes 3 to 7 days: https://help.example.com/shipping/times/",
        citations=["P2"],
        passages=[SHIPPING],
    )
    # then
    assert result.links_valid


def test_invented_claim_makes_the_reply_ungrounded():
    # when
    result = draft_validate(
        reply="Refunds are issued within 5 business days. We also give every customer a "
        "free smartwatch voucher worth fifty dollars.",
        citations=["P1"],
        passages=[REFUNDS],
    )
    # then
    assert not result.grounded
    assert result.unsupported_sentences == (
        "We also give every customer a free smartwatch voucher worth fifty dollars.",
    )


def test_empty_reply_or_no_passages_is_ungrounded():
    assert not draft_validate(reply="", citations=[], passages=[REFUNDS]).grounded
    assert not draft_validate(
        reply="Refunds are issued within 5 business days.", citations=[], passages=[]
    ).grounded


def test_greetings_and_closings_do_not_count_as_claims():
    # when
    score, unsupported = groundedness(
        "Hi there! Thanks for reaching out. Express shipping arrives the next day. Cheers!",
        [SHIPPING],
    )
    # then
    assert unsupported == []
    assert score == 1.0
