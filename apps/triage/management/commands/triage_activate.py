"""`manage.py triage_activate VERSION [--override-reason TEXT]`: make a trained classifier
version the active one, through the regression gate (ACTIVATION_GATE); a refusal names the
metrics, and a written reason overrides it (the gate's record keeps the reason)."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import DeskpilotError
from apps.triage.services import classifier_version_activate


class Command(BaseCommand):
    help = "Activate a classifier version once the regression gate found it not worse."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("version", type=int)
        parser.add_argument("--override-reason", default="", help="activate even if refused")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        try:
            version = classifier_version_activate(
                version_id=options["version"],
                override_reason=options["override_reason"],
                requested_by="manage.py triage_activate",
            )
        except DeskpilotError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"classifier version {version.id} is now active"))
