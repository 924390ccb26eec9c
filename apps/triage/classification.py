"""Classifying customer messages with the active classifier, plus the per-message signals."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from django.conf import settings

from apps.core.exceptions import ValidationError
from apps.llm.embeddings import embed, read_encoder
from apps.triage import runtime, selectors
from apps.triage.classifier import ClassifierParams, IntentModel
from apps.triage.signals import detect_language, message_signals
from apps.triage.text import has_words

REASON_NO_CLASSIFIER = "no active classifier"
REASON_UNLOADABLE = "the active classifier cannot be loaded: retrain or activate another version"
REASON_NO_WORDS = "no words to classify"
REASON_OUT_OF_SCOPE = "unlike every intent's training examples"


@dataclass(frozen=True)
class IntentProbability:
    intent: str
    probability: float


@dataclass(frozen=True)
class ClassificationResult:
    """One message's triage. `intent` is None when unclassified or out of scope, and
    `reason` then says why; `confidence` is the calibrated probability of the top intent."""

    intent: str | None
    confidence: float
    alternatives: list[IntentProbability]
    out_of_scope: bool
    classifier_version_id: int | None
    handoff_policy: str | None
    reason: str
    language: str | None
    asks_for_human: bool
    urgency: str
    urgency_score: float
    sentiment: str
    sentiment_score: float

    def as_json(self) -> dict:
        return asdict(self)


def _check(texts: list[str]) -> None:
    if len(texts) > settings.TRIAGE_MAX_BATCH:
        raise ValidationError(
            f"{len(texts)} texts in one call; at most {settings.TRIAGE_MAX_BATCH}", field="texts"
        )
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(f"text {position} is not a string", field="texts")
        if len(text) > settings.TRIAGE_MAX_MESSAGE_CHARS:
            raise ValidationError(
                f"text {position} has {len(text)} characters; at most "
                f"{settings.TRIAGE_MAX_MESSAGE_CHARS}",
                field="texts",
            )


Outcome = tuple[str | None, float, list[IntentProbability], bool, str]


class Encoded(NamedTuple):
    """What a classifier reads of texts besides the words, in the order of IntentModel.
    predict's arguments."""

    embeddings: np.ndarray
    layers: np.ndarray | None  # the encoder-layer means, if the classifier reads them
    tokens: list[np.ndarray] | None  # the last layer's token states, if it matches tokens


def encoded(
    texts: list[str], params: ClassifierParams, *, vectors: np.ndarray | None = None
) -> Encoded:
    """What a classifier with `params` reads of `texts` besides the words: their sentence
    embeddings (`vectors` if the caller has them) and, if it reads them, their encoder-layer
    means and token states. One pass through the encoder gives all three."""
    if params.layer_weight or params.token_weight:
        reading = read_encoder(texts, params.encoder_layer, tokens=bool(params.token_weight))
        return Encoded(
            reading.sentences if vectors is None else vectors,
            reading.layer_means if params.layer_weight else None,
            reading.tokens if params.token_weight else None,
        )
    if vectors is None:
        vectors = np.asarray(embed(texts), dtype=np.float32)
    return Encoded(vectors, None, None)


def model_outcomes(texts: list[str], model: IntentModel) -> list[Outcome]:
    """(intent, confidence, alternatives, out of scope, reason) per text, from the model
    alone: no database. `messages_classify` adds the signals and the intents' policies."""
    outcomes: list[Outcome] = [(None, 0.0, [], True, REASON_NO_WORDS) for _ in texts]
    wordy = [position for position, text in enumerate(texts) if has_words(text)]
    if not wordy:
        return outcomes
    # The encoder reads 256 word pieces; the rest of a long message changes nothing
    # but the time the n-gram features take.
    clipped = [texts[p][: settings.TRIAGE_CLASSIFIER_INPUT_CHARS] for p in wordy]
    reading = encoded(clipped, model.params)
    predictions = model.predict(clipped, *reading)
    for row, position in enumerate(wordy):
        probabilities = predictions.probabilities[row]
        top = int(predictions.top_index[row])
        others = [int(i) for i in np.argsort(-probabilities, kind="stable") if i != top]
        ranked = [top, *others[:2]]
        alternatives = [
            IntentProbability(model.labels[i], round(float(probabilities[i]), 4)) for i in ranked
        ]
        confidence = round(float(predictions.confidence[row]), 4)
        similarity = float(predictions.nearest_similarity[row])
        if similarity < model.out_of_scope_similarity:
            reason = (
                f"{REASON_OUT_OF_SCOPE} (similarity {similarity:.2f} < "
                f"{model.out_of_scope_similarity:.2f})"
            )
            outcomes[position] = (None, confidence, alternatives, True, reason)
        else:
            outcomes[position] = (alternatives[0].intent, confidence, alternatives, False, "")
    return outcomes


