"""Model deployments per alias, read from the environment (imported by config/settings.py).

Pure Python, no Django: settings call it while they load, so a bad value stops the process
with a `ConfigurationError` naming the variable, before anything runs.

Two ways to configure, both optional (an alias nobody configures is `local/extractive`):

- `LLM_DEPLOYMENTS`: JSON, alias -> ordered list of deployments (the first is tried first):
      {"draft-fast": [{"model": "openai/gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
                      {"model": "azure/gpt-4o-mini", "api_base": "https://x.openai.azure.com",
                       "api_key_env": "AZURE_API_KEY"}],
       "draft-strong": [{"model": "anthropic/claude-sonnet-4-5"}]}
  Keys of a deployment: model (required), api_base, api_key_env (the NAME of the variable
  holding the key: keys never sit in this JSON), timeout (seconds, overrides
  LLM_REQUEST_TIMEOUT), input_cost_per_token / output_cost_per_token (USD, for a model
  litellm's price table does not know), max_concurrency / tokens_per_minute (the provider's
  limits for this deployment, over every process: calls over them wait, apps/llm/limits.py).
- Per alias: `LLM_DRAFT_FAST_MODEL=openai/gpt-4o-mini` (comma-separated for several
  deployments, in order), `LLM_DRAFT_FAST_API_BASE`, `LLM_DRAFT_FAST_API_KEY_ENV`; same for
  DRAFT_STRONG and JUDGE. Naming an alias in both places is refused as ambiguous.

`LLM_FALLBACKS`: JSON, alias -> aliases tried in order when it fails, e.g.
`{"draft-fast": ["draft-strong"], "draft-strong": ["draft-fast"]}` (the default).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.env import ConfigurationError

LOCAL_EXTRACTIVE = "local/extractive"
ALIASES = ("draft-fast", "draft-strong", "judge")
DEFAULT_FALLBACKS: dict[str, list[str]] = {
    "draft-fast": ["draft-strong"],
    "draft-strong": ["draft-fast"],
    "judge": [],
}
_ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,48}$")
_ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEPLOYMENT_KEYS = {
    "model",
    "api_base",
    "api_key_env",
    "timeout",
    "input_cost_per_token",
    "output_cost_per_token",
    "max_concurrency",
    "tokens_per_minute",
}


@dataclass(frozen=True)
class Deployment:
    """One concrete model behind an alias."""

    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    max_concurrency: int | None = None
    tokens_per_minute: int | None = None

    @property
    def is_local(self) -> bool:
        return self.model == LOCAL_EXTRACTIVE


def _number(where: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{where}.{key} must be a number, got {value!r}")
    if value < 0 or (key == "timeout" and value == 0):
        raise ConfigurationError(f"{where}.{key} must be positive, got {value!r}")
    return float(value)


def _count(where: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{where}.{key} must be a whole number of at least 1, got {value!r}"
        )
    return value


def deployment_from_dict(where: str, raw: Any, environ: Mapping[str, str]) -> Deployment:
    """A validated Deployment from one JSON object; `where` names it in error messages."""
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where} must be an object with a 'model' key, got {raw!r}")
    unknown = set(raw) - _DEPLOYMENT_KEYS
    if unknown:
        raise ConfigurationError(
            f"{where} has unknown keys {sorted(unknown)}; allowed: {sorted(_DEPLOYMENT_KEYS)}"
        )
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"{where}.model must be a non-empty string like 'openai/gpt-4o'")
    api_base = raw.get("api_base")
    if api_base is not None and (
        not isinstance(api_base, str) or not api_base.startswith(("http://", "https://"))
    ):
        raise ConfigurationError(f"{where}.api_base must be an http(s) URL, got {api_base!r}")
    api_key_env = raw.get("api_key_env")
    if api_key_env is not None:
        if not isinstance(api_key_env, str) or not _ENV_NAME_PATTERN.match(api_key_env):
            raise ConfigurationError(
                f"{where}.api_key_env must be the name of an environment variable, "
                f"got {api_key_env!r}"
            )
        if not environ.get(api_key_env):
            raise ConfigurationError(
                f"{where}.api_key_env names {api_key_env}, which is not set or empty"
            )
    return Deployment(
        model=model.strip(),
        api_base=api_base,
        api_key_env=api_key_env,
        timeout=_number(where, "timeout", raw.get("timeout")),
        input_cost_per_token=_number(
            where, "input_cost_per_token", raw.get("input_cost_per_token")
        ),
        output_cost_per_token=_number(
            where, "output_cost_per_token", raw.get("output_cost_per_token")
        ),
        max_concurrency=_count(where, "max_concurrency", raw.get("max_concurrency")),
        tokens_per_minute=_count(where, "tokens_per_minute", raw.get("tokens_per_minute")),
    )


def _json(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"{name} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None


def _check_alias(name: str, alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS_PATTERN.match(alias):
        raise ConfigurationError(
            f"{name}: alias {alias!r} must be lowercase letters, digits and dashes"
        )
    return alias


def _env_prefix(alias: str) -> str:
    return "LLM_" + alias.upper().replace("-", "_")


def deployments_from_env(environ: Mapping[str, str]) -> dict[str, tuple[Deployment, ...]]:
    """Alias -> ordered deployments; the three standard aliases are always present."""
    result: dict[str, tuple[Deployment, ...]] = {}
    raw_json = (environ.get("LLM_DEPLOYMENTS") or "").strip()
    if raw_json:
        parsed = _json("LLM_DEPLOYMENTS", raw_json)
        if not isinstance(parsed, dict):
            raise ConfigurationError("LLM_DEPLOYMENTS must be a JSON object: alias -> list")
        for alias, items in parsed.items():
            _check_alias("LLM_DEPLOYMENTS", alias)
            if not isinstance(items, list) or not items:
                raise ConfigurationError(
                    f"LLM_DEPLOYMENTS[{alias!r}] must be a non-empty list of deployments"
                )
            result[alias] = tuple(
                deployment_from_dict(f"LLM_DEPLOYMENTS[{alias!r}][{index}]", item, environ)
                for index, item in enumerate(items)
            )
    for alias in ALIASES:
        prefix = _env_prefix(alias)
        models = [m.strip() for m in (environ.get(f"{prefix}_MODEL") or "").split(",") if m.strip()]
        if not models:
            continue
        if alias in result:
            raise ConfigurationError(
                f"{prefix}_MODEL and LLM_DEPLOYMENTS both configure {alias!r}; keep one"
            )
        shared: dict[str, Any] = {}
        if environ.get(f"{prefix}_API_BASE"):
            shared["api_base"] = environ[f"{prefix}_API_BASE"].strip()
        if environ.get(f"{prefix}_API_KEY_ENV"):
            shared["api_key_env"] = environ[f"{prefix}_API_KEY_ENV"].strip()
        result[alias] = tuple(
            deployment_from_dict(f"{prefix}_MODEL[{index}]", {"model": model, **shared}, environ)
            for index, model in enumerate(models)
        )
    for alias in ALIASES:
        result.setdefault(alias, (Deployment(model=LOCAL_EXTRACTIVE),))
    return result


# litellm's longest back-off between two tries of an alias (router.py: MAX_RETRY_DELAY 8 s
# plus up to 0.75 s of jitter).
RETRY_BACKOFF_SECONDS = 8.75


def call_worst_case_seconds(
    deployments: Mapping[str, Sequence[Deployment]],
    fallbacks: Mapping[str, Sequence[str]],
    *,
    default_timeout: float,
    num_retries: int,
) -> float:
    """The longest one gateway call can take, over the longest alias chain (an alias and its
    fallbacks): each alias tried `num_retries` + 1 times at its slowest deployment's timeout,
    litellm's back-off between tries, and one more timeout to read a stream."""

    def alias_seconds(alias: str) -> float:
        timeout = max((item.timeout or default_timeout) for item in deployments[alias])
        return (num_retries + 2) * timeout + num_retries * RETRY_BACKOFF_SECONDS

    return max(
        sum(alias_seconds(name) for name in [alias, *fallbacks.get(alias, ())])
        for alias in deployments
    )


