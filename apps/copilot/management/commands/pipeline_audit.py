"""`manage.py pipeline_audit`: did every recent customer message get exactly what it should?"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.copilot.integrity import pipeline_integrity


class Command(BaseCommand):
    help = (
        "Audit the copilot's outcomes for recent customer messages (after an incident, a "
        "restart): messages still undecided, handoffs without a reason, replies sent twice. "
        "Exits 1 when any is found."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--hours",
            type=float,
            default=24.0,
            help="audit tickets with a customer message in the last N hours (default 24)",
        )
        parser.add_argument(
            "--ticket",
            type=int,
            action="append",
            default=[],
            help="audit this ticket (repeat for several) instead of a time window",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if options["hours"] <= 0:
            raise CommandError(f"--hours must be above 0, not {options['hours']:g}")
        if options["ticket"]:
            report = pipeline_integrity(ticket_ids=options["ticket"])
        else:
            since = timezone.now() - timedelta(hours=options["hours"])
            report = pipeline_integrity(since=since)
        for line in report.lines():
            self.stdout.write(line)
        if not report.sound:
            raise CommandError("the audit found messages without the outcome they should have")
