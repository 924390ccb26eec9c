"""Errors of the model gateway. The copilot maps each one to a handoff reason.

- `ModelUnavailable`: every deployment of the alias and of its fallbacks failed (error,
  timeout, open circuit, or malformed output) -> handoff reason "model unavailable".
- `MalformedOutput`: the model answered but not with the structured output contract. The
  gateway treats it as a failure of that alias and moves on to the next one; it reaches the
  caller only as the cause of a `ModelUnavailable`, or from `structured.reply_parse`.
- `BudgetExhausted`: a daily, monthly or per-ticket budget is spent -> handoff reason "budget".

None of them wraps a raw provider exception into the caller's hands: the provider's error type
and message are kept on the LLMCall row and in `.detail`.
"""

from __future__ import annotations

from apps.core.exceptions import DeskpilotError


class LLMError(DeskpilotError):
    status_code = 503
    code = "llm_error"

    def __init__(self, message: str, *, llm_call_id: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.llm_call_id = llm_call_id
        self.detail = detail


class ModelUnavailable(LLMError):
    code = "model_unavailable"


class MalformedOutput(LLMError):
    code = "malformed_output"


class BudgetExhausted(LLMError):
    status_code = 429
    code = "budget_exhausted"

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        spent_usd: float,
        limit_usd: float,
        llm_call_id: int | None = None,
    ) -> None:
        super().__init__(message, llm_call_id=llm_call_id)
        self.scope = scope  # "daily", "monthly" or "ticket"
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd


class ModelCallRefused(RuntimeError):
    """A model call was asked for where it must never run: inside a web request (it belongs
    on a Celery worker) or inside a database transaction (it would hold locks and a
    connection for as long as the model takes). A bug in the caller, never a handoff."""
