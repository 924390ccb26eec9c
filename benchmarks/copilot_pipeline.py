"""The copilot pipeline end to end: quality at the shipped thresholds, stage timings,
Deskpilot's own overhead, time to first streamed token, and cost per resolved ticket.

    .venv/bin/python benchmarks/copilot_pipeline.py [--dataset fernhill|bank|birch]
        [--calibration shipped|default|fit] [--write-calibration] [--overhead-runs N]
        [--dump-features FILE] [--transfer-from FILE [FILE ...]] [--fake-in-thread]

Datasets (each a fresh database):
- `fernhill` (the demo): fixtures/demo/kb imported, intents, admin links and classifier from
  fixtures/demo/triage, gold set fixtures/demo/gold/copilot.tsv (150 questions).
- `bank` (a help center the calibration never saw, like the check's "outside help center"):
  fixtures/bank/kb (31 articles of the fictional Ashgrove Bank) imported, the classifier
  trained on Banking77's training split (../shared/data/banking77/train.csv, or
  $BANKING77_CSV) minus a held-out slice of 4 questions per intent, NO admin links (the links
  are learned from the examples, as on a fresh instance); the gold set is the held-out slice
  (308 real customer questions), each expecting the article fixtures/bank/intent_articles.csv
  maps its intent to (questions of an intent it does not map expect no article: the right
  outcome is a handoff, and an auto-sent reply to one counts as wrong). The trained
  classifier is cached under .deskpilot/bench/cache, keyed by its training rows.
- `birch` (a third help center, written apart from the other two and never used to fit the
  shipped calibration): fixtures/birch/kb (the fictional Birchwood card app, FAQ pages and
  distractor articles, 8 Banking77 intents left unanswered) set up exactly like `bank`, with
  its own held-out slice (4 questions per intent by sha256 of "birch:" + text), so its gold
  questions are not the bank's and its classifier is trained on different rows.

Calibration (`--calibration`):
- `shipped` (default): fixtures/demo/copilot/calibration.json, what `up --demo` loads;
- `default`: no calibration at all, what a fresh instance runs with (confidence.py's
  DEFAULT_CALIBRATION and settings.COPILOT_AUTO_SEND_THRESHOLD);
- `fit`: `copilot_calibrate`'s code on this dataset: fit on half, threshold for 97%
  precision; `--write-calibration` writes it to fixtures/demo/copilot/calibration.json.
Every gold question is composed once in evaluation mode; the shipped, default and
(re)fitted calibrations are all reported on the same drafts (held-out half and all).
`--transfer-from F [F ...]` adds a calibration fitted only on other datasets' drafts (files
written by `--dump-features`): the honest figure for a help center the calibration never saw.

The shipped calibration (fixtures/demo/copilot/calibration.json, also confidence.py's
DEFAULT_CALIBRATION) was made by pooling both datasets' drafts:

    .venv/bin/python benchmarks/copilot_pipeline.py --dataset fernhill --dump-features F.jsonl
    .venv/bin/python benchmarks/copilot_pipeline.py --dataset bank --pool F.jsonl \
        --write-calibration

Then every gold question is posted as a ticket and run through `pipeline_run` with the offline
drafter (local/extractive) under the chosen calibration: share auto-sent, precision of the
auto-sent (first citation = expected article), reasons of all others; per-stage p50/p95.
The same answerable questions with every alias on a fake OpenAI-compatible server (in its
own process, as a provider is) that answers at once give Deskpilot's own overhead. Cost per
resolved (auto-sent) ticket from the drafts' tokens at openai/gpt-4o-mini's prices in
litellm's local price table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from percentiles import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.chdir(ROOT)
for name, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(name, value)

DEMO = ROOT / "fixtures/demo"
GOLD = DEMO / "gold/copilot.tsv"
CALIBRATION_FIXTURE = DEMO / "copilot/calibration.json"
BANK_HELD_OUT_PER_INTENT = 4
# Banking77 help centers: dataset -> (folder, prefix hashed with each question to pick the
# held-out slice). A different prefix gives a help center its own gold questions.
BANKING77_HELP_CENTERS = {
    "bank": (ROOT / "fixtures/bank", ""),
    "birch": (ROOT / "fixtures/birch", "birch:"),
}
PRICE_MODEL = "openai/gpt-4o-mini"
STAGES = ("triage", "retrieve", "route", "draft", "validate", "decide", "total")


def services_start(name: str) -> None:
    from knowledge_bench_db import database_setup

    database_setup(name, redis=True)


def stage_table(label: str, drafts: list) -> None:  # type: ignore[type-arg]
    print(f"\n{label} ({len(drafts)} drafts), ms:")
    for stage in STAGES:
        values = [d.stage_timings[stage] for d in drafts if stage in d.stage_timings]
        if values:
            print(
                f"  {stage:9s} p50 {statistics.median(values):8.2f}  "
                f"p95 {percentile(values, 0.95):8.2f}"
            )


def gold_run(questions: list) -> list[tuple]:  # type: ignore[type-arg]
    """(gold question, draft, pipeline wall ms) for each question, as a new API ticket."""
    from apps.copilot.services import pipeline_run
    from apps.tickets.models import Channel
    from apps.tickets.services import Actor, customer_resolve, ticket_create

    customer = customer_resolve(email="bench@example.com", name="Bench")
    rows = []
    for question in questions:
        _, message = ticket_create(
            customer=customer,
            body=question.question,
            channel=Channel.API,
            actor=Actor.for_customer(customer),
        )
        started = time.perf_counter()
        draft = pipeline_run(message_id=message.id)
        rows.append((question, draft, (time.perf_counter() - started) * 1000))
    return rows


def quality(label: str, rows: list[tuple]) -> dict:  # type: ignore[type-arg]
    auto = [(q, d) for q, d, _ in rows if d.decision == "auto_sent"]
    correct = sum(
        1
        for q, d in auto
        if q.answerable and d.citations and d.citations[0]["external_id"] == q.expected_article
    )
    reasons = Counter(d.reason for _, d, _ in rows if d.decision != "auto_sent")
    missing_reason = sum(1 for _, d, _ in rows if d.decision != "auto_sent" and not d.reason)
    decisions = Counter(d.decision for _, d, _ in rows)
    precision = correct / len(auto) if auto else float("nan")
    print(
        f"\n{label}: {len(rows)} questions, auto-sent {len(auto)} ({len(auto) / len(rows):.1%}),"
        f" precision of auto-sent {precision:.3f} ({correct}/{len(auto)}), "
        f"non-auto without a reason: {missing_reason}"
    )
    print(f"  decisions: {dict(decisions)}")
    print(f"  reasons:   {dict(reasons)}")
    wrong = [
        (q.question[:70], q.expected_article or q.note, d.citations[0]["external_id"])
        for q, d in auto
        if not (q.answerable and d.citations[0]["external_id"] == q.expected_article)
    ]
    for item in wrong:
        print(f"  wrong auto-send: {item}")
    answerable = [(q, d) for q, d, _ in rows if q.answerable]
    answered = sum(1 for q, d in answerable if d.decision == "auto_sent")
    print(f"  answerable questions auto-sent: {answered}/{len(answerable)}")
    return {"auto": len(auto), "correct": correct, "questions": len(rows)}


def cost_report(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    from apps.llm.gateway import litellm

    input_tokens = sum(d.input_tokens for _, d, _ in rows)
    output_tokens = sum(d.output_tokens for _, d, _ in rows)
    prompt_cost, completion_cost = litellm().cost_per_token(
        model=PRICE_MODEL, prompt_tokens=input_tokens, completion_tokens=output_tokens
    )
    total = prompt_cost + completion_cost
    resolved = sum(1 for _, d, _ in rows if d.decision == "auto_sent")
    drafted = sum(1 for _, d, _ in rows if d.input_tokens)
    per_resolved = f"${total / resolved:.6f}" if resolved else "n/a (nothing auto-sent)"
    print(
        f"\ncost at {PRICE_MODEL} prices (litellm local table): {input_tokens} input + "
        f"{output_tokens} output tokens over {drafted} model calls = ${total:.5f}; "
        f"per ticket ${total / len(rows):.6f}; per resolved (auto-sent) ticket {per_resolved}"
    )


PACED_TOKENS_PER_SECOND = 100  # gpt-4o-mini streams ~80-120 tokens a second
INSTANT_REPLY = (
    "Hello, thanks for getting in touch. You can set a new password yourself: on the sign-in "
    'page, choose "Forgot password", enter the email address of your account and follow '
    "the link we send you within a few minutes. The link works once and expires after an "
    "hour; if it does not arrive, check your spam folder or ask for a new one. If you still "
    "cannot sign in after that, reply here and a member of the team will help. Have a nice day."
)


def overhead_run(questions: list, runs: int, *, fake_in_thread: bool = False) -> None:  # type: ignore[type-arg]
    """Every alias on a fake OpenAI server that answers at once: wall time = overhead.

    The server runs in a process of its own, as a provider would (`fake_in_thread`: in a
    thread of this process, where its per-chunk work competes with the measured code)."""
    from django.conf import settings

    from apps.llm.circuit import circuit_reset
    from apps.llm.deployments import Deployment
    from apps.llm.models import LLMCall
    from apps.llm.router import router_reset
    from tests.llm.fake_openai import Reply, RunningServer, ServerProcess

    server: Any = ThreadServer(RunningServer()) if fake_in_thread else ServerProcess()
    # A reply of a model's usual length, streamed a token (~4 characters) per chunk as
    # OpenAI does: the gateway's cost grows with the number of chunks, not the reply's time.
    answer = json.dumps({"reply": INSTANT_REPLY, "citations": ["P1"], "answerable": True})
    server.reset(default=Reply.ok(answer, chunk_chars=4))
    print(
        f"\nfake model's reply: {len(answer)} characters in {-(-len(answer) // 4)} streamed chunks"
        f" (fake server in {'a thread of this process' if fake_in_thread else 'its own process'})"
    )
    os.environ["FAKE_OPENAI_KEY"] = "sk-fake"
    deployment = Deployment(
        model=PRICE_MODEL, api_base=server.base_url, api_key_env="FAKE_OPENAI_KEY"
    )
    settings.LLM_DEPLOYMENTS = {alias: (deployment,) for alias in settings.LLM_DEPLOYMENTS}
    router_reset()
    circuit_reset(list(settings.LLM_DEPLOYMENTS))
    # As a pipeline worker process does once warm (apps/copilot/tasks.py): what is loaded by
    # now lives as long as the process, and is kept out of the garbage collector's full
    # collections, each of which would otherwise stall the message at hand for ~0.4 s.
    gc.freeze()
    chosen = (questions * (2 * runs // max(1, len(questions)) + 1))[: 2 * runs]
    # A reply is streamed only when someone may watch it (settings.COPILOT_STREAM_UNWATCHED):
    # these API tickets have no reader, so they get one model response each; the watched runs
    # stream every reply, as to a widget visitor or a connected inbox/API reader. The two
    # alternate, ten questions at a time (different ones: a question just embedded would be
    # in the embedding's cache), so that the machine's drift affects both alike.
    runs_of: dict[bool, list] = {False: [], True: []}
    for start in range(0, len(chosen), 10):
        watched = start // 10 % 2 == 1
        settings.COPILOT_STREAM_UNWATCHED = watched
        runs_of[watched] += gold_run(chosen[start : start + 10])
    settings.COPILOT_STREAM_UNWATCHED = True  # the paced model below streams to a watcher
    for watched, rows in runs_of.items():
        label = (
            "watched (streamed, as to a widget visitor)"
            if watched
            else "nobody watching (one model response, as for an email/API ticket)"
        )
        drafted = [(q, d, wall) for q, d, wall in rows if d.model == PRICE_MODEL]
        walls = [wall for _, _, wall in drafted]
        stage_table(
            f"fake OpenAI server answering at once, {label}: per stage",
            [d for _, d, _ in drafted],
        )
        print(
            f"\npipeline_run wall time with an instant model (all of Deskpilot's and litellm's "
            f"time), {label}, {len(walls)} runs: p50 {statistics.median(walls):.2f} ms, "
            f"p95 {percentile(walls, 0.95):.2f} ms (bar: p95 < 150 ms)"
        )
    calls = LLMCall.objects.filter(
        id__in=[i for _, d, _ in drafted for i in d.llm_call_ids],
        time_to_first_token_ms__isnull=False,
    )
    ttfts = [c.time_to_first_token_ms for c in calls]
    before_model = [
        d.stage_timings["triage"] + d.stage_timings["retrieve"] + d.stage_timings["route"]
        for _, d, _ in drafted
    ]
    if ttfts:
        firsts = [b + t for b, t in zip(before_model, ttfts, strict=False)]
        print(
            f"time to first streamed token: from the model call p50 {statistics.median(ttfts):.1f}"
            f" ms p95 {percentile(ttfts, 0.95):.1f} ms; from the start of the pipeline p50 "
            f"{statistics.median(firsts):.1f} ms p95 {percentile(firsts, 0.95):.1f} ms"
        )
    paced_report(server, questions, runs, answer)
    settings.COPILOT_STREAM_UNWATCHED = False
    server.stop()


class ThreadServer:
    """RunningServer behind ServerProcess's interface (for `--fake-in-thread`)."""

    def __init__(self, running: Any) -> None:
        self.running = running
        self.base_url = running.fake.base_url

    def reset(self, default: Any) -> None:
        self.running.fake.reset(default=default)

    def answer_seconds(self) -> list[float]:
        return list(self.running.fake.answer_seconds)

    def stop(self) -> None:
        self.running.stop()


