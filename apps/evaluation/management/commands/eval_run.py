"""`manage.py eval_run GOLDSET [--against classifier:12 prompt:3 calibration:2] [--timeout S]`:
queue a run on the `eval` queue, wait for the workers, print its figures (and, with
`--against`, the active configuration's latest run on the same set beside it)."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import DeskpilotError
from apps.core.progress import Progress, command_stream
from apps.evaluation.models import EvalRun, GoldSet, RunStatus
from apps.evaluation.report import run_table
from apps.evaluation.runs import against_parse, eval_run_create, eval_run_wait


class Command(BaseCommand):
    help = "Evaluate the pipeline on a gold set (Celery, eval queue) and print the figures."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("gold_set")
        parser.add_argument("--against", nargs="*", default=[], metavar="KIND:VERSION")
        parser.add_argument("--label", default="manual")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait")
        parser.add_argument("--no-wait", action="store_true", help="queue it and return")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        gold_set = GoldSet.objects.filter(name=options["gold_set"]).first()
        if gold_set is None:
            names = ", ".join(GoldSet.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"no gold set named {options['gold_set']!r} (there are: {names})")
        try:
            against = against_parse(options["against"])
            run = eval_run_create(gold_set=gold_set, label=options["label"], against=against)
        except DeskpilotError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"run #{run.pk}: {run.items_total} items queued on the eval queue")
        if options["no_wait"]:
            return
        with Progress(
            f"eval run #{run.pk}",
            total=run.items_total,
            unit="item",
            stream=command_stream(self.stderr),
        ) as progress:
            run = eval_run_wait(
                run_id=run.pk,
                timeout=options["timeout"],
                on_poll=lambda current: progress.update(current.items_done, detail=current.status),
            )
        if run.status == RunStatus.FAILED:
            raise CommandError(f"run #{run.pk} failed: {run.error}")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(
                f"run #{run.pk} still {run.status} at {run.progress} items after "
                f"{options['timeout']:.0f} s: is a worker consuming the eval queue?"
            )
        baseline = None
        if against:
            baseline = (
                EvalRun.objects.filter(
                    gold_set=gold_set, status=RunStatus.SUCCEEDED, config__against={}
                )
                .order_by("-id")
                .first()
            )
        self.stdout.write(run_table(run, baseline=baseline))
