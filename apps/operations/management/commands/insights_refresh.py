from django.core.management.base import BaseCommand, CommandParser

from apps.operations.rollups import figures_refresh


class Command(BaseCommand):
    help = "Recompute the insights page's daily figures (beat does it for the last week)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="how many days back (30)")

    def handle(self, *args: object, **options: int) -> None:
        if options["days"] < 1:
            self.stderr.write("--days must be at least 1")
            raise SystemExit(2)
        count = figures_refresh(days=options["days"])
        self.stdout.write(f"recomputed the figures of {count} days")
