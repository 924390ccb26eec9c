"""The embedding model under ONNX Runtime: the same weights, exported once from torch.

Torch runs the forward pass of one short message (all-MiniLM-L6-v2) in ~2.5x the time ONNX
Runtime takes for the same graph on one CPU thread; the exported float32 graph gives the same
vectors within float rounding, so the stored knowledge-base vectors, the trained classifiers
and the calibration stay valid (an int8 export would be faster still, but moves vectors by
several percent of cosine: every stored artifact would have to be made again).

The export runs on first use, in the process that needs it (about two seconds), and is kept
in `EMBEDDING_ONNX_DIR` under a name keyed by the model's files and the exporting libraries'
versions; later processes load it. Nothing is downloaded. If the export or the runtime fails,
the caller falls back to torch and says so in the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.llm.embeddings import transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

# Changes when the exported graph's inputs or outputs change.
EXPORT_FORMAT = 1
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_path(model: SentenceTransformer, folder: Path) -> Path:
    """Where the export of `model` lives: keyed by the model's files (names and sizes) and
    the versions of the libraries that trace it."""
    import torch
    import transformers

    source = Path(transformer(model).config.name_or_path)
    digest = hashlib.sha256(
        f"{EXPORT_FORMAT} {torch.__version__} {transformers.__version__}".encode()
    )
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                digest.update(f"{path.relative_to(source)} {path.stat().st_size}".encode())
    else:
        digest.update(str(source).encode())
    return folder / f"encoder-{settings.EMBEDDING_MODEL}-{digest.hexdigest()[:16]}.onnx"


def export(model: SentenceTransformer, path: Path) -> None:
    """Trace the encoder (every layer's token states as outputs) into `path`, atomically:
    processes exporting at once each write their own file and the last rename wins."""
    import torch

    encoder = transformer(model)
    layers = int(encoder.config.num_hidden_layers) + 1
    outputs = [f"hidden_{layer}" for layer in range(layers)]

    class AllLayers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            result = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
            )
            return tuple(result.hidden_states)

    sample = model.preprocess(["an example message to trace the encoder with"])
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".onnx")
    os.close(handle)
    try:
        with warnings.catch_warnings():
            # The tracer's notes about Python branches it froze: shapes stay dynamic here.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                AllLayers().eval(),
                tuple(sample[name] for name in INPUTS),
                partial,
                input_names=list(INPUTS),
                output_names=outputs,
                dynamic_axes={name: {0: "texts", 1: "tokens"} for name in (*INPUTS, *outputs)},
                opset_version=17,
                dynamo=False,
            )
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def session_load(model: SentenceTransformer) -> Any:
    """An onnxruntime.InferenceSession of `model`'s encoder, exported first if need be."""
    import onnxruntime

    path = export_ensure(model)
    options = onnxruntime.SessionOptions()
    threads = settings.EMBEDDING_TORCH_THREADS
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_ensure(model: SentenceTransformer) -> Path:
    """The export of `model` in `EMBEDDING_ONNX_DIR`, made now if it is not there (an image
    makes it at build time with `manage.py encoder_export`). A folder this process cannot
    write to (a read-only image without the export): its own temp folder instead."""
    folder = Path(settings.EMBEDDING_ONNX_DIR)
    path = export_path(model, folder)
    if path.exists():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        path = export_path(model, Path(tempfile.gettempdir()) / f"deskpilot-encoder-{os.getuid()}")
        if path.exists():
            return path
    logger.info("exporting the embedding model to ONNX", extra={"path": str(path)})
    export(model, path)
    return path