def messages_classify(*, texts: list[str]) -> list[ClassificationResult]:
    """Triage of each text, in order. Read-only; never raises for a missing classifier
    (the results say "no active classifier"); raises ValidationError for oversized input."""
    _check(texts)
    signals = [message_signals(text) for text in texts]
    version_id = None
    try:
        loaded = runtime.active_model()
        unavailable_reason = REASON_NO_CLASSIFIER
    except runtime.ClassifierUnavailableError:
        loaded, unavailable_reason = None, REASON_UNLOADABLE
    if loaded is None:
        outcomes: list[Outcome] = [(None, 0.0, [], False, unavailable_reason) for _ in texts]
    else:
        version_id, model = loaded
        outcomes = model_outcomes(texts, model)
    policies = selectors.intent_policies(names=[o[0] for o in outcomes if o[0]])
    return [
        ClassificationResult(
            intent=intent,
            confidence=confidence,
            alternatives=alternatives,
            out_of_scope=out_of_scope,
            classifier_version_id=version_id,
            handoff_policy=policies.get(intent) if intent else None,
            reason=reason,
            language=signal.language,
            asks_for_human=signal.asks_for_human,
            urgency=signal.urgency,
            urgency_score=signal.urgency_score,
            sentiment=signal.sentiment,
            sentiment_score=signal.sentiment_score,
        )
        for (intent, confidence, alternatives, out_of_scope, reason), signal in zip(
            outcomes, signals, strict=True
        )
    ]


def message_classify(*, text: str) -> ClassificationResult:
    """Triage of one customer message; see `messages_classify`."""
    return messages_classify(texts=[text])[0]


def texts_intent_probabilities(
    *, texts: list[str], vectors: np.ndarray
) -> tuple[list[str], np.ndarray] | None:
    """The active classifier's probability of every intent (columns, named in order by the
    list) for each text (rows), given the texts' embeddings, which the caller already has
    (knowledge passages store theirs). For reading documents, not customer messages: no
    signals, no out-of-scope verdict. None when no classifier is active or loadable.
    A classifier with the encoder-layer block reads them with its passage
    reader (IntentModel.passage_probabilities); only one trained before readers existed
    runs the encoder over them again for the layer's means."""
    try:
        loaded = runtime.active_model()
    except runtime.ClassifierUnavailableError:
        return None
    if loaded is None or not texts:
        return None
    _, model = loaded
    clipped = [text[: settings.TRIAGE_CLASSIFIER_INPUT_CHARS] for text in texts]
    embeddings = np.asarray(vectors, dtype=np.float32)
    layers = None
    if model.reader is None and model.params.layer_weight:
        # A layer-block classifier trained before passage readers reads them itself.
        embeddings, layers, _ = encoded(clipped, model.params, vectors=embeddings)
    return list(model.labels), model.passage_probabilities(clipped, embeddings, layers)


def triage_warm() -> int | None:
    """Pays a process's one-time triage costs before its first message or request: the
    embedding model, the active classifier and the language detector (~5 s on 2 cores).
    Returns the loaded classifier version's id (None when none is active). Reads only."""
    embed(["warm up"])
    # Too short for the language detector, which loads its profiles (~0.5 s) on first use.
    detect_language("Bonjour, je voudrais changer l'adresse de livraison de ma commande")
    return message_classify(text="warm up").classifier_version_id
