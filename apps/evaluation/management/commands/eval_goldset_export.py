"""`manage.py eval_goldset_export NAME [--format jsonl|tsv]`: the gold set on standard output."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import DeskpilotError
from apps.evaluation.goldsets import gold_set_export
from apps.evaluation.models import GoldSet


class Command(BaseCommand):
    help = "Write a gold set as JSON lines or TSV (importable again)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("name")
        parser.add_argument("--format", default="jsonl", choices=["jsonl", "tsv"])

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        gold_set = GoldSet.objects.filter(name=options["name"]).first()
        if gold_set is None:
            raise CommandError(f"no gold set named {options['name']!r}")
        try:
            for line in gold_set_export(gold_set=gold_set, fmt=options["format"]):
                self.stdout.write(line)
        except DeskpilotError as error:
            raise CommandError(str(error)) from error
