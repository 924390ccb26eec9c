import pytest

from apps.triage.signals import asks_for_human, detect_language, sentiment, urgency


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I am still waiting for my card to arrive", "en"),
        ("Bonjour, je n'ai toujours pas reçu ma carte bancaire", "fr"),
        ("Hallo, meine Karte ist noch nicht angekommen, was soll ich tun?", "de"),
        ("Hola, todavía no he recibido mi tarjeta, ¿qué debo hacer?", "es"),
        ("ok", None),
        ("🙂🙂🙂", None),
    ],
)
def test_language_is_detected_offline(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human please?",
        "I want to speak with a real person",
        "let me chat to an agent",
        "Connect me with someone from customer service",
        "are you a bot?",
        "Je veux parler à un conseiller",
        "Ich möchte mit einem Menschen sprechen",
        "Quiero hablar con una persona",
        "ik wil met een medewerker spreken",
        "stop with the bot, get me someone who can actually cancel my order",
        "get me someone who can actually help",
        "enough of this chatbot",
        "I don't want a bot, find me a person",
        "agent",
        "human please. my bowl arrived broken",
        "connect me to a live chat operator",
    ],
)
def test_requests_for_a_human_are_recognised(text):
    assert asks_for_human(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "my card was stolen",
        "I don't need to talk to a human, just tell me the fee",
        "how do I transfer money to a person abroad",
        "someone used my card, what do I do",
        "can you send me a new card",
        "agent fees for cash deposits",
        "",
    ],
)
def test_other_messages_do_not_ask_for_a_human(text):
    assert asks_for_human(text) is False


def test_urgency_is_high_for_fraud_and_shouting_and_low_for_a_plain_question():
    assert urgency("URGENT!! my card was stolen and someone is using it") == ("high", 1.0)
    assert urgency("what are your opening hours?") == ("low", 0.0)


def test_sentiment_follows_the_customer_words_and_negation():
    assert sentiment("This is terrible, the worst service ever!")[0] == "negative"
    assert sentiment("Thanks a lot, that was really helpful")[0] == "positive"
    assert sentiment("where is my parcel")[0] == "neutral"
    assert sentiment("not bad at all")[0] != "negative"


@pytest.mark.parametrize(
    "text",
    [
        "Visa or Mastercard?",
        "Changing my PIN",
        "Cancel a transaction",
        "do you sell car parts",
        "Do you provide currency exchange to Euros?",
        "are multiple currencies acceptable?",
        "I am having trouble verifying my id.",
    ],
)
def test_short_plain_english_questions_are_never_read_as_another_language(text):
    # (langdetect alone calls these Portuguese, Tagalog, Catalan, Spanish, Romanian...)
    assert detect_language(text) in ("en", None)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Ich habe mein Passwort vergessen, wie kann ich es zurücksetzen?", "de"),
        ("Mon colis est arrivé et le vase est cassé, que dois-je faire ?", "fr"),
        ("quiero cancelar mi pedido, lo hice hace diez minutos", "es"),
    ],
)
def test_other_languages_are_still_told_apart(text, language):
    assert detect_language(text) == language
