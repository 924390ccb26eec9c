"""`manage.py experiment start|report|stop|promote|list`: A/B experiments on live traffic.

    experiment start NAME --arm control --arm new:prompt=2 [--arm fast:model=draft-fast]
        [--arm strict:threshold=0.95] [--arm NAME:...:share=30] [--metric accepted]
        [--baseline 0.4] [--effect 0.05] [--alpha 0.05] [--power 0.8] [--hypothesis TEXT]
    experiment report NAME [--json]
    experiment stop NAME --reason TEXT
    experiment promote NAME [--arm ARM --override-reason TEXT]
    experiment list

The first arm is the control: what it leaves unset is pinned to the configuration active
when the experiment starts. Shares default to equal.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.copilot.models import Experiment, ExperimentMetric
from apps.copilot.services.experiments import arm_spec_parse, experiment_start
from apps.core.exceptions import ActivationRefusedError, DeskpilotError
from apps.evaluation.experiments import (
    experiment_by_reference,
    experiment_promote,
    experiment_report,
    experiment_stop,
)


def report_table(report: dict) -> str:
    lines = [
        f"experiment {report['name']} ({report['status']}), primary metric "
        f"{report['primary_metric']}",
        f"stopping rule: {report['stopping_rule']}",
        "",
        f"{'arm':<14}{'runs':<32}{'drafts':>7}{'auto-sent':>18}{'accepted':>18}"
        f"{'rejected':>18}{'cost/draft':>12}{'p95 ms':>9}",
    ]

    def share(arm: dict, metric: str) -> str:
        figure = arm["shares"][metric]
        if figure["share"] is None:
            return "-"
        return f"{figure['share']:.3f} [{figure['low']:.2f},{figure['high']:.2f}]"

    for arm in report["arms"]:
        cost = arm["means"]["cost_usd"]["mean"]
        p95 = arm["latency_ms"]["p95"]
        lines.append(
            f"{arm['name'] + (' *' if arm['control'] else ''):<14}{arm['runs'][:31]:<32}"
            f"{arm['drafts']:>7}{share(arm, 'auto_sent'):>18}{share(arm, 'accepted'):>18}"
            f"{share(arm, 'rejected'):>18}"
            f"{'-' if cost is None else f'{cost:.5f}':>12}{'-' if p95 is None else p95:>9}"
            + (f"  stopped: {arm['stopped']}" if arm["stopped"] else "")
        )
    lines.append("")
    for comparison in report["comparisons"]:
        if comparison.get("difference") is None:
            lines.append(f"{comparison['arm']} vs control: no drafts yet")
            continue
        lines.append(
            f"{comparison['arm']} vs control on {comparison['metric']}: "
            f"{comparison['difference']:+.4f} [{comparison['low']:+.4f}, "
            f"{comparison['high']:+.4f}] at {comparison['confidence']:.3f}: "
            f"{comparison['verdict']}"
        )
    verdict = report["verdict"]
    lines.append(
        "verdict: provisional, not at the horizon yet (do not decide on it)"
        if verdict is None
        else f"verdict: winner {verdict['winner'] or 'none'}"
        + ("" if verdict["winner"] else f" ({verdict['by']})")
    )
    return "\n".join(lines)


class Command(BaseCommand):
    help = "A/B experiments on live traffic: start, report, stop, promote the winner, list."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="start an experiment")
        start.add_argument("name")
        start.add_argument("--arm", action="append", required=True, metavar="SPEC")
        start.add_argument(
            "--metric", default=ExperimentMetric.ACCEPTED, choices=ExperimentMetric.values
        )
        start.add_argument("--baseline", type=float, default=0.4, help="expected control rate")
        start.add_argument("--effect", type=float, default=0.05, help="smallest difference")
        start.add_argument("--alpha", type=float, default=0.05)
        start.add_argument("--power", type=float, default=0.8)
        start.add_argument("--hypothesis", default="")
        report = sub.add_parser("report", help="per-arm outcomes with intervals")
        report.add_argument("name")
        report.add_argument("--json", action="store_true")
        stop = sub.add_parser("stop", help="stop before the horizon (no verdict)")
        stop.add_argument("name")
        stop.add_argument("--reason", required=True)
        promote = sub.add_parser("promote", help="make the winner live, through the gate")
        promote.add_argument("name")
        promote.add_argument("--arm", default="")
        promote.add_argument("--override-reason", default="")
        sub.add_parser("list", help="every experiment")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        try:
            getattr(self, f"_{options['action']}")(options)
        except ActivationRefusedError as error:
            raise CommandError(f"the regression gate refused: {error}") from error
        except DeskpilotError as error:
            raise CommandError(str(error)) from error

    def _start(self, options: dict) -> None:
        experiment = experiment_start(
            name=options["name"],
            arms=[arm_spec_parse(spec) for spec in options["arm"]],
            primary_metric=options["metric"],
            baseline_rate=options["baseline"],
            minimum_effect=options["effect"],
            alpha=options["alpha"],
            power=options["power"],
            hypothesis=options["hypothesis"],
            created_by="manage.py experiment",
        )
        self.stdout.write(report_table(experiment_report(experiment)))

    def _report(self, options: dict) -> None:
        report = experiment_report(experiment_by_reference(options["name"]))
        self.stdout.write(json.dumps(report, indent=2) if options["json"] else report_table(report))

    def _stop(self, options: dict) -> None:
        experiment_stop(
            experiment=experiment_by_reference(options["name"]), reason=options["reason"]
        )
        self.stdout.write(f"experiment {options['name']} stopped")

    def _promote(self, options: dict) -> None:
        changed = experiment_promote(
            experiment=experiment_by_reference(options["name"]),
            arm_name=options["arm"],
            override_reason=options["override_reason"],
            requested_by="manage.py experiment promote",
        )
        self.stdout.write("promoted: " + "; ".join(changed))

    def _list(self, options: dict) -> None:
        for experiment in Experiment.objects.prefetch_related("arms"):
            arms = ", ".join(f"{a.name} ({a.changes()})" for a in experiment.arms.all())
            self.stdout.write(f"{experiment.name}: {experiment.status}; arms {arms}")
