"""A run's figures as a plain-text table (the eval_run command's output)."""

from __future__ import annotations

from apps.evaluation.models import EvalRun

ROWS = [
    ("intent accuracy", "intent_accuracy"),
    ("right article first", "article_hit1"),
    ("right article in top 5", "article_hit5"),
    ("article MRR", "article_mrr"),
    ("auto-send share", "auto_send_share"),
    ("auto-send precision", "auto_send_precision"),
    ("answerable auto-sent right", "answerable_auto_sent_right"),
    ("decision right", "decision_right"),
    ("judge: faithfulness", "faithfulness"),
    ("judge: relevance", "relevance"),
    ("input tokens / item", "input_tokens_per_item"),
    ("output tokens / item", "output_tokens_per_item"),
    ("cost USD / item", "cost_usd_per_item"),
]


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _title(run: EvalRun) -> str:
    config = run.config
    return (
        f"run #{run.pk} ({run.label}): classifier {config.get('classifier_version_id')}, "
        f"prompt v{config.get('prompt_version')}, calibration "
        f"{config.get('calibration_version')}, knowledge {config.get('knowledge_version')}"
    )


def run_table(run: EvalRun, *, baseline: EvalRun | None = None) -> str:
    runs = [run] if baseline is None else [run, baseline]
    width = 28
    lines = [f"gold set {run.gold_set.name}: {run.items_total} items"]
    names = "AB"
    lines += [f"  {name} = {_title(r)}" for name, r in zip(names, runs, strict=False)]
    lines += [f"{'':{width}}" + "".join(f"{name:>14}" for name in names[: len(runs)])]
    for label, key in ROWS:
        lines.append(f"{label:{width}}" + "".join(f"{_cell(r.metrics.get(key)):>14}" for r in runs))
    for name, title in (("decisions", "decision"), ("handoffs_by_reason", "handoff")):
        keys = sorted({k for r in runs for k in r.metrics.get(name, {})})
        for key in keys:
            lines.append(
                f"{f'{title}: {key}':{width}}"
                + "".join(f"{_cell(r.metrics.get(name, {}).get(key, 0)):>14}" for r in runs)
            )
    stages = sorted({s for r in runs for s in r.metrics.get("latency_ms", {})})
    for stage in stages:
        cells = []
        for r in runs:
            p = r.metrics.get("latency_ms", {}).get(stage)
            cells.append(f"{p['p50']:.0f}/{p['p95']:.0f}/{p['p99']:.0f}" if p else "-")
        lines.append(f"{f'{stage} ms p50/p95/p99':{width}}" + "".join(f"{c:>14}" for c in cells))
    if run.metrics.get("errors"):
        lines.append(f"{run.metrics['errors']} item(s) failed: see the run's results in the admin")
    return "\n".join(lines)
