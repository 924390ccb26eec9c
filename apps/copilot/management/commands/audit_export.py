"""`manage.py audit_export [--since YYYY-MM-DD]`: every draft and its model calls as JSON
lines on standard output (apps.copilot.audit)."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from apps.copilot.audit import audit_lines


class Command(BaseCommand):
    help = "Print the audit trail of AI actions (drafts, decisions, model calls) as JSON lines."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--since", help="only drafts created on or after this date")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        since = None
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"]).replace(tzinfo=UTC)
            except ValueError as error:
                raise CommandError(f"--since {options['since']!r}: not a date") from error
        for line in audit_lines(since=since):
            self.stdout.write(line)
