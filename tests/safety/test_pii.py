"""Personal data found, replaced by typed placeholders and restored, with the analyzer itself
(Presidio, libphonenumber, the spaCy model): no part of it is imitated here."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from apps.safety import pii
from apps.safety.logs import PiiLogFilter, text_mask

pytestmark = pytest.mark.slow  # loads the spaCy model once per process

MESSAGE = (
    "Hi, I'm Maria Gonzalez. My card 4111 1111 1111 1111 was charged twice for order "
    "#884213 ($45.20). IBAN GB82 WEST 1234 5698 7654 32, sort code 12-34-56, account "
    "number 31926819. I live at 221B Baker Street, London NW1 6XE, born 14/03/1985. "
    "NI number AB 12 34 56 C, SSN 536-22-8190. Call +44 20 7946 0958 or write to "
    "maria.g@example.com."
)
PERSONAL = [
    "Maria Gonzalez", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "12-34-56",
    "31926819", "221B Baker Street", "NW1 6XE", "14/03/1985", "AB 12 34 56 C", "536-22-8190",
    "+44 20 7946 0958", "maria.g@example.com",
]  # fmt: skip
# Not personal data: the model needs them to answer.
KEPT = ["#884213", "$45.20", "charged twice", "London"]


def test_every_kind_of_personal_data_is_replaced_and_look_alikes_are_kept():
    # when
    redacted = pii.Pseudonymiser().redact(MESSAGE)
    # then
    leaked = [value for value in PERSONAL if value in redacted]
    assert leaked == []
    for kept in KEPT:
        assert kept in redacted
    for placeholder in ("<PERSON_1>", "<CREDIT_CARD_1>", "<IBAN_1>", "<EMAIL_1>", "<PHONE_1>"):
        assert placeholder in redacted


def test_a_card_last_four_an_order_number_and_a_payment_date_reach_the_model_intact():
    text = "The card ending 4242 was declined on 12/03/2024 for order 88213344, ref A-55120."
    assert pii.Pseudonymiser().redact(text) == text


def test_one_call_numbers_each_value_once_and_restores_the_reply_including_escaped_forms():
    # given: the same card in two texts of one call
    pseudonymiser = pii.Pseudonymiser()
    first = pseudonymiser.redact("Card 4111 1111 1111 1111, I am Maria Gonzalez.")
    second = pseudonymiser.redact("Again: 4111-1111-1111-1111 please.")
    # then
    assert "<CREDIT_CARD_1>" in first and "<CREDIT_CARD_1>" in second
    assert pseudonymiser.replaced == {"CREDIT_CARD": 1, "PERSON": 1}
    reply = "Dear <PERSON_1>, card &lt;CREDIT_CARD_1&gt; is blocked; [PERSON_1]; <PERSON_7>."
    assert pseudonymiser.restore(reply) == (
        "Dear Maria Gonzalez, card 4111 1111 1111 1111 is blocked; Maria Gonzalez; <PERSON_7>."
    )
    # and a fresh call knows nothing of the last one's mapping
    assert pii.Pseudonymiser().restore("Dear <PERSON_1>") == "Dear <PERSON_1>"


def test_a_streamed_reply_never_shows_a_placeholder_split_across_pieces():
    pseudonymiser = pii.Pseudonymiser()
    pseudonymiser.redact("I am Maria Gonzalez, card 4111 1111 1111 1111")
    sent: list[str] = []
    stream = pseudonymiser.stream(sent.append)
    for piece in ["Dear <PER", "SON_1>, your card <CREDIT", "_CARD_1> is ", "blocked."]:
        stream.feed(piece)
    stream.flush()
    assert "".join(sent) == "Dear Maria Gonzalez, your card 4111 1111 1111 1111 is blocked."
    assert not any("<" in piece or "_" in piece for piece in sent)


def test_the_allow_list_keeps_the_company_s_own_contact_details(settings):
    settings.PII_ALLOW_LIST = ["+44 20 7946 0000", "help@fernhill.example"]
    text = "Call us on 020 7946 0000 or help@fernhill.example; mine is 020 7946 0958."
    redacted = pii.Pseudonymiser().redact(text)
    assert "020 7946 0000" in redacted and "help@fernhill.example" in redacted
    assert "020 7946 0958" not in redacted


def test_types_can_be_switched_off(settings):
    settings.PII_ENTITIES = ["CREDIT_CARD"]
    redacted = pii.Pseudonymiser().redact("Maria Gonzalez, 4111 1111 1111 1111")
    assert redacted == "Maria Gonzalez, <CREDIT_CARD_1>"


def test_a_national_id_added_by_yaml_is_found(settings, tmp_path):
    # given: a Spanish DNI recogniser, in Presidio's own format
    recognizers = tmp_path / "extra.yaml"
    recognizers.write_text(
        "recognizers:\n"
        "  - name: SpanishDni\n"
        "    supported_language: en\n"
        "    supported_entity: NATIONAL_ID\n"
        "    patterns:\n"
        "      - name: dni\n"
        "        regex: '\\b\\d{8}[A-HJ-NP-TV-Z]\\b'\n"
        "        score: 0.6\n"
    )
    settings.PII_RECOGNIZERS_YAML = str(recognizers)
    pii._analyzer.cache_clear()
    try:
        redacted = pii.Pseudonymiser().redact("Mi DNI es 12345678Z")
    finally:
        pii._analyzer.cache_clear()
    assert redacted == "Mi DNI es <NATIONAL_ID_1>"


def test_log_lines_mask_cards_emails_and_phone_numbers(settings):
    assert text_mask("card 4111 1111 1111 1111 from maria.g@example.com") == (
        "card <CREDIT_CARD> from <EMAIL>"
    )
    # and the filter the settings install on the console does it to every record
    assert "pii" in settings.LOGGING["handlers"]["console"]["filters"]
    record = logging.LogRecord(
        "x",
        logging.WARNING,
        __file__,
        1,
        "refused %s, call %s",
        ("a@fern.co.uk", "+1 415 555 2671"),
        None,
    )
    assert PiiLogFilter().filter(record)
    assert record.getMessage() == "refused <EMAIL>, call <PHONE>"
    # and an order number or an amount is left alone
    assert text_mask("order 4111111 of $1,234.56") == "order 4111111 of $1,234.56"


def test_local_data_folders_are_readable_by_their_owner_only(tmp_path):
    from config.env import private_dir

    # given: a folder someone made world-readable
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o755)
    # when
    private_dir(folder)
    # then
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def _passages() -> list[str]:
    from uuid import uuid4

    tag = uuid4().hex[:8]  # texts no earlier run stored
    return [
        f"Our adviser Maria Gonzalez answers on +44 20 7946 0958 (ref {tag}).",
        f"Refunds reach your card within five working days (ref {tag}).",
    ]


def test_passage_analyses_are_shared_through_redis_so_another_process_skips_spacy(
    monkeypatch, settings
):
    from collections import OrderedDict

    from apps.core.metrics import redis_client

    passages = _passages()
    # given: one worker redacted these passages for a draft
    pii.pii_prefetch(passages)
    redacted = [pii.Pseudonymiser().redact(text) for text in passages]
    assert "Maria Gonzalez" not in redacted[0] and "<PERSON_1>" in redacted[0]
    keys = [pii._shared_key(pii._analysis_key(text)) for text in passages]
    assert all(0 < redis_client().ttl(key) <= settings.PII_SHARED_CACHE_SECONDS for key in keys)

    # when: another process, whose own cache is empty, drafts with the same passages
    def analysed_again(**_: object) -> None:
        raise AssertionError("spaCy read a passage another process had read")

    monkeypatch.setattr(pii, "_RECENT", OrderedDict())
    monkeypatch.setattr(pii._analyzer(), "analyze", analysed_again)
    pii.pii_prefetch(passages)
    # then: the same redaction, from Redis
    assert [pii.Pseudonymiser().redact(text) for text in passages] == redacted


def test_without_redis_passages_are_analysed_in_the_process_and_nothing_fails(monkeypatch, caplog):
    class Away:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            def refuse(*args: object, **kwargs: object) -> None:
                raise ConnectionError("Redis is away")

            return refuse

    monkeypatch.setattr("apps.core.metrics.redis_client", lambda: Away())
    passages = _passages()
    # when
    pii.pii_prefetch(passages)
    # then: redacted all the same, and the log says the cache was not there
    assert "Maria Gonzalez" not in pii.Pseudonymiser().redact(passages[0])
    assert "not read from Redis" in caplog.text
