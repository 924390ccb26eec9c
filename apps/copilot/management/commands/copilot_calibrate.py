import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.copilot.calibration import calibration_run


class Command(BaseCommand):
    help = (
        "Calibrate draft confidence on a gold TSV (question, intent, expected_article, note) "
        "in evaluation mode: fit on half, pick the auto-send threshold for the target "
        "precision, report the held-out half. Stores and activates the calibration."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("gold", type=Path)
        parser.add_argument("--target-precision", type=float, default=0.97)
        parser.add_argument("--no-activate", action="store_true")
        parser.add_argument("--output", type=Path, help="Also write the calibration as JSON here.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        path: Path = options["gold"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        try:
            report = calibration_run(
                gold_path=path,
                target_precision=options["target_precision"],
                activate=not options["no_activate"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        metrics = report.fitted["metrics"]
        self.stdout.write(
            f"fitted on {report.fit_questions} questions ({metrics['examples']} drafted, "
            f"{metrics['correct']} correct); held out {report.held_out_questions}"
        )
        self.stdout.write(
            f"cross-validated ECE {metrics['expected_calibration_error']:.3f}, "
            f"Brier {metrics['brier']:.3f}"
        )
        self.stdout.write(
            f"auto-send threshold {report.threshold:.4f} for precision "
            f"≥ {options['target_precision']}"
            + (" (none reached it: nothing is auto-sent)" if report.threshold >= 1.0 else "")
        )
        for name, figures in (("fit", report.fit_figures), ("held-out", report.held_out_figures)):
            precision = "n/a" if figures.precision is None else f"{figures.precision:.3f}"
            self.stdout.write(
                f"{name}: auto-sent {figures.auto_sent}/{figures.questions} "
                f"({figures.auto_sent_share:.1%}), precision {precision}; "
                f"decisions {figures.decisions}; reasons {figures.reasons}"
            )
        calibration = report.calibration
        self.stdout.write(
            f"calibration v{calibration.version} stored"
            + (" and active" if calibration.is_active else "")
        )
        if report.activation_refused:
            self.stdout.write(f"not activated: {report.activation_refused}")
        if options["output"]:
            options["output"].parent.mkdir(parents=True, exist_ok=True)
            options["output"].write_text(
                json.dumps(
                    {
                        "weights": calibration.weights,
                        "metrics": calibration.metrics,
                        "auto_send_threshold": calibration.auto_send_threshold,
                        "target_precision": calibration.target_precision,
                        "gold_set": calibration.gold_set,
                    },
                    indent=2,
                )
                + "\n"
            )
