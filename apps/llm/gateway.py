"""The model gateway: the only module that imports litellm.

litellm takes seconds to import and must never fetch its price table from the
network, so it is imported lazily, once, with LITELLM_LOCAL_MODEL_COST_MAP set.
The calls themselves go through `apps.llm.services.completion_create`.
"""

from __future__ import annotations

import logging
import os
import threading
from types import ModuleType

_litellm: ModuleType | None = None
_lock = threading.Lock()


def litellm() -> ModuleType:
    """The litellm module, imported on first use with its offline price table."""
    global _litellm
    if _litellm is None:
        with _lock:
            if _litellm is None:
                os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
                import litellm as module

                module.telemetry = False
                module.suppress_debug_info = True
                # Otherwise litellm hands every streamed chunk to a thread that starts an event
                # loop to run its success callbacks: ~0.7 ms of CPU per chunk, half the cost
                # of streaming a reply (benchmarks/llm_overhead.py). Deskpilot registers no
                # litellm callbacks (LLMCall rows are the log), and the Router's cooldowns
                # count failures (allowed_fails), which are still reported.
                module.disable_streaming_logging = True
                # litellm logs every call at INFO; our LLMCall rows are the call log.
                for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                    logging.getLogger(name).setLevel(logging.WARNING)
                _litellm = module
    return _litellm


def modules_preload() -> None:
    """Import litellm (configured) and the embedding stack (torch, sentence-transformers):
    seconds of imports, nothing else. For a process that forks workers afterwards (Celery's
    prefork pool): the children inherit the imported modules. No model is loaded and no
    computation runs here, so no thread pool exists yet that a forked child would lack."""
    litellm()
    import onnxruntime  # noqa: F401
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401
