"""`manage.py customer_erase ID|EMAIL|EXTERNAL_ID [--reason TEXT] [--dry-run]`: erase a
customer's personal data everywhere it lives (apps.privacy.services) and print what went."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import DeskpilotError
from apps.privacy.services import customer_erase
from apps.tickets.services.erasure import customers_find


class Command(BaseCommand):
    help = (
        "Erase one customer's personal data: tickets' text, drafts, model-call text, caches, "
        "training examples made of their messages; counts stay. An email address also finds "
        "widget visitors who gave it."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("customer", help="a customer id, an email address or an external id")
        parser.add_argument("--reason", default="", help="kept in the erasure record")
        parser.add_argument(
            "--dry-run", action="store_true", help="only list the customers it would erase"
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        try:
            found = customers_find(reference=options["customer"])
        except DeskpilotError as error:
            raise CommandError(str(error)) from error
        for customer, why in found:
            tickets = customer.tickets.count()
            self.stdout.write(f"customer #{customer.pk} ({why}): {tickets} ticket(s)")
        if options["dry_run"]:
            self.stdout.write("dry run: nothing erased")
            return
        record = customer_erase(
            customers=[customer for customer, _ in found],
            reason=options["reason"] or "manage.py customer_erase",
        )
        for key, value in record.counts.items():
            self.stdout.write(f"  {key}: {value}")
        self.stdout.write(self.style.SUCCESS(f"erased {record.subject} (erasure #{record.pk})"))
