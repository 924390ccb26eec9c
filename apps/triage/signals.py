"""Per-message signals beside the intent: language, a request for a human, urgency, sentiment.

All offline and cheap (regular expressions and small lexicons); the handoff policy reads
them, so they favour precision over recall. Named `signals` for the message signals,
not Django signals (the project uses none).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from django.conf import settings
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# Common English words (function words and everyday support vocabulary). Short support
# messages ("someone stole my credit card") are too short for a statistical detector, which
# then guesses Italian; most traffic is English, so a clearly English text skips it.
_ENGLISH_COMMON = (
    "i my me you your we our us they them their he she his her it its this that these those "
    "the a an is are was were am be been being do does did done not no yes to of in on at "
    "for with from by about into over after before and or but if so than then there here "
    "what why how when where who which can could would should will shall may might must "
    "have has had get got getting please hi hello hey thanks thank yet still just already "
    "any some all more much many very too also again only now today tomorrow yesterday "
    "want need know tell help make use used using see let go going come came take took "
    "give gave pay paid send sent receive received find found try tried work working "
    "account card cards money payment payments transfer transfers bank fee fees charge "
    "charged refund order delivery password phone app email address number name change "
    "new old wrong right still long time week weeks day days month someone stole stolen "
    "lost missing arrived arrive why where help problem issue cash balance top up "
    "credit debit online contact support service customer person human agent"
)
# scikit-learn's English stop words (318 function words) widen the net for short questions
# ("Visa or Mastercard?", "Changing my PIN") that langdetect would call Portuguese or Tagalog.
# (less the few that are everyday words of other European languages too).
_ENGLISH_WORDS = frozenset(_ENGLISH_COMMON.split()) | (
    ENGLISH_STOP_WORDS - {"de", "un", "con", "per", "eg", "ie", "etc"}
)
# Below this many words a detector's verdict of a foreign language is not trusted unless it
# is nearly certain: a handoff for "a language the knowledge base lacks" must not hit a
# plain English question.
_SHORT_TEXT_WORDS = 8
_SHORT_TEXT_CERTAINTY = 0.95
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_detector_lock = threading.Lock()
_detector_ready = False

_HUMAN_NOUNS = (
    r"(?:human|person|people|agent|operator|representative|rep|someone|somebody|"
    r"real\s+person|live\s+person|staff|employee|manager|supervisor|customer\s+service)"
)
_DETERMINER = r"(?:(?:a|an|the|some|your|one\s+of\s+your|real|live|actual)\s+){0,2}(?:chat\s+)?"
_ASKS_FOR_HUMAN = [
    # English
    rf"\b(?:talk|speak|chat)\b(?:\s+\w+){{0,2}}?\s+(?:to|with)\s+{_DETERMINER}{_HUMAN_NOUNS}\b",
    rf"\b(?:transfer|connect|put|pass)\s+me\s+(?:through\s+|over\s+)?(?:to|with)\s+"
    rf"{_DETERMINER}{_HUMAN_NOUNS}\b",
    r"\b(?:real|live|actual)\s+(?:human|person|agent|people)\b",
    r"\bhuman\s+(?:agent|being|support|help)\b",
    r"\b(?:get|need|want)\s+(?:me\s+)?(?:a|an|some)\s+(?:human|person|agent|operator)\b",
    r"\bare\s+you\s+(?:a\s+)?(?:bot|robot|machine)\b",
    r"\bnot\s+(?:a|the)\s+(?:bot|robot)\b",
    # "get me someone who can…", "find me a person": asking to be given a person
    r"\b(?:get|find|give|send)\s+me\s+(?:someone|somebody|a\s+(?:human|person|agent))\b",
    # "stop with the bot", "enough of this chatbot", "no more bots": refusing the bot
    r"\b(?:stop|enough|done|fed\s+up)\s+(?:with|of)\s+(?:the|this|your|these)\s+"
    r"(?:chat\s*)?(?:bots?|robots?|automated\s+\w+)\b",
    r"\bno\s+more\s+(?:chat\s*)?(?:bots?|robots?)\b",
    # A message that opens with just "agent" / "human please."
    r"^\s*(?:an?\s+)?(?:human|agent|operator|representative|real\s+person)(?:\s+please)?"
    r"\s*(?:[.!?]|$)",
    # French
    r"\b(?:parler|discuter)\s+(?:à|a|avec)\s+(?:un|une|quelqu'un|quelqu\s?un)"
    r"(?:\s+(?:humain|personne|conseiller|conseillère|agent|opérateur|vrai|réel))?",
    r"\b(?:un|une)\s+(?:vrai|vraie|véritable)\s+(?:personne|humain|conseiller)\b",
    r"\bconseiller\s+humain\b",
    # German
    r"\b(?:mit\s+)?(?:einem|einer)\s+(?:echten\s+)?(?:menschen|mitarbeiter|mitarbeiterin|person)"
    r"\s+(?:sprechen|reden)\b",
    r"\becht(?:en|er|e)?\s+(?:mensch|menschen|person)\b",
    # Spanish / Portuguese / Italian
    r"\b(?:hablar|falar|parlare)\s+(?:con|com)\s+(?:un|una|uma|um|una)\s+"
    r"(?:humano|persona|pessoa|agente|operador|operatore|persona\s+real)\b",
    r"\b(?:persona|pessoa)\s+(?:real|de\s+verdad)\b",
    # Dutch
    r"\b(?:spreken|praten)\s+met\s+(?:een\s+)?(?:mens|medewerker|persoon)\b",
    r"\bmet\s+een\s+(?:echte\s+)?(?:mens|medewerker)\s+(?:spreken|praten)\b",
]
_ASKS_FOR_HUMAN_RE = re.compile("|".join(f"(?:{p})" for p in _ASKS_FOR_HUMAN), re.IGNORECASE)
# "I don't need to talk to a human" is not a request for one.
_NEGATED_HUMAN_RE = re.compile(
    r"\b(?:don'?t|do\s+not|no\s+need\s+to|never|without)\b[\w\s']{0,20}"
    r"\b(?:talk|speak|chat|need|want)\b",
    re.IGNORECASE,
)

_CLAUSE_BREAK = re.compile(r"[,;.!?]")

_URGENT_TERMS = {
    "urgent": 1.0,
    "urgently": 1.0,
    "asap": 1.0,
    "emergency": 1.0,
    "immediately": 0.8,
    "right now": 0.8,
    "right away": 0.8,
    "as soon as possible": 0.8,
    "now": 0.2,
    "stolen": 0.8,
    "fraud": 0.8,
    "fraudulent": 0.8,
    "hacked": 0.9,
    "scam": 0.7,
    "unauthorized": 0.7,
    "unauthorised": 0.7,
    "don't recognise": 0.6,
    "don't recognize": 0.6,
    "locked out": 0.7,
    "blocked": 0.4,
    "can't access": 0.5,
    "cannot access": 0.5,
    "lost my card": 0.6,
    "today": 0.2,
    "deadline": 0.5,
    "still waiting": 0.4,
    "dringend": 1.0,
    "sofort": 0.8,
    "urgente": 1.0,
    "inmediatamente": 0.8,
    "urgence": 1.0,
    "immédiatement": 0.8,
    "volé": 0.8,
    "gestohlen": 0.8,
    "robada": 0.8,
    "robado": 0.8,
}
_POSITIVE = {
    "thanks",
    "thank",
    "great",
    "good",
    "love",
    "awesome",
    "excellent",
    "perfect",
    "happy",
    "helpful",
    "amazing",
    "appreciate",
    "nice",
    "wonderful",
    "pleased",
    "merci",
    "danke",
    "gracias",
    "super",
    "glad",
    "fantastic",
}
_NEGATIVE = {
    "angry",
    "annoyed",
    "annoying",
    "terrible",
    "awful",
    "horrible",
    "worst",
    "bad",
    "hate",
    "useless",
    "ridiculous",
    "unacceptable",
    "frustrated",
    "frustrating",
    "disappointed",
    "disappointing",
    "upset",
    "furious",
    "scam",
    "stupid",
    "never",
    "problem",
    "wrong",
    "fail",
    "failed",
    "broken",
    "declined",
    "rejected",
    "stolen",
    "fraud",
    "complaint",
    "disgusted",
    "pathetic",
    "rubbish",
    "nightmare",
    "waste",
    "mad",
    "sucks",
    "poor",
}
_NEGATIONS = {"not", "no", "never", "n't", "dont", "don't", "isn't", "wasn't", "didn't"}
_INTENSIFIERS = {"very", "really", "so", "extremely", "totally", "absolutely"}


@dataclass(frozen=True)
class MessageSignals:
    language: str | None
    asks_for_human: bool
    urgency: str  # "low" | "normal" | "high"
    urgency_score: float  # 0..1
    sentiment: str  # "negative" | "neutral" | "positive"
    sentiment_score: float  # -1..1


def _ensure_detector() -> None:
    global _detector_ready
    if _detector_ready:
        return
    with _detector_lock:
        if not _detector_ready:
            from langdetect import DetectorFactory

            # langdetect samples at random: a fixed seed gives the same answer every call.
            DetectorFactory.seed = 0
            _detector_ready = True


def detect_language(text: str) -> str | None:
    """ISO 639-1 code, or None when the text has too few letters to tell."""
    words = [word.lower() for word in _WORD.findall(text)]
    letters = sum(len(word) for word in words)
    if letters < settings.TRIAGE_LANGUAGE_MIN_LETTERS:
        return None
    english = sum(1 for word in words if word in _ENGLISH_WORDS)
    if english >= 2 and english / len(words) >= 0.5:
        return "en"
    if len(words) < _SHORT_TEXT_WORDS and english and english / len(words) >= 0.25:
        return "en"
    _ensure_detector()
    from langdetect import LangDetectException, detect_langs

    try:
        with _detector_lock:  # the detector factory is shared module state
            best = detect_langs(text[:2000])[0]
    except LangDetectException:
        return None
    if len(words) < _SHORT_TEXT_WORDS and best.prob < _SHORT_TEXT_CERTAINTY:
        return None
    return best.lang if best.prob >= 0.5 else None


def asks_for_human(text: str) -> bool:
    """The customer asks for a person ("can I talk to a human?", "un vrai conseiller")."""
    match = _ASKS_FOR_HUMAN_RE.search(text)
    if match is None:
        return False
    before = text[max(0, match.start() - 30) : match.end()]
    # Only a negation in the same clause counts: "I don't want a bot, get me a person" asks.
    clause = _CLAUSE_BREAK.split(before)[-1]
    return _NEGATED_HUMAN_RE.search(clause) is None


def urgency(text: str) -> tuple[str, float]:
    lowered = text.lower()
    score = sum(
        weight
        for term, weight in _URGENT_TERMS.items()
        if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", lowered)
    )
    if "!!" in text:
        score += 0.3
    letters = [character for character in text if character.isalpha()]
    if len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7:
        score += 0.3  # shouting
    score = min(1.0, score)
    level = "high" if score >= 0.7 else "normal" if score >= 0.3 else "low"
    return level, round(score, 3)


def sentiment(text: str) -> tuple[str, float]:
    tokens = re.findall(r"[\w']+|!", text.lower())
    total = 0.0
    for position, token in enumerate(tokens):
        polarity = 1.0 if token in _POSITIVE else -1.0 if token in _NEGATIVE else 0.0
        if not polarity:
            continue
        window = tokens[max(0, position - 3) : position]
        if any(word in _NEGATIONS or word.endswith("n't") for word in window):
            polarity = -polarity * 0.5
        if any(word in _INTENSIFIERS for word in window):
            polarity *= 1.5
        total += polarity
    if total < 0 and "!" in tokens:
        total -= 0.5
    score = max(-1.0, min(1.0, total / 3.0))
    label = "negative" if score <= -0.3 else "positive" if score >= 0.3 else "neutral"
    return label, round(score, 3)


def message_signals(text: str) -> MessageSignals:
    urgency_level, urgency_score = urgency(text)
    sentiment_label, sentiment_score = sentiment(text)
    return MessageSignals(
        language=detect_language(text),
        asks_for_human=asks_for_human(text),
        urgency=urgency_level,
        urgency_score=urgency_score,
        sentiment=sentiment_label,
        sentiment_score=sentiment_score,
    )
