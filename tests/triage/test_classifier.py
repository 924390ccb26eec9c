"""The classifier's own arithmetic, on made-up embeddings: no database, no encoder.

The kernel, class-neighbour and class-weight tests turn the encoder-layer block off
(`NO_LAYER`): their made-up points have no layer means."""

import dataclasses
import json
import zlib

import numpy as np
import pytest
import scipy.sparse as sparse
from scipy.special import logsumexp
from sklearn.kernel_approximation import Nystroem
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from apps.triage import classifier

NO_LAYER = {"layer_weight": 0.0}
# Neither the class-neighbour block nor the kernel block: one plane per intent.
PLANES_ONLY = {"neighbour_weight": 0.0, "kernel_landmarks": 0}
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


def _model(
    texts: list[str],
    embeddings: np.ndarray,
    labels: list[str],
    params: classifier.ClassifierParams,
    layers: np.ndarray | None = None,
    tokens: list[np.ndarray] | None = None,
) -> classifier.IntentModel:
    return classifier.train(
        texts=texts,
        embeddings=embeddings,
        layer_embeddings=layers,
        tokens=tokens,
        labels=labels,
        intents=sorted(set(labels)),
        params=params,
    ).model


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
    for name, blocks in (
        ("kernel", {"kernel_landmarks": 200, "neighbour_weight": 0.0}),
        ("neighbours", {}),
        ("linear", PLANES_ONLY),
    ):
        params = classifier.ClassifierParams(kernel_gamma=2.0, **blocks, **NO_LAYER)
        trained[name] = classifier.train(
            texts=texts, embeddings=embeddings, labels=labels, intents=["a", "b"], params=params
        ).model
    return trained


def test_the_kernel_and_neighbour_blocks_separate_intents_no_plane_separates(xor_models):
    # when: each classifies new points drawn the same way
    accuracy = {name: _accuracy(model, seed=2) for name, model in xor_models.items()}
    # then: the folded weights classify as the SVM was trained to; a plane cannot
    assert accuracy["kernel"] > 0.97
    assert accuracy["neighbours"] > 0.97
    assert accuracy["linear"] < 0.7
    # without the encoder-layer and neighbour blocks an older release can still read them
    assert xor_models["kernel"].format == xor_models["linear"].format == 2
    assert xor_models["neighbours"].format == 4


def _naive_neighbour_scores(
    embeddings: np.ndarray,
    examples: np.ndarray,
    targets: np.ndarray,
    sharpness: float,
    *,
    own: bool,
) -> np.ndarray:
    """Per text and intent, log(mean(exp(sharpness * cosine))) / sharpness over the intent's
    examples, one intent at a time; with `own`, text i is example i and is left out."""
    similarity = embeddings.astype(np.float64) @ examples.astype(np.float64).T
    scores = np.full((len(embeddings), int(targets.max()) + 1), -1.0)
    for row in range(len(embeddings)):
        for intent in range(scores.shape[1]):
            picked = targets == intent
            if own:
                picked[row] = False
            if picked.any():
                mean = logsumexp(sharpness * similarity[row, picked]) - np.log(picked.sum())
                scores[row, intent] = max(mean / sharpness, -1.0)
    return scores


def test_neighbour_scores_are_each_intents_soft_maximum_similarity():
    # given: examples of intents 0, 1 and 3 (none of 2), in no particular order
    random = np.random.default_rng(30)
    examples = random.standard_normal((40, 8)).astype(np.float32)
    examples /= np.linalg.norm(examples, axis=1, keepdims=True)
    targets = random.choice([0, 1, 3], size=40)
    order = np.argsort(targets, kind="stable")
    own_rows = np.empty(40, dtype=np.int64)
    own_rows[order] = np.arange(40)
    counts = np.bincount(targets)
    # when
    scores = classifier._neighbour_scores(examples[:9], examples[order], counts, 20.0)
    left_out = classifier._neighbour_scores(examples, examples[order], counts, 20.0, own_rows)
    # then: as the plain formula, with an intent that has no example at -1
    expected = _naive_neighbour_scores(examples[:9], examples, targets, 20.0, own=False)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(
        left_out, _naive_neighbour_scores(examples, examples, targets, 20.0, own=True), atol=1e-5
    )
    assert (scores[:, 2] == -1.0).all()
    # a training text is nearest its own intent, through itself; left out, it is not
    own = scores[np.arange(9), targets[:9]]
    assert (own == scores.max(axis=1)).all()
    assert (left_out[np.arange(9), targets[:9]] < own - 0.1).all()


