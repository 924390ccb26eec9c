"""The classifier's own arithmetic, on made-up embeddings: no database, no encoder."""

import dataclasses
import zlib

import numpy as np
import pytest
import scipy.sparse as sparse
from sklearn.kernel_approximation import Nystroem
from sklearn.svm import LinearSVC

from apps.triage import classifier

WORDS = ["please", "help", "me", "with", "this", "now", "thanks", "hello", "question", "today"]


def _xor_set(count: int, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Intent "a" sits around +e1 and -e1, intent "b" around +e2 and -e2: no plane through
    the embeddings separates them, and the texts are random words shared by both."""
    random = np.random.default_rng(seed)
    centres = {"a": (0, 1), "b": (2, 3)}
    axes = np.eye(8, dtype=np.float32)
    centre_vectors = [axes[0], -axes[0], axes[1], -axes[1]]
    embeddings, labels, texts = [], [], []
    for row in range(count):
        label = "a" if row % 2 == 0 else "b"
        centre = centre_vectors[centres[label][random.integers(2)]]
        vector = centre + 0.15 * random.standard_normal(8).astype(np.float32)
        embeddings.append(vector / np.linalg.norm(vector))
        labels.append(label)
        texts.append(" ".join(random.choice(WORDS, size=4)))
    return texts, np.array(embeddings, dtype=np.float32), labels


def _accuracy(model: classifier.IntentModel, seed: int) -> float:
    texts, embeddings, labels = _xor_set(400, seed)
    predicted = model.predict(texts, embeddings).top_index
    return float(
        np.mean([model.labels[i] == label for i, label in zip(predicted, labels, strict=True)])
    )


@pytest.fixture(scope="module")
def xor_models() -> dict[str, classifier.IntentModel]:
    texts, embeddings, labels = _xor_set(600, seed=1)
    trained = {}
    for name, landmarks in (("kernel", 200), ("linear", 0)):
        params = classifier.ClassifierParams(kernel_landmarks=landmarks, kernel_gamma=2.0)
        trained[name] = classifier.train(
            texts=texts, embeddings=embeddings, labels=labels, intents=["a", "b"], params=params
        ).model
    return trained


def test_the_kernel_block_separates_intents_no_plane_separates(xor_models):
    # when: both classify new points drawn the same way
    kernel, linear = _accuracy(xor_models["kernel"], seed=2), _accuracy(xor_models["linear"], 2)
    # then: the folded kernel weights classify as the SVM was trained to; a plane cannot
    assert kernel > 0.97
    assert linear < 0.7


def test_the_folded_kernel_weights_give_the_decisions_of_the_svm_on_the_mapped_features():
    # given: three intents, a heavy kernel block
    texts, embeddings, labels = _xor_set(300, seed=8)
    targets = np.array([(index % 3) if label == "a" else 2 for index, label in enumerate(labels)])
    params = classifier.ClassifierParams(kernel_landmarks=80, kernel_gamma=2.0, kernel_weight=5.0)
    # when
    fitted = classifier.fit_margins(texts, embeddings, targets, params)
    # then: the same SVM trained on sklearn's own Nystroem features decides the same
    nystroem = Nystroem(gamma=2.0, n_components=80, random_state=params.seed)
    mapped = nystroem.fit_transform(embeddings.astype(np.float64)).astype(np.float32)
    mapped *= 5.0 / np.sqrt((mapped * mapped).sum(axis=1).mean())
    lexical = sparse.hstack(
        [
            2.0 * sparse.csr_matrix(embeddings),
            fitted.word.transform(texts),
            fitted.char.transform(texts),
        ]
    )
    features = sparse.hstack([lexical, sparse.csr_matrix(mapped)], format="csr")
    svm = LinearSVC(C=params.svm_c, class_weight="balanced", random_state=params.seed)
    expected = svm.fit(features, targets).decision_function(features)
    np.testing.assert_allclose(
        fitted.margins(texts, embeddings, params, 3), expected, rtol=1e-3, atol=1e-3
    )


def test_a_stored_model_classifies_as_it_did_before_storing(xor_models):
    # given
    model = xor_models["kernel"]
    texts, embeddings, _ = _xor_set(50, seed=3)
    # when
    restored = classifier.IntentModel.from_bytes(model.to_bytes())
    # then
    np.testing.assert_allclose(
        restored.margins(texts, embeddings), model.margins(texts, embeddings), rtol=1e-6
    )


class _OlderIntentModel(classifier.IntentModel):
    """Pickles with the fields an artifact had before the kernel block (the SVM's parts as
    fields of their own), under IntentModel's name."""

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        svm = state.pop("svm")
        state.update(
            word_vectorizer=svm.word,
            char_vectorizer=svm.char,
            coef=svm.coef,
            intercept=svm.intercept,
        )
        return state

    def __reduce_ex__(self, protocol):  # type: ignore[no-untyped-def]
        return (object.__new__, (classifier.IntentModel,), self.__getstate__())


def test_an_artifact_stored_before_the_kernel_block_still_classifies(xor_models):
    # given: an artifact as trained before the kernel block existed
    model = xor_models["linear"]
    fields = {field.name: getattr(model, field.name) for field in dataclasses.fields(model)}
    older_bytes = _OlderIntentModel(**fields).to_bytes()
    assert b"word_vectorizer" in zlib.decompress(older_bytes)
    older = classifier.IntentModel.from_bytes(older_bytes)
    texts, embeddings, _ = _xor_set(50, seed=4)
    # when
    predictions = older.predict(texts, embeddings)
    # then
    np.testing.assert_allclose(
        older.margins(texts, embeddings), xor_models["linear"].margins(texts, embeddings)
    )
    assert predictions.confidence.shape == (50,)


def _overlapping_set(counts: dict[str, int], seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Two intents whose embeddings overlap: "common" around e1, "rare" a little towards e2."""
    random = np.random.default_rng(seed)
    axes = np.eye(8, dtype=np.float32)
    centres = {"common": axes[0], "rare": axes[0] + 0.5 * axes[1]}
    embeddings, labels, texts = [], [], []
    for label, count in counts.items():
        for _ in range(count):
            vector = centres[label] + 0.35 * random.standard_normal(8).astype(np.float32)
            embeddings.append(vector / np.linalg.norm(vector))
            labels.append(label)
            texts.append(" ".join(random.choice(WORDS, size=4)))
    return texts, np.array(embeddings, dtype=np.float32), labels


def test_class_weights_keep_a_rare_intent_from_being_outvoted_by_a_common_one():
    # given: ten times as many examples of one intent as of the other
    texts, embeddings, labels = _overlapping_set({"common": 500, "rare": 50}, seed=5)
    test_texts, test_embeddings, _ = _overlapping_set({"rare": 300}, seed=6)
    recall = {}
    for weights in ("balanced", ""):
        params = classifier.ClassifierParams(class_weight=weights, kernel_landmarks=0)
        model = classifier.train(
            texts=texts,
            embeddings=embeddings,
            labels=labels,
            intents=["common", "rare"],
            params=params,
        ).model
        predicted = model.predict(test_texts, test_embeddings).top_index
        recall[weights] = float(np.mean([model.labels[i] == "rare" for i in predicted]))
    # then
    assert recall["balanced"] > recall[""] + 0.15
