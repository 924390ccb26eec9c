from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from apps.copilot.demo import demo_setup

DEMO = Path("fixtures/demo")


class Command(BaseCommand):
    help = (
        "Set up the demo copilot: intents and policies and their article links (intents.csv), "
        "the classifier (train.csv), the default prompt, the shipped calibration. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--intents", type=Path, default=DEMO / "triage/intents.csv")
        parser.add_argument("--train", type=Path, default=DEMO / "triage/train.csv")
        parser.add_argument("--calibration", type=Path, default=DEMO / "copilot/calibration.json")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        for line in demo_setup(
            intents=options["intents"], train=options["train"], calibration=options["calibration"]
        ):
            self.stdout.write(f"copilot: {line}")