@pytest.mark.parametrize("intents", [3, 2])
def test_the_folded_neighbour_weights_give_the_decisions_of_the_svm_on_the_block(intents):
    # given: a heavy neighbour block beside a kernel block (both on: each keeps its columns)
    texts, embeddings, labels = _xor_set(240, seed=9)
    targets = np.array(
        [(index % intents) if label == "a" else intents - 1 for index, label in enumerate(labels)]
    )
    params = classifier.ClassifierParams(
        neighbour_weight=5.0, neighbour_sharpness=10.0, kernel_landmarks=60, **NO_LAYER
    )
    new_texts, new_embeddings, _ = _xor_set(60, seed=10)
    # when
    fitted = classifier.fit_margins(texts, embeddings, targets, params)
    # then: an SVM trained on the blocks written out (training texts left out of their own
    # intent's mean, centred, scaled to the weight) decides the same on new texts
    stored = embeddings.astype(np.float16).astype(np.float64)  # as the artifact keeps them
    trained_block = _naive_neighbour_scores(stored, stored, targets, 10.0, own=True)
    centre = trained_block.mean()
    scale = 5.0 / np.sqrt(((trained_block - centre) ** 2).sum(axis=1).mean())
    nystroem = Nystroem(gamma=params.kernel_gamma, n_components=60, random_state=params.seed)
    mapped = nystroem.fit_transform(embeddings.astype(np.float64))
    kernel_scale = 1.0 / np.sqrt((mapped * mapped).sum(axis=1).mean())

    def features(rows_texts: list[str], rows: np.ndarray, block: np.ndarray) -> sparse.csr_matrix:
        lexical = [fitted.word.transform(rows_texts), fitted.char.transform(rows_texts)]
        kernel = kernel_scale * nystroem.transform(rows.astype(np.float64))
        blocks = [sparse.csr_matrix(2.0 * rows), *lexical, sparse.csr_matrix(kernel)]
        return sparse.hstack([*blocks, sparse.csr_matrix(scale * (block - centre))], "csr")

    svm = LinearSVC(C=params.svm_c, class_weight="balanced", random_state=params.seed)
    svm.fit(features(texts, embeddings, trained_block), targets)
    new_block = _naive_neighbour_scores(new_embeddings, stored, targets, 10.0, own=False)
    expected = svm.decision_function(features(new_texts, new_embeddings, new_block))
    if intents == 2:
        expected = np.column_stack([-expected, expected])
    np.testing.assert_allclose(
        fitted.margins(new_texts, new_embeddings, params, intents),
        expected,
        rtol=1e-3,
        atol=1e-3,
    )


