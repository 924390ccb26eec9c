"""`manage.py eval_goldset_import FILE --name NAME [--replace]` (TSV or JSON lines), or
`manage.py eval_goldset_import --fixtures` (the gold sets the repository ships)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.evaluation.goldsets import FIXTURE_SETS, gold_set_import


class Command(BaseCommand):
    help = "Import a gold set from a TSV or JSON-lines file (see apps/evaluation/goldsets.py)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("file", nargs="?", help="a .tsv or .jsonl file")
        parser.add_argument("--name", help="the gold set's name (created when new)")
        parser.add_argument(
            "--replace", action="store_true", help="remove the set's items not in the file"
        )
        parser.add_argument(
            "--fixtures",
            action="store_true",
            help=f"load the shipped gold sets ({', '.join(FIXTURE_SETS)})",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if options["fixtures"]:
            files = {name: path for name, path in FIXTURE_SETS.items()}
        elif options["file"] and options["name"]:
            files = {options["name"]: Path(options["file"])}
        else:
            raise CommandError("give FILE and --name NAME, or --fixtures")
        refused = 0
        for name, path in files.items():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise CommandError(f"{path}: cannot be read ({error})") from error
            gold_set, report = gold_set_import(
                text=text, name=name, origin=path.name, replace=options["replace"]
            )
            for line in [*report.errors, *report.warnings]:
                self.stdout.write(f"  {path.name} {line}")
            self.stdout.write(f"{gold_set.name}: {report.summary()}")
            refused += len(report.errors)
        if refused:
            raise CommandError(f"{refused} line(s) refused (listed above); the others were stored")
