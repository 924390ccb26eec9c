"""`manage.py eval_recalibrate [--days 90] [--no-activate]`: refit the confidence calibration
on the live drafts agents and customers judged, store it as a new version and activate it
through the regression gate (beat does it every CALIBRATION_REFIT_DAYS)."""

from django.core.management.base import BaseCommand, CommandError

from apps.evaluation.recalibration import calibration_refit_from_live


class Command(BaseCommand):
    help = "Refit the calibration from live outcomes (through the regression gate)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--no-activate", action="store_true")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        refit = calibration_refit_from_live(
            days=options["days"], activate=not options["no_activate"]
        )
        self.stdout.write(f"{refit.labelled} judged drafts, {refit.right} of them right")
        if refit.skipped:
            raise CommandError(f"not refitted: {refit.skipped}")
        calibration = refit.calibration
        assert calibration is not None
        metrics = calibration.metrics
        self.stdout.write(
            f"calibration v{calibration.version}: threshold {calibration.auto_send_threshold:.3f} "
            f"for precision {calibration.target_precision}; cross-validated "
            + ", ".join(f"{k} {v}" for k, v in metrics.items() if isinstance(v, float))
        )
        if refit.refused:
            raise CommandError(f"stored inactive; the regression gate refused it: {refit.refused}")
        self.stdout.write("active" if refit.activated else "stored inactive")
