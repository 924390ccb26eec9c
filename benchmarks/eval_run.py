"""Evaluation runs and the regression gate on the demo: how long a run takes per 100 gold
items (in one process, and through real Celery workers on the `eval` queue), its figures,
and the gate's decisions on a worse and an equally good classifier.

    .venv/bin/python benchmarks/eval_run.py [--workers 1] [--skip-gate]

A fresh database: the demo knowledge base, intents, classifier and calibration as
`up --demo` loads them, the offline drafter, and the shipped gold sets
(`eval_goldset_import --fixtures`). The worse classifier is trained on the demo's examples
with each intent's texts labelled as another intent; the equal one on the same examples as
the active one.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
DEMO = BENCH.parent / "fixtures/demo"


def setup() -> None:
    from django.core.management import call_command

    from apps.copilot.demo import demo_setup
    from apps.copilot.models import CopilotPolicy
    from apps.knowledge.imports import kb_import

    kb_import(paths=[DEMO / "kb"], source_name="demo")
    for line in demo_setup(
        intents=DEMO / "triage/intents.csv",
        train=DEMO / "triage/train.csv",
        calibration=DEMO / "copilot/calibration.json",
    ):
        print(f"setup: {line}")
    CopilotPolicy.objects.update_or_create(singleton=True, defaults={"cache_enabled": False})
    call_command("eval_goldset_import", "--fixtures")


def inline_run(name: str):  # type: ignore[no-untyped-def]
    from apps.evaluation.models import GoldSet
    from apps.evaluation.runs import eval_batch_run, eval_run_create

    gold_set = GoldSet.objects.get(name=name)
    run = eval_run_create(gold_set=gold_set, label="bench: inline", publish=False)
    started = time.perf_counter()
    eval_batch_run(run_id=run.pk, item_ids=list(gold_set.items.values_list("pk", flat=True)))
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    return run, seconds


def worker_run(name: str, workers: int):  # type: ignore[no-untyped-def]

    from apps.evaluation.models import GoldSet
    from apps.evaluation.runs import eval_run_create, eval_run_wait
    from config.celery import app

    gold_set = GoldSet.objects.get(name=name)
    node = f"bench-{uuid.uuid4().hex[:6]}@localhost"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork",
         "--concurrency", str(workers), "-n", node, "-Q", "eval", "--without-mingle",
         "--without-gossip", "--loglevel", "WARNING"],
        env=dict(os.environ), cwd=BENCH.parent,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not app.control.ping(destination=[node], timeout=0.5):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the eval worker did not start")
        # The worker's processes load the models on their first task: warm them first.
        warm = eval_run_create(gold_set=GoldSet.objects.get(name="demo-retrieval"), label="warm")
        eval_run_wait(run_id=warm.pk, timeout=600)
        started = time.perf_counter()
        run = eval_run_create(gold_set=gold_set, label=f"bench: {workers} worker process(es)")
        run = eval_run_wait(run_id=run.pk, timeout=1800, poll=0.2)
        return run, time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(30)


def mislabelled_csv(path: Path) -> None:
    with (DEMO / "triage/train.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = sorted({row["category"] for row in rows})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        for row in rows:
            writer.writerow([row["text"], names[(names.index(row["category"]) + 1) % len(names)]])


def gate(label: str, csv_path: Path) -> None:
    from apps.core.exceptions import ActivationRefusedError
    from apps.evaluation.models import GateDecision
    from apps.triage.services import classifier_train_from_csv, classifier_version_activate

    version = classifier_train_from_csv(path=csv_path, activate=False).version
    started = time.perf_counter()
    try:
        classifier_version_activate(version_id=version.id, requested_by="benchmark")
        verdict = "activated"
    except ActivationRefusedError as error:
        verdict = f"refused: {error.message[:600]}"
    seconds = time.perf_counter() - started
    decision = GateDecision.objects.order_by("-id").first()
    print(f"\ngate on the {label} classifier (version {version.id}): {verdict}")
    print(f"  took {seconds:.1f} s (candidate runs on every gold set with intents)")
    for check in decision.checks if decision else []:
        print(
            f"  {check['gold_set']:15s} {check['metric']:16s} {check['candidate']:.3f} vs "
            f"{check['active']:.3f}  diff {check['difference']:+.3f} "
            f"[{check['low']:+.3f}, {check['high']:+.3f}]  {'WORSE' if check['worse'] else 'ok'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2, help="eval worker processes")
    parser.add_argument("--skip-gate", action="store_true")
    arguments = parser.parse_args()
    from knowledge_bench_db import database_setup

    database_setup("eval_run", redis=True)
    started = time.perf_counter()
    setup()
    print(f"setup took {time.perf_counter() - started:.1f} s")
    from apps.evaluation.report import run_table

    inline_run("demo-retrieval")  # warm this process's models
    run, seconds = inline_run("demo-copilot")
    print(f"\nin one process: {run.items_total} items in {seconds:.1f} s, "
          f"{100 * seconds / run.items_total:.1f} s per 100 items")  # fmt: skip
    print(run_table(run))
    run, seconds = worker_run("demo-copilot", arguments.workers)
    print(
        f"\nthrough the eval queue ({arguments.workers} prefork process(es)): {run.status}, "
        f"{run.items_total} items in {seconds:.1f} s, "
        f"{100 * seconds / run.items_total:.1f} s per 100 items"
    )
    if not arguments.skip_gate:
        folder = Path(os.environ["DESKPILOT_HOME"]) / "eval_bench"
        folder.mkdir(parents=True, exist_ok=True)
        mislabelled_csv(folder / "worse.csv")
        gate("worse (mislabelled)", folder / "worse.csv")
        gate("equal (same examples)", DEMO / "triage/train.csv")


if __name__ == "__main__":
    main()
