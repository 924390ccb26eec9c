"""The model gateway: the only app that imports litellm and sentence-transformers.

Public API (what apps above `llm` may use):

- `services.completion_create(*, purpose, alias, messages, ticket_id=None, message_id=None,
  prompt_version=None, stream_callback=None, structured=True, max_tokens=None,
  temperature=None) -> CompletionResult` - one model call through the litellm Router, logged
  as one `models.LLMCall`. Raises `exceptions.BudgetExhausted` (handoff reason "budget"),
  `exceptions.ModelUnavailable` (handoff reason "model unavailable"; never a raw provider
  error, never later than the timeout bound in `router`), `apps.core.exceptions.
  ValidationError` for a caller's bug (unknown alias).
- `services.StreamEvent` ("delta" with reply text / "reset"), what `stream_callback` gets.
- `services.budget_check(*, ticket_id)`, `selectors.llm_spend(...)`, `services.
  cache_hit_record(...)` (log an answer served from the caller's own cache).
- `prompt_format`: `Passage`, `sections_render(passages=..., customer_message=...)` builds
  the delimited, escaped data part of a prompt; `sections_parse` reads it back.
- `structured`: `OUTPUT_INSTRUCTIONS` (put it in the system prompt), `StructuredReply`,
  `reply_parse` (raises `exceptions.MalformedOutput`), `ReplyStreamExtractor`.
- `router.router_warm()` at worker start; `circuit.circuit_states(aliases)` for a health view.
- `embeddings.embed(texts)`, `embeddings.embed_with_layer(texts, layer)`,
  `embeddings.read_encoder(texts, layer, tokens=...)` (-> `EncoderReading`),
  `embeddings.token_count`, `embeddings.max_tokens`,
  `embeddings.model_name()`.

Aliases: "draft-fast", "draft-strong", "judge" (configure with LLM_DEPLOYMENTS or
LLM_<ALIAS>_MODEL, see `deployments`); unconfigured, each is `local/extractive`, the offline
extractive drafter of `extractive` / `provider`, which is not a language model and says so
(`CompletionResult.extractive`, LLMCall.model == "local/extractive").
"""
