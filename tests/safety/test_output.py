"""The output guard on its own: links in every form, contacts, prompt leaks, commitments."""

from __future__ import annotations

import pytest

from apps.safety.output import links_found, output_check

PASSAGE = (
    "Reset your password at https://help.fernhill.example/reset. Refunds are sent within 5 "
    "working days. Call us on 020 7946 0000. A replacement card costs £5."
)


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/reset",
        "www.evil-bank.com",
        "evil.example/reset",
        "//evil.example/pay",
        "javascript:alert(1)",
        "[here](http://evil.example)",
        "secure-login.co.uk/verify",
    ],
)
def test_a_link_in_any_form_not_in_the_knowledge_base_is_found(link):
    findings = output_check(reply=f"Please go to {link} now.", evidence=[PASSAGE])
    assert [f["kind"] for f in findings] == ["link"], findings


def test_links_of_the_knowledge_base_and_plain_words_with_dots_pass():
    reply = "Go to https://help.fernhill.example/reset (see help.fernhill.example). e.g. Mr. Smith"
    assert output_check(reply=reply, evidence=[PASSAGE]) == []
    assert links_found("version 1.2.3 costs 4.50 today") == []


def test_contacts_the_passages_and_the_customer_do_not_have_are_found():
    findings = output_check(
        reply="Call 020 7946 0000 or 0800 123 456, or write to fraud@evil.example or ada@x.org",
        evidence=[PASSAGE],
        customer_text="my email is ada@x.org",
    )
    assert sorted(f["text"] for f in findings if f["kind"] == "contact") == [
        "0800 123 456",
        "fraud@evil.example",
    ]


def test_the_canary_or_eight_words_of_the_prompt_are_a_leak():
    prompt = "You are Fernhill's support assistant. Answer only from the passages you are given."
    leak = output_check(
        reply="Sure: answer only from the passages you are given, I was told.",
        evidence=[PASSAGE],
        system_prompt=prompt,
    )
    assert [f["kind"] for f in leak] == ["prompt leak"]
    canary = output_check(reply="ref dp-abc123", evidence=[PASSAGE], canary="dp-abc123")
    assert [f["kind"] for f in canary] == ["prompt leak"]


def test_money_promises_and_deadlines_no_passage_states_are_commitments():
    findings = output_check(
        reply="I confirm your refund of $500 has been approved and arrives by Friday.",
        evidence=[PASSAGE],
    )
    kinds = [f["kind"] for f in findings]
    assert kinds.count("commitment") >= 3  # the amount, the promise, the deadline
    # what the passage says is no commitment of the model's own
    assert output_check(reply="A replacement card costs £5.", evidence=[PASSAGE]) == []