def test_neighbour_scores_are_the_same_across_chunks_of_texts():
    # given: more training texts than one chunk (512), each left out of its own intent
    random = np.random.default_rng(31)
    examples = random.standard_normal((700, 8)).astype(np.float32)
    examples /= np.linalg.norm(examples, axis=1, keepdims=True)
    targets = np.sort(random.integers(0, 5, size=700))
    # when
    scores = classifier._neighbour_scores(
        examples, examples, np.bincount(targets), 20.0, np.arange(700)
    )
    # then
    expected = _naive_neighbour_scores(examples, examples, targets, 20.0, own=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_a_neighbour_block_without_sharpness_is_refused():
    texts, embeddings, labels = _xor_set(40, seed=12)
    targets = np.array([0 if label == "a" else 1 for label in labels])
    params = classifier.ClassifierParams(neighbour_sharpness=0.0, **NO_LAYER)
    with pytest.raises(ValueError, match="sharpness above 0"):
        classifier.fit_margins(texts, embeddings, targets, params)


def test_the_neighbour_examples_are_stored_once_beside_the_out_of_scope_reference(xor_models):
    # given
    model = xor_models["neighbours"]
    # when
    restored = classifier.IntentModel.from_bytes(model.to_bytes())
    # then: one array, in intent order, as float16
    assert restored.reference_embeddings is restored.svm.neighbour_embeddings
    assert restored.reference_embeddings.dtype == np.float16
    assert list(restored.svm.neighbour_counts) == [300, 300]
    # ...widened to float32 once for both uses, and never stored widened
    assert restored._reference_float32() is classifier._float32_once(
        restored.svm, "neighbour_embeddings"
    )
    assert b"_widened_" not in zlib.decompress(restored.to_bytes())
    texts, embeddings, _ = _xor_set(50, seed=3)
    np.testing.assert_allclose(
        restored.margins(texts, embeddings), model.margins(texts, embeddings), rtol=1e-6
    )


def test_the_folded_kernel_weights_give_the_decisions_of_the_svm_on_the_mapped_features():
    # given: three intents, a heavy kernel block
    texts, embeddings, labels = _xor_set(300, seed=8)
    targets = np.array([(index % 3) if label == "a" else 2 for index, label in enumerate(labels)])
    params = classifier.ClassifierParams(
        kernel_landmarks=80, kernel_gamma=2.0, kernel_weight=5.0, neighbour_weight=0.0, **NO_LAYER
    )
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


def test_the_out_of_scope_threshold_is_the_held_out_percentile_under_a_cap():
    # given: tight clusters, so held-out texts sit very near their fold's other texts
    texts, embeddings, labels = _xor_set(200, seed=4)
    params = classifier.ClassifierParams(**PLANES_ONLY, **NO_LAYER)
    targets = np.array([sorted(set(labels)).index(label) for label in labels])
    nearest = np.zeros(len(texts))
    splitter = StratifiedKFold(n_splits=params.folds, shuffle=True, random_state=params.seed)
    for fit, held in splitter.split(texts, targets):
        nearest[held] = (embeddings[held] @ embeddings[fit].T).max(axis=1)
    percentile = float(np.percentile(nearest, params.out_of_scope_percentile))
    assert percentile > params.out_of_scope_max_similarity
    # when
    capped = _model(texts, embeddings, labels, params)
    uncapped = _model(
        texts, embeddings, labels, dataclasses.replace(params, out_of_scope_max_similarity=1.0)
    )
    # then
    assert capped.out_of_scope_similarity == params.out_of_scope_max_similarity
    assert uncapped.out_of_scope_similarity == pytest.approx(percentile, abs=1e-6)
    # Between the cap and the percentile: out of scope only without the cap.
    axes = np.eye(8, dtype=np.float32)
    halfway = (0.7 * axes[0] + np.sqrt(1 - 0.7**2) * axes[5])[None, :]
    similarity = capped.predict(["hello"], halfway).nearest_similarity[0]
    assert capped.out_of_scope_similarity <= similarity < uncapped.out_of_scope_similarity


NEIGHBOUR_PARAMS = ("neighbour_weight", "neighbour_sharpness")


def _without(instance: object, names: tuple[str, ...]) -> object:
    """A copy of a dataclass instance that pickles without the fields `names`, as one from
    a release before them did."""
    older = object.__new__(type(instance))
    older.__dict__.update(
        {name: value for name, value in vars(instance).items() if name not in names}
    )
    return older


def _older_params(params: classifier.ClassifierParams) -> classifier.ClassifierParams:
    """`params` as pickled before the encoder-layer block (and the neighbour block)."""
    return _without(params, ("encoder_layer", "layer_weight", *NEIGHBOUR_PARAMS))  # type: ignore[return-value]


class _OlderIntentModel(classifier.IntentModel):
    """Pickles with the fields an artifact had before the kernel block (the SVM's parts as
    fields of their own) and the encoder-layer block, under IntentModel's name."""

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("reader_state", None)
        svm = state.pop("svm")
        state.update(
            word_vectorizer=svm.word,
            char_vectorizer=svm.char,
            coef=svm.coef,
            intercept=svm.intercept,
            params=_older_params(state["params"]),
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
    assert b"layer_weight" not in zlib.decompress(older_bytes)
    older = classifier.IntentModel.from_bytes(older_bytes)
    texts, embeddings, _ = _xor_set(50, seed=4)
    # when
    predictions = older.predict(texts, embeddings)
    # then
    np.testing.assert_allclose(
        older.margins(texts, embeddings), xor_models["linear"].margins(texts, embeddings)
    )
    assert predictions.confidence.shape == (50,)
    assert older.params.layer_weight == 0.0
    assert "reader" in older.__dict__ and older.reader is None


def _layered_set(count: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Two intents with the same spread of sentence embeddings and the same words, told apart
    only by their layer means: "a" leans to +e1, "b" to -e1."""
    random = np.random.default_rng(seed)

    def unit(rows: np.ndarray) -> np.ndarray:
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    labels = ["a" if row % 2 == 0 else "b" for row in range(count)]
    sentences = unit(random.standard_normal((count, 8)))
    sign = np.array([1.0 if label == "a" else -1.0 for label in labels])
    layers = random.standard_normal((count, 8))
    layers[:, 0] = sign * (1.0 + 0.3 * random.standard_normal(count))
    texts = [" ".join(random.choice(WORDS, size=4)) for _ in range(count)]
    return texts, sentences, unit(layers), labels


def test_the_layer_block_reads_what_the_sentence_embedding_does_not():
    # given
    texts, sentences, layers, labels = _layered_set(400, seed=11)
    test_texts, test_sentences, test_layers, test_labels = _layered_set(300, seed=12)
    accuracy = {}
    for weight in (2.0, 0.0):
        params = classifier.ClassifierParams(kernel_landmarks=0, layer_weight=weight)
        model = _model(texts, sentences, labels, params, layers if weight else None)
        # when
        predicted = model.predict(test_texts, test_sentences, test_layers if weight else None)
        accuracy[weight] = float(
            np.mean(
                [
                    model.labels[i] == label
                    for i, label in zip(predicted.top_index, test_labels, strict=True)
                ]
            )
        )
    # then
    assert accuracy[2.0] > 0.95
    assert accuracy[0.0] < 0.7


def test_a_classifier_that_reads_layer_means_refuses_to_classify_without_them():
    # given
    texts, sentences, layers, labels = _layered_set(60, seed=13)
    params = classifier.ClassifierParams(kernel_landmarks=0, encoder_layer=3, layer_weight=2.0)
    model = _model(texts, sentences, labels, params, layers)
    # when / then: no silent classification on the sentence block alone
    with pytest.raises(ValueError, match="encoder layer 3 means"):
        model.predict(texts, sentences)
    with pytest.raises(ValueError, match="one row per text"):
        model.predict(texts, sentences, layers[:10])


def _sentence_and_layer_set(
    count: int, seed: int, *, layer_sign: float = 1.0
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Both blocks tell the intents apart: "a" leans to +e1 in the sentence embedding and
    to +e2 in the layer means, "b" the other way; `layer_sign` -1 turns the layer means
    around (a long passage can pull them where its sentence embedding does not go)."""
    random = np.random.default_rng(seed)

    def unit(rows: np.ndarray) -> np.ndarray:
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    labels = ["a" if row % 2 == 0 else "b" for row in range(count)]
    sign = np.array([1.0 if label == "a" else -1.0 for label in labels])
    sentences = 0.4 * random.standard_normal((count, 8))
    sentences[:, 0] += sign
    layers = 0.6 * random.standard_normal((count, 8))
    layers[:, 1] += 2.0 * layer_sign * sign
    texts = [" ".join(random.choice(WORDS, size=4)) for _ in range(count)]
    return texts, unit(sentences), unit(layers), labels


def test_a_layered_classifier_reads_passages_by_their_sentence_embeddings_alone():
    # given: a classifier with the layer block, and passages of intent "a" whose layer
    # means lean the other way
    texts, sentences, layers, labels = _sentence_and_layer_set(400, seed=21)
    params = classifier.ClassifierParams(kernel_landmarks=0, layer_weight=2.0)
    model = _model(texts, sentences, labels, params, layers)
    passages, passage_sentences, turned, passage_labels = _sentence_and_layer_set(
        100, seed=22, layer_sign=-1.0
    )
    a_rows = [row for row, label in enumerate(passage_labels) if label == "a"]
    # when
    read = model.passage_probabilities(passages, passage_sentences)
    classified = model.predict(passages, passage_sentences, turned).probabilities
    # then: the reader needs no layer means and goes by the sentence embeddings, where the
    # classifier itself is pulled off by the layer block
    assert model.reader is not None
    assert float(np.mean(read[a_rows, 0] > 0.5)) > 0.9
    assert float(np.mean(classified[a_rows, 0] > 0.5)) < 0.5
    # ...and it is the recipe without the block, fitted on the same examples
    sentence_only = classifier.fit_margins(
        texts,
        sentences,
        np.array([0 if label == "a" else 1 for label in labels]),
        classifier.reader_params(params),
    )
    np.testing.assert_allclose(model.reader.svm.coef, sentence_only.coef, rtol=1e-5, atol=1e-6)


def test_a_classifier_without_the_layer_block_reads_passages_as_it_reads_messages(xor_models):
    # given
    model = xor_models["kernel"]
    texts, embeddings, _ = _xor_set(50, seed=5)
    # when
    read = model.passage_probabilities(texts, embeddings)
    # then
    assert model.reader is None
    np.testing.assert_array_equal(read, model.predict(texts, embeddings).probabilities)


def test_the_passage_reader_is_calibrated_as_its_recipe_alone_would_be():
    # given
    texts, sentences, layers, labels = _sentence_and_layer_set(300, seed=24)
    params = classifier.ClassifierParams(kernel_landmarks=0, layer_weight=2.0)
    # when
    layered = classifier.train(
        texts=texts,
        embeddings=sentences,
        layer_embeddings=layers,
        labels=labels,
        intents=["a", "b"],
        params=params,
    )
    alone = classifier.train(
        texts=texts,
        embeddings=sentences,
        labels=labels,
        intents=["a", "b"],
        params=classifier.reader_params(params),
    )
    # then: the same folds, temperature and isotonic map as the reader's recipe trained alone
    reader = layered.model.reader
    assert reader is not None
    assert layered.metrics["passage_reader"]["accuracy"] == alone.metrics["accuracy"]
    assert reader.temperature == pytest.approx(alone.model.temperature, rel=1e-6)
    np.testing.assert_allclose(reader.isotonic_y, alone.model.isotonic_y)
    np.testing.assert_allclose(
        layered.model.passage_probabilities(texts, sentences),
        alone.model.predict(texts, sentences).probabilities,
        rtol=1e-5,
    )


def test_a_stored_layered_classifier_keeps_its_passage_reader():
    # given
    texts, sentences, layers, labels = _sentence_and_layer_set(200, seed=23)
    params = classifier.ClassifierParams(kernel_landmarks=0, layer_weight=2.0)
    model = _model(texts, sentences, labels, params, layers)
    # when
    stored = model.to_bytes()
    restored = classifier.IntentModel.from_bytes(stored)
    # then
    np.testing.assert_allclose(
        restored.passage_probabilities(texts, sentences),
        model.passage_probabilities(texts, sentences),
        rtol=1e-6,
    )
    # ...in types a format-3 release before passage readers knows, with the vocabularies
    # stored once (the reader's are the classifier's)
    assert b"PassageReader" not in zlib.decompress(stored)
    assert restored.reader is not None and restored.reader.svm.word is restored.svm.word


def test_a_layered_classifier_stored_before_passage_readers_reads_passages_itself():
    # given: a format-3 artifact without a reader
    texts, sentences, layers, labels = _sentence_and_layer_set(200, seed=25)
    params = classifier.ClassifierParams(layer_weight=2.0, **PLANES_ONLY)
    model = dataclasses.replace(_model(texts, sentences, labels, params, layers), reader=None)
    older = classifier.IntentModel.from_bytes(model.to_bytes())
    # when / then: with the classifier itself, so it needs the passages' layer means
    assert (older.format, older.reader) == (3, None)
    with pytest.raises(ValueError, match="encoder layer 4 means"):
        older.passage_probabilities(texts, sentences)
    np.testing.assert_array_equal(
        older.passage_probabilities(texts, sentences, layers),
        older.predict(texts, sentences, layers).probabilities,
    )


def test_a_classifier_stored_before_the_neighbour_block_classifies_as_it_did(monkeypatch):
    # given: a format-3 artifact (layer block, no neighbour block) as that release pickled
    # it: neither its params nor its SVM have the neighbour fields
    texts, sentences, layers, labels = _sentence_and_layer_set(200, seed=26)
    params = classifier.ClassifierParams(layer_weight=2.0, **PLANES_ONLY)
    model = _model(texts, sentences, labels, params, layers)
    assert model.format == 3
    assert model.reader is not None
    svm_fields = tuple(name for name in vars(model.svm) if name.startswith("neighbour_"))
    older = dataclasses.replace(
        model,
        params=_without(model.params, NEIGHBOUR_PARAMS),
        svm=_without(model.svm, svm_fields),
        reader=dataclasses.replace(model.reader, svm=_without(model.reader.svm, svm_fields)),
    )
    stored = older.to_bytes()
    assert b"neighbour" not in zlib.decompress(stored)
    # when
    restored = classifier.IntentModel.from_bytes(stored)
    # then: the block is off, whatever today's default, and the margins are the same
    assert restored.params.neighbour_weight == 0.0
    assert classifier.ClassifierParams().neighbour_weight > 0
    assert restored.params.method == params.method
    # ...and a release that knows formats 1-3 only refuses today's format
    monkeypatch.setattr(classifier, "ARTIFACT_FORMATS_READ", (1, 2, 3))
    assert classifier.IntentModel.from_bytes(stored).format == 3
    with pytest.raises(ValueError, match="unknown format"):
        classifier.IntentModel.from_bytes(
            _model(texts, sentences, labels, classifier.WITH_ENCODER_LAYER, layers).to_bytes()
        )
    np.testing.assert_allclose(
        restored.margins(texts, sentences, layers), model.margins(texts, sentences, layers)
    )


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
        params = classifier.ClassifierParams(class_weight=weights, kernel_landmarks=0, **NO_LAYER)
        model = _model(texts, embeddings, labels, params)
        predicted = model.predict(test_texts, test_embeddings).top_index
        recall[weights] = float(np.mean([model.labels[i] == "rare" for i in predicted]))
    # then
    assert recall["balanced"] > recall[""] + 0.15


def test_params_stored_as_json_come_back_as_they_were():
    # given: the recipe as a classifier version stores it (tuples become lists in JSON)
    stored = json.loads(json.dumps(classifier.WITH_ENCODER_LAYER.as_json()))
    stored["a_field_of_a_later_release"] = 1
    # when
    params = classifier.ClassifierParams.from_json(stored)
    # then
    assert params == classifier.WITH_ENCODER_LAYER
    assert params.method.startswith("minilm+layer4+")
    assert classifier.ClassifierParams.from_json({}) == classifier.ClassifierParams()


def test_a_recipe_stored_before_the_token_match_block_trains_without_it():
    # given: today's recipe as a version recorded it before the block
    stored = classifier.WITH_ENCODER_TOKENS.as_json()
    for name in ("token_weight", "token_candidates", "token_dims"):
        del stored[name]
    # when
    params = classifier.ClassifierParams.from_json(stored)
    # then
    assert params == classifier.WITH_ENCODER_LAYER
    assert "token-match" not in params.method


def test_a_recipe_stored_before_the_neighbour_block_trains_without_it():
    # given: the recipe a version recorded before the block (with the kernel block)
    stored = classifier.ClassifierParams(layer_weight=2.0, kernel_landmarks=2000).as_json()
    del stored["neighbour_weight"], stored["neighbour_sharpness"]
    # when
    params = classifier.ClassifierParams.from_json(stored)
    # then: the recipe it recorded, not today's
    assert (params.neighbour_weight, params.kernel_landmarks) == (0.0, 2000)
    assert "rbf-nystroem" in params.method and "class-neighbours" not in params.method


# --- the token-match block -------------------------------------------------------------------

TOKENS_ONLY = {"layer_weight": 0.0, "token_weight": 2.0, "token_dims": 0}


def _token_set(count: int, seed: int) -> tuple[list[str], np.ndarray, list[np.ndarray], list[str]]:
    """Two intents told apart by one token only: every text has 3-6 noise token states
    (16-d) and one "signal" token near +e0 (intent "a") or +e1 ("b"); the sentence
    embeddings and the words are noise shared by both."""
    random = np.random.default_rng(seed)
    axes = np.eye(16, dtype=np.float32)
    texts, sentences, tokens, labels = [], [], [], []
    for row in range(count):
        label = "ab"[row % 2]
        noise = random.standard_normal((int(random.integers(3, 7)), 16)).astype(np.float32)
        signal = 3 * axes[row % 2] + 0.3 * random.standard_normal(16).astype(np.float32)
        states = np.vstack([noise, signal[None]])
        tokens.append(states[random.permutation(len(states))])
        vector = random.standard_normal(8).astype(np.float32)
        sentences.append(vector / np.linalg.norm(vector))
        texts.append(" ".join(random.choice(WORDS, size=4)))
        labels.append(label)
    return texts, np.array(sentences), tokens, labels


def test_the_token_match_block_tells_apart_intents_only_one_token_separates():
    # given
    texts, sentences, tokens, labels = _token_set(200, seed=40)
    test_texts, test_sentences, test_tokens, test_labels = _token_set(200, seed=41)
    accuracy = {}
    for weight in (0.0, 2.0):
        params = classifier.ClassifierParams(**{**TOKENS_ONLY, "token_weight": weight})
        model = _model(texts, sentences, labels, params, tokens=tokens)
        predicted = model.predict(test_texts, test_sentences, None, test_tokens).top_index
        accuracy[weight] = np.mean(
            [model.labels[i] == label for i, label in zip(predicted, test_labels, strict=True)]
        )
    # then: without the block, chance; with it, nearly all
    assert accuracy[0.0] < 0.65
    assert accuracy[2.0] > 0.95


def _naive_token_match(mine: np.ndarray, theirs: np.ndarray) -> float:
    cosines = mine @ theirs.T
    return float((cosines.max(axis=1).mean() + cosines.max(axis=0).mean()) / 2)


def test_token_match_scores_are_each_intents_best_match_among_the_nearest_examples():
    # given: 30 examples of intents 0, 1 and 3 (none of 2), grouped by intent as stored
    random = np.random.default_rng(42)
    targets = np.sort(random.choice([0, 1, 3], size=30))
    counts = np.bincount(targets)
    tokens = [random.standard_normal((int(random.integers(1, 6)), 16)) for _ in range(30)]
    sentences = random.standard_normal((30, 8)).astype(np.float32)
    sentences /= np.linalg.norm(sentences, axis=1, keepdims=True)
    bank = classifier.TokenBank.fit(tokens, dims=0)
    vectors, offsets = bank.read(tokens)
    stored = [bank.vectors[offsets[i] : offsets[i + 1]].astype(np.float32) for i in range(30)]
    # when: each example against the others, through its 6 nearest by embedding
    scores = classifier._token_match_scores(
        (vectors, offsets), sentences, bank, sentences, counts, 6, np.arange(30)
    )
    # then
    similarity = sentences @ sentences.T
    np.fill_diagonal(similarity, -np.inf)
    for row in range(30):
        nearest = np.argsort(-similarity[row])[:6]
        matches = {
            i: _naive_token_match(vectors[offsets[row] : offsets[row + 1]], stored[i])
            for i in nearest
        }
        floor = min(matches.values()) - 0.05
        for intent in range(4):
            mine = [match for i, match in matches.items() if targets[i] == intent]
            assert scores[row, intent] == pytest.approx(max(mine, default=floor), abs=2e-3)
    # ...an example not left out matches itself: its own intent's score is 1
    alone = classifier._token_match_scores(
        (vectors, offsets), sentences, bank, sentences, counts, 6
    )
    assert alone[np.arange(30), targets] == pytest.approx(1.0, abs=2e-3)
    # ...and the texts need not come in the bank's order: `own_rows` says where each is
    shuffled = random.permutation(30)
    again = classifier._token_match_scores(
        bank.read([tokens[i] for i in shuffled]),
        sentences[shuffled],
        bank,
        sentences,
        counts,
        6,
        shuffled,
    )
    np.testing.assert_allclose(again, scores[shuffled], atol=1e-6)
    # a text without a single token state is refused, not matched as nothing
    with pytest.raises(ValueError, match="one token state"):
        bank.read([tokens[0], tokens[0][:0]])


def test_the_token_bank_keeps_the_main_axes_of_the_centred_tokens_unit_length():
    # given: token states with a large shared direction, varying most along e1, then e2
    random = np.random.default_rng(43)
    spread = np.array([0.1, 4.0, 1.5] + [0.05] * 13)
    tokens = [10 * np.eye(16)[0] + spread * random.standard_normal((8, 16)) for _ in range(50)]
    # when
    bank = classifier.TokenBank.fit(tokens, dims=2)
    # then: the shared direction is gone, two axes kept (e1 and e2, either sign), float16
    assert bank.vectors.shape == (400, 2) and bank.vectors.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(bank.vectors.astype(float), axis=1), 1, atol=2e-3)
    assert bank.projection is not None
    np.testing.assert_allclose(np.abs(bank.projection[1:3]), np.eye(2), atol=0.05)
    np.testing.assert_allclose(bank.centre[0], 10, atol=0.1)
    # ...and reads new texts the same way
    again, offsets = bank.read(tokens[:3])
    np.testing.assert_allclose(again, bank.vectors[:24].astype(float), atol=2e-3)
    assert offsets.tolist() == [0, 8, 16, 24]


def test_a_token_matching_classifier_is_stored_whole_and_refuses_to_classify_without_tokens(
    monkeypatch,
):
    # given
    texts, sentences, tokens, labels = _token_set(80, seed=44)
    params = classifier.ClassifierParams(**TOKENS_ONLY)
    model = _model(texts, sentences, labels, params, tokens=tokens)
    # when
    stored = model.to_bytes()
    restored = classifier.IntentModel.from_bytes(stored)
    # then: the same margins after storing (the bank, not its float32 copy: the model has
    # classified its training texts); none without the token states
    assert restored.format == 5
    assert b"_widened_" not in zlib.decompress(stored)
    np.testing.assert_allclose(
        restored.margins(texts, sentences, None, tokens),
        model.margins(texts, sentences, None, tokens),
    )
    with pytest.raises(ValueError, match="pass tokens"):
        restored.predict(texts, sentences)
    # ...and a release that knows formats 1-4 only refuses it
    monkeypatch.setattr(classifier, "ARTIFACT_FORMATS_READ", (1, 2, 3, 4))
    with pytest.raises(ValueError, match="unknown format"):
        classifier.IntentModel.from_bytes(model.to_bytes())


def test_the_token_match_block_needs_the_neighbour_block_and_the_tokens():
    texts, sentences, tokens, labels = _token_set(40, seed=45)
    targets = np.array([0 if label == "a" else 1 for label in labels])
    without_neighbours = classifier.ClassifierParams(**TOKENS_ONLY, neighbour_weight=0.0)
    with pytest.raises(ValueError, match="needs the class-neighbour block"):
        classifier.fit_margins(texts, sentences, targets, without_neighbours, None, tokens)
    with pytest.raises(ValueError, match="pass tokens"):
        classifier.fit_margins(
            texts, sentences, targets, classifier.ClassifierParams(**TOKENS_ONLY)
        )
