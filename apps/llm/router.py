"""The litellm Router, built once per process from settings (rebuilt only if they change).

model_list: one entry per deployment, `model_name` = its alias, `order` = its position in
the alias's list (litellm tries order 1, then order 2... before the alias's fallbacks), a
stable id "<alias>/<index>". Every deployment has an explicit timeout (its own or
LLM_REQUEST_TIMEOUT). Router-level: num_retries (per alias), fallbacks (LLM_FALLBACKS),
allowed_fails and cooldown_time (a failing deployment is benched inside this process).

Worst-case wall time of one call, which the tests hold the gateway to:
    sum over the aliases tried of (LLM_NUM_RETRIES + 1) x timeout, plus retry back-off
(litellm sleeps up to MAX_RETRY_DELAY=8 s + 0.75 s jitter between retries of a single-
deployment alias, 0 when another deployment of the alias is healthy).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings

from apps.llm.deployments import Deployment
from apps.llm.gateway import litellm
from apps.llm.provider import provider_register

_router: Any = None
_router_config: tuple | None = None
_lock = threading.Lock()


def deployment_id(alias: str, index: int) -> str:
    return f"{alias}/{index}"


def _config() -> tuple:
    return (
        tuple((alias, tuple(items)) for alias, items in settings.LLM_DEPLOYMENTS.items()),
        tuple(settings.LLM_FALLBACKS.items()),
        settings.LLM_REQUEST_TIMEOUT,
        settings.LLM_NUM_RETRIES,
        settings.LLM_ALLOWED_FAILS,
        settings.LLM_COOLDOWN_SECONDS,
    )


def _litellm_params(deployment: Deployment, index: int) -> dict[str, Any]:
    timeout = deployment.timeout or settings.LLM_REQUEST_TIMEOUT
    params: dict[str, Any] = {
        "model": deployment.model,
        "order": index + 1,
        "timeout": timeout,
        "stream_timeout": timeout,
    }
    if deployment.api_base:
        params["api_base"] = deployment.api_base
    if deployment.api_key_env:
        params["api_key"] = os.environ.get(deployment.api_key_env, "")
    if deployment.input_cost_per_token is not None:
        params["input_cost_per_token"] = deployment.input_cost_per_token
    if deployment.output_cost_per_token is not None:
        params["output_cost_per_token"] = deployment.output_cost_per_token
    return params


def model_list() -> list[dict[str, Any]]:
    return [
        {
            "model_name": alias,
            "litellm_params": _litellm_params(deployment, index),
            "model_info": {"id": deployment_id(alias, index)},
        }
        for alias, deployments in settings.LLM_DEPLOYMENTS.items()
        for index, deployment in enumerate(deployments)
    ]


def deployment_for(model_id: str | None) -> Deployment | None:
    """The configured Deployment behind a Router model id "<alias>/<index>"."""
    if not model_id or "/" not in model_id:
        return None
    alias, _, index = model_id.rpartition("/")
    deployments = settings.LLM_DEPLOYMENTS.get(alias, ())
    return deployments[int(index)] if index.isdigit() and int(index) < len(deployments) else None


def _build() -> Any:
    module = litellm()
    provider_register()
    # Ask every provider for JSON; litellm drops the parameter where a provider lacks it.
    # (litellm is imported lazily, so typed as a ModuleType: attributes read, not set.)
    module.drop_params = True  # type: ignore[attr-defined]
    return module.Router(
        model_list=model_list(),
        num_retries=settings.LLM_NUM_RETRIES,
        timeout=settings.LLM_REQUEST_TIMEOUT,
        stream_timeout=settings.LLM_REQUEST_TIMEOUT,
        fallbacks=[
            {alias: list(targets)} for alias, targets in settings.LLM_FALLBACKS.items() if targets
        ],
        allowed_fails=settings.LLM_ALLOWED_FAILS,
        cooldown_time=settings.LLM_COOLDOWN_SECONDS,
        retry_after=0,
    )


def router() -> Any:
    """The process's Router; rebuilt when the LLM settings differ from the ones it was built on."""
    global _router, _router_config
    config = _config()
    if _router is None or _router_config != config:
        with _lock:
            if _router is None or _router_config != config:
                _router = _build()
                _router_config = config
    return _router


def router_warm() -> None:
    """Import litellm and pay its lazy first-call costs now (~1-2 s), not on a customer's message.

    Runs one streamed local/extractive completion in memory: no network, no database row.
    Meant for worker start-up (e.g. Celery's worker_process_init).
    """
    from apps.llm.prompt_format import Passage, sections_render

    provider_register()
    content = sections_render(passages=[Passage("P1", "Warm-up text.")], customer_message="warm up")
    module = litellm()
    for chunk in module.completion(
        model="local/extractive",
        messages=[{"role": "user", "content": content}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        del chunk
    router()


def router_reset() -> None:
    """Forget the Router (and with it the in-process deployment cooldowns)."""
    global _router, _router_config
    with _lock:
        _router = None
        _router_config = None