def paced_report(server, questions: list, runs: int, answer: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    """The same model streaming at PACED_TOKENS_PER_SECOND, to a watcher: overhead = wall time
    minus the model's own time (the fake server's, from a request's arrival to its last byte)."""
    from tests.llm.fake_openai import Reply

    server.reset(default=Reply.ok(answer, chunk_chars=4, chunk_delay=1 / PACED_TOKENS_PER_SECOND))
    chosen = (questions[::-1] * (runs // max(1, len(questions)) + 1))[: max(1, runs // 2)]
    rows = gold_run(chosen)
    answers = iter(server.answer_seconds())
    overheads, models = [], []
    for _, draft, wall in rows:
        if draft.model != PRICE_MODEL:
            continue  # handed off before drafting, or a cached reply: no model call
        model_ms = sum(next(answers) for _ in draft.llm_call_ids) * 1000
        models.append(model_ms)
        overheads.append(wall - model_ms)
    if not overheads:
        return
    print(
        f"\nthe same model streaming {PACED_TOKENS_PER_SECOND} chunks/s to a watcher, "
        f"{len(overheads)} runs: "
        f"model's own time p50 {statistics.median(models):.0f} ms; pipeline_run wall minus it "
        f"p50 {statistics.median(overheads):.2f} ms, p95 {percentile(overheads, 0.95):.2f} ms"
    )


def banking77_path() -> Path:
    for candidate in (
        os.environ.get("BANKING77_CSV"),
        str(ROOT.parent / "shared" / "data" / "banking77" / "train.csv"),
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    sys.exit("Banking77 not found: set BANKING77_CSV to its train.csv")


def bank_split(folder: Path, salt: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(training rows, held-out (question, intent, expected article)): the first
    BANK_HELD_OUT_PER_INTENT of each intent by sha256 of `salt` + text are held out; the
    expected article comes from `folder`/intent_articles.csv ("" for an intent it lacks)."""
    import csv
    import hashlib

    with banking77_path().open(newline="", encoding="utf-8") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    with (folder / "intent_articles.csv").open(newline="", encoding="utf-8") as handle:
        articles = {row["intent"]: row["article"] for row in csv.DictReader(handle)}
    by_intent: dict[str, list[str]] = {}
    for text, intent in rows:
        by_intent.setdefault(intent, []).append(text)
    train, held = [], []
    for intent in sorted(by_intent):
        ordered = sorted(
            by_intent[intent], key=lambda t: hashlib.sha256((salt + t).encode()).hexdigest()
        )
        held += [(t, intent, articles.get(intent, "")) for t in ordered[:BANK_HELD_OUT_PER_INTENT]]
        train += [(t, intent) for t in ordered[BANK_HELD_OUT_PER_INTENT:]]
    return train, held


def bank_setup(workdir: Path, dataset: str) -> Path:
    """A Banking77 help center's KB, the Banking77 classifier (cached), no admin links; the
    gold file."""
    import csv
    import hashlib
    import io

    from apps.knowledge.imports import kb_import
    from apps.triage.csv_import import LabelledText
    from apps.triage.models import ClassifierVersion, TrainingSource, TrainingStatus
    from apps.triage.services import (
        classifier_train_from_csv,
        classifier_version_activate,
        training_examples_import,
        training_params,
    )

    folder, salt = BANKING77_HELP_CENTERS[dataset]
    kb_import(paths=[folder / "kb"], source_name=dataset)
    train, held = bank_split(folder, salt)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "category"])
    writer.writerows(train)
    train_path = workdir / f"{dataset}-train.csv"
    train_path.write_text(buffer.getvalue(), encoding="utf-8")
    code = (ROOT / "apps/triage/classifier.py").read_bytes()
    recipe = training_params()
    # Keyed by the training rows (each help center holds out its own slice), the classifier's
    # code and the recipe the settings choose.
    key = hashlib.sha256(
        buffer.getvalue().encode() + code + json.dumps(recipe.as_json()).encode()
    ).hexdigest()[:16]
    cached = workdir / "cache" / f"{dataset}-classifier-{key}.bin"
    if cached.exists():
        training_examples_import(rows=[LabelledText(text=t, intent=i) for t, i in train])
        artifact = cached.read_bytes()
        version = ClassifierVersion.objects.create(
            training_source=TrainingSource.CSV,
            source_detail=str(train_path),
            status=TrainingStatus.READY,
            method=recipe.method,
            example_count=len(train),
            intent_count=len({i for _, i in train}),
            artifact=artifact,
            artifact_bytes=len(artifact),
        )
        classifier_version_activate(version_id=version.id)
        print(f"setup: Banking77 classifier from the cache {cached.name}")
    else:
        started = time.perf_counter()
        result = classifier_train_from_csv(path=train_path, activate=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(bytes(ClassifierVersion.objects.get(id=result.version.id).artifact))
        print(f"setup: Banking77 classifier trained in {time.perf_counter() - started:.0f} s")
    gold = workdir / f"{dataset}-gold.tsv"
    with gold.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["question", "intent", "expected_article", "note"])
        writer.writerows([(q, i, a, "" if a else "no_answer") for q, i, a in held])
    print(f"setup: {len(train)} training examples, {len(held)} held-out questions")
    return gold


def fernhill_setup() -> Path:
    from apps.copilot.demo import demo_setup
    from apps.knowledge.imports import kb_import

    kb_import(paths=[DEMO / "kb"], source_name="demo")
    for line in demo_setup(
        intents=DEMO / "triage/intents.csv", train=DEMO / "triage/train.csv", calibration=None
    ):
        print(f"setup: {line}")
    return GOLD


def calibration_store(weights: dict, threshold: float, label: str) -> None:
    from apps.copilot.models import Calibration

    Calibration.objects.filter(is_active=True).update(is_active=False)
    version = (Calibration.objects.order_by("-version").first() or Calibration(version=0)).version
    Calibration.objects.create(
        version=version + 1,
        weights=weights,
        auto_send_threshold=threshold,
        target_precision=0.97,
        gold_set=label,
        is_active=True,
    )


def figures_line(label: str, figures) -> None:  # type: ignore[no-untyped-def]
    precision = "n/a" if figures.precision is None else f"{figures.precision:.3f}"
    print(
        f"  {label:34s} auto-sent {figures.auto_sent:3d}/{figures.questions} "
        f"({figures.auto_sent_share:.1%}), precision {precision} "
        f"({figures.auto_sent_correct}/{figures.auto_sent}); reasons {figures.reasons}"
    )


def dump_rows(path: Path) -> tuple[str, list]:  # type: ignore[type-arg]
    """(dataset, [(features, correct)] of its decidable drafts) from a --dump-features file."""
    from apps.copilot.confidence import ConfidenceFeatures

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [
        (ConfidenceFeatures.from_stored(r["features"]), r["correct"])
        for r in rows
        if r["decidable"]
    ]
    return rows[0]["dataset"], kept


# The shipped threshold aims a point above the 97% the check asks of an unseen help center.
SHIPPED_TARGET_PRECISION = 0.98


def pooled_fit(rows: list) -> tuple[dict, float, dict]:  # type: ignore[type-arg]
    """copilot_calibrate's fit and threshold rule on (features, correct) rows."""
    from apps.copilot.confidence import calibration_fit, threshold_for_precision

    fitted = calibration_fit([f for f, _ in rows], [c for _, c in rows])
    threshold = threshold_for_precision(
        fitted["metrics"]["held_out_scores"],
        [c for _, c in rows],
        target_precision=SHIPPED_TARGET_PRECISION,
    )
    weights = {k: fitted[k] for k in ("method", "feature_names", "weights", "bias")}
    metrics = {k: v for k, v in fitted["metrics"].items() if k != "held_out_scores"}
    return weights, 1.0 if threshold is None else threshold, metrics


def pooled_write(dataset: str, outcomes: list, pool: list[Path]) -> None:  # type: ignore[type-arg]
    """Fit on every decidable draft of this dataset and of the pooled dumps; write it as the
    shipped calibration."""
    from apps.copilot.calibration import confidence_decides
    from apps.copilot.confidence import ConfidenceFeatures
    from apps.copilot.selectors import policy_effective

    policy = policy_effective()
    rows = [
        (ConfidenceFeatures.from_stored(o.composition.confidence_features), o.correct)
        for o in outcomes
        if confidence_decides(o.composition, policy=policy)
    ]
    sources = [f"{dataset} ({len(rows)} drafts)"]
    for path in pool:
        name, kept = dump_rows(path)
        rows += kept
        sources.append(f"{name} ({len(kept)} drafts, from {path.name})")
    weights, threshold, metrics = pooled_fit(rows)
    CALIBRATION_FIXTURE.write_text(
        json.dumps(
            {
                "weights": weights,
                "metrics": metrics,
                "auto_send_threshold": threshold,
                "target_precision": SHIPPED_TARGET_PRECISION,
                "gold_set": "all gold questions of " + " + ".join(sources),
            },
            indent=2,
        )
        + "\n"
    )
    named = dict(
        zip(weights["feature_names"], [round(w, 3) for w in weights["weights"]], strict=True)
    )
    print(
        f"\npooled calibration written to {CALIBRATION_FIXTURE.relative_to(ROOT)}: fit on "
        f"{' + '.join(sources)}; threshold {threshold:.4f} (cross-validated precision >= "
        f"{SHIPPED_TARGET_PRECISION}); "
        f"ECE {metrics['expected_calibration_error']:.3f}\n  weights {named}, bias "
        f"{weights['bias']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dataset", choices=("fernhill", *BANKING77_HELP_CENTERS), default="fernhill"
    )
    parser.add_argument("--calibration", choices=("shipped", "default", "fit"), default="shipped")
    parser.add_argument("--write-calibration", action="store_true")
    parser.add_argument("--overhead-runs", type=int, default=60)
    parser.add_argument(
        "--fake-in-thread",
        action="store_true",
        help="run the fake OpenAI server in a thread of this process (the old setup)",
    )
    parser.add_argument("--dump-features", type=Path)
    parser.add_argument(
        "--pool",
        type=Path,
        action="append",
        default=[],
        help="--dump-features file of another dataset, pooled into --write-calibration's fit",
    )
    parser.add_argument(
        "--transfer-from",
        type=Path,
        action="extend",
        nargs="+",
        default=[],
        help="--dump-features file(s) of other datasets: also report a calibration fitted on "
        "them alone (this dataset unseen)",
    )
    arguments = parser.parse_args()
    services_start(f"copilot_{arguments.dataset}")
    from django.conf import settings

    from apps.copilot.calibration import (
        calibration_from_outcomes,
        confidence_decides,
        figures_at,
        gold_compose,
        gold_read,
        gold_split,
    )
    from apps.copilot.confidence import DEFAULT_CALIBRATION
    from apps.copilot.models import CopilotPolicy
    from apps.copilot.selectors import policy_effective

    started = time.perf_counter()
    workdir = Path(os.environ["DESKPILOT_HOME"]).resolve()
    gold_path = (
        fernhill_setup()
        if arguments.dataset == "fernhill"
        else bank_setup(workdir, arguments.dataset)
    )
    print(f"setup took {time.perf_counter() - started:.1f} s")
    # Every question drafted afresh: the cache would hide the pipeline's own figures.
    CopilotPolicy.objects.update_or_create(singleton=True, defaults={"cache_enabled": False})

    questions = gold_read(path=gold_path)
    _, held_half = gold_split(questions)
    held = {q.question for q in held_half}
    started = time.perf_counter()
    outcomes = gold_compose(questions)
    learned = [o for o in outcomes if "learn_links" in o.composition.stage_timings]
    print(
        f"composed {len(outcomes)} gold questions in evaluation mode in "
        f"{time.perf_counter() - started:.1f} s"
        + (
            f" (links learned first: {learned[0].composition.stage_timings['learn_links']} ms)"
            if learned
            else ""
        )
    )
    answerable = [o for o in outcomes if o.gold.answerable]
    cited_right = sum(o.correct for o in answerable)
    searched_right = sum(
        1
        for o in answerable
        if o.composition.retrieved
        and o.composition.retrieved[0]["external_id"] == o.gold.expected_article
    )
    print(
        f"answerable questions: {len(answerable)}; first citation right {cited_right}, "
        f"first passage (after the intent boost) right {searched_right}"
    )
    fit_outcomes = [o for o in outcomes if o.gold.question not in held]
    held_outcomes = [o for o in outcomes if o.gold.question in held]
    if arguments.write_calibration:
        pooled_write(arguments.dataset, outcomes, arguments.pool)
    shipped = json.loads(CALIBRATION_FIXTURE.read_text())
    fitted, threshold = calibration_from_outcomes(fit_outcomes, target_precision=0.97)
    weights = {k: fitted[k] for k in ("method", "feature_names", "weights", "bias")}
    candidates = {
        "shipped (fixtures/demo)": (shipped["weights"], shipped["auto_send_threshold"]),
        "default (no calibration)": (DEFAULT_CALIBRATION, settings.COPILOT_AUTO_SEND_THRESHOLD),
        f"fit on this half (t={threshold:.3f})": (weights, threshold),
    }
    if arguments.transfer_from:
        rows, names = [], []
        for path in arguments.transfer_from:
            name, kept = dump_rows(path)
            rows += kept
            names.append(name)
        other, other_threshold, _ = pooled_fit(rows)
        label = f"fit on {'+'.join(names)} only (t={other_threshold:.3f})"
        candidates[label] = (other, other_threshold)
    print("\ndecisions on the same drafts under each calibration:")
    for label, (calibration, limit) in candidates.items():
        figures_line(
            f"{label}, held-out half",
            figures_at(held_outcomes, calibration=calibration, threshold=limit),
        )
        figures_line(
            f"{label}, all", figures_at(outcomes, calibration=calibration, threshold=limit)
        )
    named = dict(
        zip(fitted["feature_names"], [round(w, 3) for w in fitted["weights"]], strict=True)
    )
    print(f"  fitted weights: {named}, bias {fitted['bias']:.3f}")
    if arguments.dump_features:
        policy = policy_effective()
        with arguments.dump_features.open("w") as handle:
            for o in outcomes:
                handle.write(
                    json.dumps(
                        {
                            "dataset": arguments.dataset,
                            "question": o.gold.question,
                            "held_out": o.gold.question in held,
                            "drafted": o.composition.drafted,
                            "decidable": confidence_decides(o.composition, policy=policy),
                            "correct": o.correct,
                            "answerable": o.gold.answerable,
                            "decision": o.composition.decision,
                            "reason": o.composition.reason,
                            "features": o.composition.confidence_features,
                        }
                    )
                    + "\n"
                )
    if arguments.calibration == "shipped":
        calibration_store(shipped["weights"], shipped["auto_send_threshold"], "shipped")
    elif arguments.calibration == "fit":
        calibration_store(weights, threshold, f"{arguments.dataset} fit half")
    rows = gold_run(questions)
    label = f"{arguments.dataset}, through tickets, {arguments.calibration} calibration"
    quality(f"{label}: all gold questions", rows)
    quality(f"{label}: held-out half only", [r for r in rows if r[0].question in held])
    stage_table(
        "local/extractive: per stage", [d for _, d, _ in rows if d.stage_timings.get("draft")]
    )
    walls = [wall for _, _, wall in rows]
    print(
        f"pipeline_run wall time, all questions: p50 {statistics.median(walls):.2f} ms, "
        f"p95 {percentile(walls, 0.95):.2f} ms"
    )
    cost_report(rows)
    if arguments.overhead_runs:
        overhead_run(
            [q for q in questions if q.answerable],
            arguments.overhead_runs,
            fake_in_thread=arguments.fake_in_thread,
        )


if __name__ == "__main__":
    main()
