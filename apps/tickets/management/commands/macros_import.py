from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.tickets.services.macros import macros_import


class Command(BaseCommand):
    help = "Create or update canned replies (macros) from a CSV file: shortcut,name,body."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("file", type=Path)

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        report = macros_import(text=path.read_text(encoding="utf-8"))
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(
            f"macros: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.errors)} line(s) refused"
        )
        if report.errors and not (report.created or report.updated or report.unchanged):
            raise CommandError("no macro imported")
