"""Gateway overhead per call, time to first token, and the extractive drafter's scorers.

    .venv/bin/python benchmarks/llm_overhead.py [--calls 300]

Everything is measured in one run on this machine:
- baseline: a raw httpx POST to a local fake OpenAI-compatible server answering instantly
  (and a raw streamed POST, for time to first token);
- litellm's Router alone against the same server (litellm's own cost);
- `completion_create` against the same server (Router + budget check + circuit breaker +
  output parsing + the LLMCall insert): the ratio to the raw POST is the gateway's price;
- `completion_create` with local/extractive (lexical and embedding scorers);
- the two scorers' accuracy on a small built-in question set (right passage cited,
  unanswerable questions refused).

Uses DATABASE_URL / REDIS_URL when set, else starts the embedded PostgreSQL and Redis under
DESKPILOT_HOME/bench; LLMCall rows go to a throwaway database dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from percentiles import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for name, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}.items():
    os.environ.setdefault(name, value)

started_services: list = []


def services_start() -> None:
    from apps.core.embedded import services_start as embedded_services_start

    home = Path(os.environ.get("DESKPILOT_HOME", ROOT / ".deskpilot")).resolve() / "bench"
    os.environ["DESKPILOT_HOME"] = str(home)
    started_services.extend(embedded_services_start(home))


def summary(label: str, durations: list[float], ttfts: list[float], wall: float) -> dict:
    row = {
        "label": label,
        "p50": statistics.median(durations),
        "p95": percentile(durations, 0.95),
        "throughput": len(durations) / wall,
        "ttft_p50": statistics.median(ttfts) if ttfts else None,
        "ttft_p95": percentile(ttfts, 0.95) if ttfts else None,
    }
    ttft_text = (
        f"  ttft p50 {row['ttft_p50']:6.2f} ms p95 {row['ttft_p95']:6.2f} ms" if ttfts else ""
    )
    print(
        f"{label:56s} p50 {row['p50']:7.2f} ms  p95 {row['p95']:7.2f} ms  "
        f"{row['throughput']:7.1f}/s{ttft_text}",
        flush=True,
    )
    return row


def interleaved(cases: list[tuple[str, Callable[[], float | None]]], calls: int) -> list[dict]:
    """Run every case once per round, in a rotating order, so that the load of a shared
    machine falls on all of them alike; an action may return its own TTFT in ms."""
    for _ in range(max(5, calls // 10)):
        for _, action in cases:
            action()
    durations: list[list[float]] = [[] for _ in cases]
    ttfts: list[list[float]] = [[] for _ in cases]
    spent = [0.0 for _ in cases]
    for round_number in range(calls):
        shift = round_number % len(cases)
        for index in [*range(shift, len(cases)), *range(shift)]:
            start = time.perf_counter()
            ttft = cases[index][1]()
            elapsed = time.perf_counter() - start
            spent[index] += elapsed
            durations[index].append(elapsed * 1000)
            if ttft is not None:
                ttfts[index].append(ttft)
    return [summary(label, durations[i], ttfts[i], spent[i]) for i, (label, _) in enumerate(cases)]


# A small knowledge base and questions: (question, passage that answers it or None).
KB = [
    (
        "P1",
        "billing/refunds.md",
        "We refund every order returned within 30 days. Refunds are "
        "paid to the original card within 5 business days. Gift cards cannot be refunded.",
    ),
    (
        "P2",
        "shipping/times.md",
        "Orders leave our warehouse within 2 working days. Delivery in "
        "Europe takes 3 to 5 days. Express delivery arrives the next day and costs 12 EUR.",
    ),
    (
        "P3",
        "account/password.md",
        "To reset your password, open the sign-in page and choose "
        "'Forgot password'. We email you a link that stays valid for one hour.",
    ),
    (
        "P4",
        "billing/invoices.md",
        "Invoices are available under Settings, then Billing. Each "
        "invoice can be downloaded as a PDF. Company details can be added before download.",
    ),
    (
        "P5",
        "account/delete.md",
        "You can close your account under Settings, then Privacy. "
        "Closing the account deletes your personal data after 30 days.",
    ),
    (
        "P6",
        "account/2fa.md",
        "Two-factor authentication adds a code from an authenticator app "
        "to each sign-in. Turn it on under Settings, then Security.",
    ),
]
QUESTIONS = [
    ("How long until my refund reaches my card?", "P1"),
    ("When will I get my money back?", "P1"),
    ("Can I return a gift card for cash?", "P1"),
    ("How long does delivery take to Germany?", "P2"),
    ("Is there a faster shipping option?", "P2"),
    ("I forgot my password, what do I do?", "P3"),
    ("I can't log in, how do I get a new password?", "P3"),
    ("Where can I download my invoice?", "P4"),
    ("I need a receipt with my company name on it", "P4"),
    ("How do I delete my account?", "P5"),
    ("What happens to my data if I leave?", "P5"),
    ("How do I enable 2FA?", "P6"),
    ("Can I add an extra security step when signing in?", "P6"),
    ("Do you sell dog food?", None),
    ("What is the capital of Australia?", None),
    ("Can I pay with cryptocurrency?", None),
]


def scorer_accuracy() -> None:
    from apps.llm.extractive import draft_compose
    from apps.llm.prompt_format import ParsedPrompt, Passage

    passages = tuple(Passage(pid, text, source) for pid, source, text in KB)
    print("\nextractive scorers on", len(QUESTIONS), "built-in questions", flush=True)
    for scorer in ("lexical", "embedding"):
        right = refused = answerable_total = unanswerable_total = 0
        durations = []
        for question, expected in QUESTIONS:
            start = time.perf_counter()
            draft = draft_compose(ParsedPrompt(passages, question), scorer=scorer)
            durations.append((time.perf_counter() - start) * 1000)
            if expected is None:
                unanswerable_total += 1
                refused += not draft.answerable
            else:
                answerable_total += 1
                right += draft.answerable and draft.citations[:1] == (expected,)
        print(
            f"  {scorer:9s} right passage first {right}/{answerable_total}, "
            f"unanswerable refused {refused}/{unanswerable_total}, "
            f"compose p50 {statistics.median(durations):.1f} ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    calls = parser.parse_args().calls

    services_start()
    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    import httpx
    from django.conf import settings
    from django.db import connection

    from apps.llm.circuit import circuit_allowed
    from apps.llm.deployments import LOCAL_EXTRACTIVE, Deployment
    from apps.llm.gateway import litellm
    from apps.llm.models import LLMCall
    from apps.llm.prompt_format import Passage, sections_render
    from apps.llm.router import router, router_reset
    from apps.llm.services import _log_save, budget_check, completion_create
    from apps.llm.structured import OUTPUT_INSTRUCTIONS
    from tests.llm.fake_openai import Reply, RunningServer

    test_db = connection.creation.create_test_db(verbosity=0, keepdb=False)
    server = RunningServer()
    answer = json.dumps(
        {
            # A reply of a model's usual length, a token (~4 characters) per streamed chunk.
            "reply": "Hello, thanks for your message. Refunds are paid back to the card you "
            "paid with within 5 business days of our accepting the return; your bank may take "
            "another 2 to 3 days to show it. You will get an email when we send it. If it has "
            "not arrived after 10 business days, reply here with your order number and we will "
            "look into it. Kind regards.",
            "citations": ["P1"],
            "answerable": True,
        }
    )
    server.fake.default = Reply.ok(answer, chunk_chars=4)
    os.environ["BENCH_FAKE_KEY"] = "sk-fake"
    settings.LLM_BUDGET_DAILY_USD = settings.LLM_BUDGET_MONTHLY_USD = 1e9
    settings.LLM_BUDGET_TICKET_USD = 1e9
    settings.LLM_EXTRACTIVE_SCORER = "lexical"
    fake = Deployment(
        model="openai/gpt-4o-mini", api_base=server.fake.base_url, api_key_env="BENCH_FAKE_KEY"
    )
    settings.LLM_DEPLOYMENTS = {
        "draft-fast": (fake,),
        "draft-strong": (Deployment(LOCAL_EXTRACTIVE),),
        "judge": (Deployment(LOCAL_EXTRACTIVE),),
    }
    settings.LLM_FALLBACKS = {"draft-fast": ("draft-strong",)}
    router_reset()

    user = sections_render(
        passages=[Passage(pid, text, source) for pid, source, text in KB],
        customer_message="How long until my refund reaches my card?",
    )
    messages = [
        {"role": "system", "content": "You are a support agent. " + OUTPUT_INSTRUCTIONS},
        {"role": "user", "content": user},
    ]
    body = {"model": "gpt-4o-mini", "messages": messages}
    client = httpx.Client(timeout=5)
    url = server.fake.base_url + "/chat/completions"
    headers = {"Authorization": "Bearer sk-fake"}

    def raw_post() -> None:
        client.post(url, json=body, headers=headers).json()

    def raw_stream() -> float:
        start = time.perf_counter()
        first = None
        with client.stream("POST", url, json={**body, "stream": True}, headers=headers) as reply:
            for line in reply.iter_lines():
                if first is None and '"content": "' in line and '"content": ""' not in line:
                    first = (time.perf_counter() - start) * 1000
        return first or 0.0

    def router_only() -> None:
        router().completion(model="draft-fast", messages=messages)

    def gateway(alias: str) -> Callable[[], None]:
        def call() -> None:
            completion_create(purpose="bench", alias=alias, messages=messages, ticket_id=1)

        return call

    def gateway_stream(alias: str) -> Callable[[], float]:
        def call() -> float:
            result = completion_create(
                purpose="bench",
                alias=alias,
                messages=messages,
                ticket_id=1,
                stream_callback=lambda event: None,
            )
            return float(result.ttft_ms or 0)

        return call

    def gateway_stream_litellm_logging() -> float:
        # litellm's default: a thread and an event loop per chunk for its success callbacks.
        litellm().disable_streaming_logging = False
        try:
            return gateway_stream("draft-fast")()
        finally:
            litellm().disable_streaming_logging = True

    def log_insert() -> None:
        _log_save(LLMCall(purpose="bench", alias="draft-fast", status="succeeded", model="m"))

    print(f"{calls} rounds after a warm-up, cases interleaved; the fake server answers at once\n")
    try:
        (
            baseline,
            router_row,
            fake_row,
            raw_stream_row,
            stream_row,
            logging_row,
            local_row,
            local_stream,
            *_,
        ) = interleaved(
            [
                ("raw httpx POST to the fake server", raw_post),
                ("litellm Router.completion alone", router_only),
                ("completion_create -> fake server", gateway("draft-fast")),
                ("raw httpx streamed POST (ttft: first content)", raw_stream),
                ("completion_create streamed -> fake server", gateway_stream("draft-fast")),
                (
                    "  same, litellm's per-chunk success logging on (default)",
                    gateway_stream_litellm_logging,
                ),
                ("completion_create -> local/extractive (lexical)", gateway("draft-strong")),
                (
                    "completion_create streamed -> local/extractive (lexical)",
                    gateway_stream("draft-strong"),
                ),
                ("  part: budget_check (one aggregate query)", lambda: budget_check(ticket_id=1)),
                (
                    "  part: circuit breaker check (one Redis MGET)",
                    lambda: circuit_allowed(["draft-fast", "draft-strong"]) and None,
                ),
                ("  part: LLMCall insert (asynchronous commit)", log_insert),
            ],
            calls,
        )
        settings.LLM_EXTRACTIVE_SCORER = "embedding"
        (embed_row,) = interleaved(
            [("completion_create -> local/extractive (embedding)", gateway("draft-strong"))],
            max(30, calls // 5),
        )
        print("\nratios against the raw POST of the same rounds (p50 / p95):")
        for row in (router_row, fake_row, stream_row, local_row, local_stream, embed_row):
            print(
                f"  {row['label']:56s} x{row['p50'] / baseline['p50']:.1f} / "
                f"x{row['p95'] / baseline['p95']:.1f}"
            )
        print(
            f"\nstreamed reply of {-(-len(answer) // 4)} chunks: litellm's per-chunk logging off "
            f"(Deskpilot's setting) p50 {stream_row['p50']:.1f} ms, on (litellm's default) "
            f"{logging_row['p50']:.1f} ms: x{logging_row['p50'] / stream_row['p50']:.2f}"
        )
        print(
            f"\ngateway's own overhead (p50): {fake_row['p50'] - router_row['p50']:.2f} ms over "
            f"the Router alone, {fake_row['p50'] - baseline['p50']:.2f} ms over the raw POST"
        )
        print(
            f"streamed TTFT p50: raw {raw_stream_row['ttft_p50']:.2f} ms, gateway "
            f"{stream_row['ttft_p50']:.2f} ms, local/extractive {local_stream['ttft_p50']:.2f} ms"
        )
        scorer_accuracy()
    finally:
        client.close()
        server.stop()
        connection.creation.destroy_test_db(test_db, verbosity=0)
        for service in reversed(started_services):
            service.stop()


if __name__ == "__main__":
    main()
