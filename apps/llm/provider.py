"""`local/extractive` as a litellm custom provider, so it goes through the Router like any model.

`provider_register()` (called by the router module, once per process) adds the handler to
`litellm.custom_provider_map`. The handler answers completion, acompletion, streaming and
astreaming; its output is the structured JSON contract, its usage counts tokens with litellm's
bundled tokenizer, and its message carries `provider_specific_fields={"extractive": True, ...}`
so nobody mistakes it for a generative model.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.conf import settings

from apps.llm.extractive import Draft, draft_compose
from apps.llm.gateway import litellm
from apps.llm.prompt_format import ParsedPrompt, message_texts, sections_parse

PROVIDER = "local"
MODEL = "local/extractive"
_registered = False
_lock = threading.Lock()


def prompt_draft(messages: list[dict]) -> Draft:
    """Parse the prompt's sections and compose the draft (the provider's whole job)."""
    texts = message_texts(messages)
    parsed = sections_parse(texts)
    if not parsed.customer_message:
        # Not our prompt format: the last user message is the question, with no passages.
        users = [m for m in messages if m.get("role") == "user"]
        last = message_texts(users[-1:]) if users else []
        parsed = ParsedPrompt(passages=parsed.passages, customer_message="\n".join(last))
    return draft_compose(parsed, scorer=settings.LLM_EXTRACTIVE_SCORER)


def _usage(messages: list[dict], text: str) -> dict[str, int]:
    module = litellm()
    prompt_tokens = module.token_counter(model="gpt-4o-mini", messages=messages)
    completion_tokens = module.token_counter(
        model="gpt-4o-mini", text=text, count_response_tokens=True
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _metadata(draft: Draft) -> dict[str, Any]:
    return {
        "extractive": True,
        "scorer": settings.LLM_EXTRACTIVE_SCORER,
        "best_score": draft.best_score,
    }


def _pieces(text: str) -> list[str]:
    # Word-sized chunks, like a model's tokens; joined they give back the text exactly.
    return re.findall(r"\S+\s*|\s+", text)


def _handler_class() -> type:
    module = litellm()
    from litellm.llms.custom_llm import CustomLLM

    class ExtractiveLLM(CustomLLM):
        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            draft = prompt_draft(messages)
            text = draft.as_json()
            response = module.ModelResponse(
                model=MODEL,
                choices=[
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {
                            "role": "assistant",
                            "content": text,
                            "provider_specific_fields": _metadata(draft),
                        },
                    }
                ],
                usage=module.Usage(**_usage(messages, text)),
            )
            return response

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            return self.completion(model, messages, *args, **kwargs)

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator:
            draft = prompt_draft(messages)
            text = draft.as_json()
            for piece in _pieces(text):
                yield {
                    "text": piece,
                    "is_finished": False,
                    "finish_reason": "",
                    "usage": None,
                    "index": 0,
                    "tool_use": None,
                }
            yield {
                "text": "",
                "is_finished": True,
                "finish_reason": "stop",
                "usage": _usage(messages, text),
                "index": 0,
                "tool_use": None,
                "provider_specific_fields": _metadata(draft),
            }

        # litellm annotates astreaming as a coroutine, yet hands what it returns, un-awaited,
        # to CustomStreamWrapper to iterate: an async generator is what works.
        async def astreaming(  # type: ignore[override]
            self, model: str, messages: list, *args: Any, **kwargs: Any
        ) -> AsyncIterator:
            for chunk in self.streaming(model, messages, *args, **kwargs):
                yield chunk

    return ExtractiveLLM


def provider_register() -> None:
    """Register `local/extractive` with litellm (idempotent, thread-safe)."""
    global _registered
    if _registered:
        return
    with _lock:
        if _registered:
            return
        module = litellm()
        handler = _handler_class()()
        # litellm is imported lazily, so typed as a ModuleType: attributes read, not set.
        module.custom_provider_map = [  # type: ignore[attr-defined]
            *(item for item in module.custom_provider_map if item["provider"] != PROVIDER),
            {"provider": PROVIDER, "custom_handler": handler},
        ]
        # litellm reads the map when a call is set up; this makes the provider known at once.
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
        _registered = True
