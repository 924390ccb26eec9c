"""`manage.py triage_train FILE.csv [--activate]`: import labelled examples and train."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.exceptions import DeskpilotError
from apps.core.progress import Progress, command_stream
from apps.triage.services import classifier_train_from_csv


class Command(BaseCommand):
    help = (
        "Train an intent classifier from a CSV with columns text,category (creates missing "
        "intents), report what was skipped and the cross-validated metrics."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="CSV file with a header text,category")
        parser.add_argument(
            "--activate", action="store_true", help="make the new version the active one"
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        path: Path = options["file"]
        self.stdout.write(f"reading {path}")
        try:
            with Progress(
                "triage_train", total=3, unit="step", stream=command_stream(self.stderr)
            ) as progress:
                result = classifier_train_from_csv(
                    path=path, activate=options["activate"], on_step=progress.step
                )
        except DeskpilotError as error:
            raise CommandError(f"training refused: {error.message}") from None
        version, metrics = result.version, result.version.metrics
        self.stdout.write(result.report.as_text())
        self.stdout.write(
            f"classifier version {version.id}: {version.example_count} examples, "
            f"{version.intent_count} intents, trained in {version.training_seconds:.0f} s "
            f"({metrics['folds']}-fold stratified cross-validation)"
        )
        precision = metrics["precision_at_confidence_0_9"]
        self.stdout.write(
            f"  accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
            f"ECE {metrics['ece']:.4f}  precision at confidence >= 0.9 "
            f"{'n/a' if precision is None else f'{precision:.4f}'} "
            f"(coverage {metrics['coverage_at_confidence_0_9']:.2%})"
        )
        if metrics["most_confused"]:
            self.stdout.write("  most confused (intent -> predicted: count):")
            for pair in metrics["most_confused"][:5]:
                self.stdout.write(f"    {pair['intent']} -> {pair['predicted']}: {pair['count']}")
        weakest = sorted(metrics["per_intent"].items(), key=lambda item: item[1]["f1"])[:5]
        self.stdout.write("  weakest intents (precision / recall):")
        for name, figures in weakest:
            self.stdout.write(f"    {name}: {figures['precision']:.2f} / {figures['recall']:.2f}")
        if version.is_active:
            self.stdout.write(self.style.SUCCESS(f"version {version.id} is now active"))
        else:
            self.stdout.write(
                f"version {version.id} is ready, not active (use --activate or the admin)"
            )
