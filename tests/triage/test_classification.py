import numpy as np
import pytest

from apps.core.exceptions import ValidationError
from apps.llm.embeddings import embed
from apps.triage import classification, runtime
from apps.triage.models import ClassifierVersion, HandoffPolicy, Intent
from apps.triage.services import (
    classifier_version_activate,
    message_classify,
    messages_classify,
    texts_intent_probabilities,
)
from tests.triage.data import HELD_OUT, INTENT_NAMES, OUT_OF_SCOPE

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_without_an_active_classifier_messages_are_unclassified_with_the_reason(
    make_ready_version,
):
    # given: a trained version that is not active
    make_ready_version(activate=False)
    # when
    result = message_classify(text="I lost my card")
    # then
    assert result.intent is None
    assert result.reason == "no active classifier"
    assert result.classifier_version_id is None
    assert result.out_of_scope is False
    assert result.alternatives == []
    assert result.language == "en"  # the signals do not need a classifier


def test_held_out_messages_get_their_intent_with_calibrated_looking_output(active_classifier):
    # when
    results = messages_classify(texts=[text for text, _ in HELD_OUT])
    # then
    assert [result.intent for result in results] == [intent for _, intent in HELD_OUT]
    for result in results:
        assert result.classifier_version_id == active_classifier.id
        assert result.out_of_scope is False
        assert 0.5 <= result.confidence <= 1.0
        assert next(a.intent for a in result.alternatives) == result.intent
        assert result.alternatives[0].probability == result.confidence
        probabilities = [a.probability for a in result.alternatives]
        assert len(probabilities) == 3
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1.0001
        assert {a.intent for a in result.alternatives} <= set(INTENT_NAMES)


def test_a_message_unlike_any_intent_is_out_of_scope(active_classifier):
    # when
    results = messages_classify(texts=OUT_OF_SCOPE)
    # then
    for result in results:
        assert result.out_of_scope is True
        assert result.intent is None
        assert result.reason.startswith("unlike every intent's training examples (similarity ")
        assert len(result.alternatives) == 3  # the nearest guesses stay visible


@pytest.mark.parametrize("text", ["", "   ", "🙂🔥👍", "?!..."])
def test_texts_without_words_are_out_of_scope_not_errors(active_classifier, text):
    # when
    result = message_classify(text=text)
    # then
    assert (result.intent, result.out_of_scope, result.reason) == (
        None,
        True,
        "no words to classify",
    )
    assert result.classifier_version_id == active_classifier.id


def test_a_20000_character_message_is_classified_and_a_longer_one_refused(active_classifier):
    # given
    long_text = ("where is my parcel " * 2000)[:20000]
    # when
    result = message_classify(text=long_text)
    # then: classified (repetition makes it unlike the short examples, so possibly
    # out of scope, but the best guess is right)
    assert result.alternatives[0].intent == "delivery_status"
    with pytest.raises(ValidationError) as refused:
        message_classify(text=long_text + "x")
    assert refused.value.message == "text 0 has 20001 characters; at most 20000"


def test_more_than_256_texts_are_refused(active_classifier):
    # when
    with pytest.raises(ValidationError) as refused:
        messages_classify(texts=["hello"] * 257)
    # then
    assert refused.value.message == "257 texts in one call; at most 256"


def test_the_intent_handoff_policy_comes_with_the_result(active_classifier):
    # given
    Intent.objects.filter(name="card_lost").update(handoff_policy=HandoffPolicy.ALWAYS_HUMAN)
    # when
    result = message_classify(text="someone stole my credit card")
    # then
    assert (result.intent, result.handoff_policy) == ("card_lost", "always_human")


def test_the_model_is_loaded_once_per_process_and_again_when_the_active_version_changes(
    make_ready_version,
):
    # given
    first = make_ready_version(activate=True)
    message_classify(text="where is my parcel")
    loads = runtime.load_count()
    # when: more calls on the same active version
    message_classify(text="I forgot my password")
    messages_classify(texts=["refund my order", "are you open today"])
    # then
    assert runtime.load_count() == loads
    # when: another version becomes active
    second = make_ready_version()
    classifier_version_activate(version_id=second.id)
    result = message_classify(text="where is my parcel")
    # then
    assert runtime.load_count() == loads + 1
    assert result.classifier_version_id == second.id != first.id


def test_an_unloadable_active_artifact_leaves_messages_unclassified_with_the_reason(
    make_ready_version,
):
    # given: the active version's artifact is not one this code can read
    version = make_ready_version(activate=True)
    ClassifierVersion.objects.filter(id=version.id).update(artifact=b"not a model")
    # when
    result = message_classify(text="where is my parcel")
    # then
    assert (result.intent, result.classifier_version_id) == (None, None)
    assert result.reason == (
        "the active classifier cannot be loaded: retrain or activate another version"
    )


def test_passages_are_read_from_their_stored_embeddings_without_the_encoder(
    active_classifier, monkeypatch
):
    # given: the shipped classifier (encoder-layer and token blocks, passage reader), passages
    # whose embeddings are stored, and an encoder that must not run
    passages = [text for text, _ in HELD_OUT]
    vectors = np.asarray(embed(passages), dtype=np.float32)
    _, model = runtime.active_model()
    assert model.params.layer_weight and model.params.token_weight and model.reader is not None

    def encoder_runs(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the encoder ran over passages that have their embeddings")

    monkeypatch.setattr(classification, "read_encoder", encoder_runs)
    monkeypatch.setattr(classification, "embed", encoder_runs)
    # when
    labels, probabilities = texts_intent_probabilities(texts=passages, vectors=vectors)
    # then: the reader's reading, which finds each passage's intent
    assert labels == model.labels
    np.testing.assert_allclose(probabilities, model.passage_probabilities(passages, vectors))
    assert [labels[row.argmax()] for row in probabilities] == [i for _, i in HELD_OUT]


def test_warming_a_process_loads_the_language_detectors_profiles(monkeypatch):
    from langdetect import detector_factory

    from apps.triage.classification import triage_warm

    # given: a process whose language detector has not read its profiles yet
    monkeypatch.setattr(detector_factory, "_factory", None)
    # when
    triage_warm()
    # then: the first customer message in another language does not pay for them
    assert detector_factory._factory is not None
