"""`manage.py kb_scan [--source NAME]`: list the published articles that carry instructions
addressed to a model (an indirect prompt injection); exit status 1 when any does."""

import sys

from django.core.management.base import BaseCommand

from apps.copilot.knowledge_scan import articles_injection_scan


class Command(BaseCommand):
    help = "List knowledge-base articles that carry instructions addressed to a model."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--source", help="only this source's articles")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        flagged = articles_injection_scan(source_name=options["source"])
        for article in flagged:
            self.stdout.write(article.describe())
        self.stdout.write(f"{len(flagged)} article(s) carry instructions addressed to a model")
        if flagged:
            sys.exit(1)