def fallbacks_from_env(
    environ: Mapping[str, str], *, aliases: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    """Alias -> aliases to try next, in order; every name must be a configured alias."""
    raw_json = (environ.get("LLM_FALLBACKS") or "").strip()
    parsed: Any = _json("LLM_FALLBACKS", raw_json) if raw_json else DEFAULT_FALLBACKS
    if not isinstance(parsed, dict):
        raise ConfigurationError("LLM_FALLBACKS must be a JSON object: alias -> list of aliases")
    result: dict[str, tuple[str, ...]] = {}
    for alias, targets in parsed.items():
        _check_alias("LLM_FALLBACKS", alias)
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ConfigurationError(f"LLM_FALLBACKS[{alias!r}] must be a list of alias names")
        for name in [alias, *targets]:
            if name not in aliases:
                raise ConfigurationError(
                    f"LLM_FALLBACKS names {name!r}, which is not a configured alias "
                    f"({', '.join(sorted(aliases))})"
                )
        result[alias] = tuple(t for t in dict.fromkeys(targets) if t != alias)
    return result


def choice_from_env(environ: Mapping[str, str], name: str, default: str, allowed: set[str]) -> str:
    value = (environ.get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigurationError(f"{name}={value!r} must be one of {', '.join(sorted(allowed))}")
    return value
