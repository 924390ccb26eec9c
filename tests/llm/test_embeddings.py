"""The sentence encoder itself (the real all-MiniLM-L6-v2, no database)."""

import io

import numpy as np
import pytest

from apps.llm import embeddings
from apps.llm.embeddings import embed, embed_with_layer, read_encoder, token_count

TEXTS = [
    "my card has not arrived yet",
    "hi",
    "How do I top up with a cheque? " * 80,  # past the 256 word-piece window
    "😀",
    "",
    "Where is the money I sent to my friend last Tuesday?",
]


def test_embed_with_layer_gives_embeds_sentence_vectors_and_unit_layer_means():
    # when
    sentences, layers = embed_with_layer(TEXTS, 4, batch_size=4)
    # then: in order, as `embed` gives them (across batches and the length sort)
    np.testing.assert_allclose(sentences, np.array(embed(TEXTS)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(layers, axis=1), 1.0, atol=1e-5)
    # a middle layer is not the sentence embedding, and each text has its own
    assert np.abs(layers - sentences).max() > 0.1
    assert np.abs(layers[0] - layers[5]).max() > 0.01


def test_the_last_layers_mean_is_the_sentence_embedding():
    # when
    sentences, last = embed_with_layer(TEXTS[:2], 6)
    # then: all-MiniLM-L6-v2 mean-pools its sixth layer, so the pooling masks padding alike
    np.testing.assert_allclose(last, sentences, atol=1e-5)


def test_one_text_through_embed_with_layer_is_remembered_for_embed(monkeypatch):
    # given: triage read the message
    text = "a message the copilot will search with right after triage"
    sentences, _ = embed_with_layer([text], 4)

    def no_encoder():  # type: ignore[no-untyped-def]
        raise AssertionError("encoded again")

    monkeypatch.setattr("apps.llm.embeddings.get_model", no_encoder)
    # when / then: retrieval gets the same vector without the encoder
    assert embed([text])[0] == sentences[0].tolist()


def test_a_layer_the_encoder_does_not_have_is_refused_and_nothing_is_empty():
    with pytest.raises(ValueError, match=r"0\.\.6"):
        embed_with_layer(["hello"], 7)
    with pytest.raises(ValueError, match=r"0\.\.6"):
        embed_with_layer([], -1)
    sentences, layers = embed_with_layer([], 4)
    assert sentences.shape == (0, 384)
    assert layers.shape == (0, 384)


def test_embed_uncached_runs_the_encoder_and_keeps_nothing(monkeypatch):
    # given: a text another call has just embedded
    text = "a text embedded twice, the second time for a timing"
    remembered = embed([text])[0]
    calls = []
    real = embeddings._forward

    def counted(model, texts):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(model, texts)

    monkeypatch.setattr("apps.llm.embeddings._forward", counted)
    # when
    fresh = embed([text], cached=False)[0]
    other = "a text nobody embedded before, uncached"
    embed([other], cached=False)
    # then: the encoder ran each time, gave the same vector, and remembered neither
    assert len(calls) == 2
    np.testing.assert_allclose(fresh, remembered, atol=1e-6)
    embed([other])
    assert len(calls) == 3


def test_read_encoder_gives_each_texts_word_piece_states_whatever_its_batch():
    # when: the texts in batches of 4, sorted by length, and one at a time
    reading = read_encoder(TEXTS, 4, batch_size=4, tokens=True)
    alone = [read_encoder([text], 4, tokens=True).tokens[0] for text in TEXTS[:2]]
    # then: one state per word piece, without [CLS] and [SEP] (the window keeps 254)...
    counts = [len(states) for states in reading.tokens]
    assert counts[:2] == [token_count(TEXTS[0]), token_count(TEXTS[1])]
    assert counts[2] == embeddings.max_tokens() - 2
    # ...but for a text with none: its [CLS] and [SEP] stand for it; the last layer's
    # states, whose mean is the sentence embedding
    assert counts[4] == 2
    pooled = reading.tokens[4].mean(axis=0)
    np.testing.assert_allclose(pooled / np.linalg.norm(pooled), reading.sentences[4], atol=1e-5)
    assert all(states.shape[1] == 384 and states.dtype == np.float32 for states in reading.tokens)
    # padding in a batch changes nothing
    for mine, own in zip(reading.tokens[:2], alone, strict=True):
        np.testing.assert_allclose(mine, own, atol=1e-4)
    # the other readings are embed_with_layer's; no tokens unless asked for
    sentences, layers = embed_with_layer(TEXTS, 4, batch_size=4)
    np.testing.assert_allclose(reading.sentences, sentences, atol=1e-6)
    np.testing.assert_allclose(reading.layer_means, layers, atol=1e-6)
    assert read_encoder(TEXTS[:2], 4).tokens == []


def test_onnx_runtime_gives_torchs_vectors_layer_means_and_token_states(settings):
    # given: the default runtime, ONNX
    assert embeddings.onnx_session() is not None
    onnx = read_encoder(TEXTS, 3, batch_size=4, tokens=True, remember=False)
    onnx_embedded = np.array(embed(TEXTS, cached=False))
    # when: torch runs the same texts
    settings.EMBEDDING_RUNTIME = "torch"
    assert embeddings.onnx_session() is None
    reference = read_encoder(TEXTS, 3, batch_size=4, tokens=True, remember=False)
    torch_embedded = np.array(embed(TEXTS, cached=False))  # sentence-transformers' encode
    # then: the stored vectors and trained classifiers stay valid under either
    np.testing.assert_allclose(onnx.sentences, reference.sentences, atol=1e-5)
    np.testing.assert_allclose(onnx_embedded, torch_embedded, atol=1e-5)
    np.testing.assert_allclose(onnx.layer_means, reference.layer_means, atol=1e-5)
    for mine, theirs in zip(onnx.tokens, reference.tokens, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-4)


def test_the_export_is_made_once_then_loaded(settings, tmp_path, monkeypatch):
    from apps.llm import encoder_onnx

    # given: a folder with no export yet
    settings.EMBEDDING_ONNX_DIR = tmp_path / "models"
    monkeypatch.setattr(embeddings, "_session", None)
    # when: a process needs the encoder
    embed(["the first message of a new process"], cached=False)
    # then: it exported the model, atomically (no partial file left)
    exported = sorted(path.name for path in (tmp_path / "models").iterdir())
    assert len(exported) == 1 and exported[0].endswith(".onnx")
    made = (tmp_path / "models" / exported[0]).stat().st_mtime_ns

    # when: the next process starts
    def no_export(model, path):  # type: ignore[no-untyped-def]
        raise AssertionError("exported again")

    monkeypatch.setattr(embeddings, "_session", None)
    monkeypatch.setattr(encoder_onnx, "export", no_export)
    assert embeddings.onnx_session() is not None
    # then: it loaded the same file
    assert (tmp_path / "models" / exported[0]).stat().st_mtime_ns == made


def test_a_failed_export_falls_back_to_torch_and_says_so(settings, tmp_path, monkeypatch, caplog):
    from apps.llm import encoder_onnx

    # given: a tracer that fails in this environment
    settings.EMBEDDING_ONNX_DIR = tmp_path / "models"
    monkeypatch.setattr(embeddings, "_session", None)

    def broken(model, path):  # type: ignore[no-untyped-def]
        raise RuntimeError("the tracer failed")

    monkeypatch.setattr(encoder_onnx, "export", broken)
    # when
    vectors = np.array(embed(TEXTS[:2], cached=False))
    # then: the copilot still embeds, through torch, and the log says why
    assert embeddings.onnx_session() is None
    assert "using torch" in caplog.text
    settings.EMBEDDING_RUNTIME = "torch"
    np.testing.assert_allclose(vectors, np.array(embed(TEXTS[:2], cached=False)), atol=1e-6)


def test_encoder_export_makes_the_export_an_image_ships_and_processes_load(settings, tmp_path):
    from django.core.management import call_command

    from apps.llm import encoder_onnx

    # given: an image build with an empty models folder
    settings.EMBEDDING_ONNX_DIR = tmp_path / "models"
    # when
    call_command("encoder_export", stdout=(out := io.StringIO()))
    call_command("encoder_export", stdout=io.StringIO())  # again: nothing to do
    # then: one export, where every process of the image looks for it
    exported = list((tmp_path / "models").glob("*.onnx"))
    assert len(exported) == 1 and str(exported[0]) in out.getvalue()
    assert encoder_onnx.export_ensure(embeddings.get_model()) == exported[0]
