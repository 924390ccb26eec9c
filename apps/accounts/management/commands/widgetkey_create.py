from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import WidgetKey
from apps.accounts.services import widget_key_create, widget_key_origins_add
from apps.core.exceptions import ValidationError


class Command(BaseCommand):
    help = (
        "Create a chat widget key for a website and print its public key (and, on stderr, "
        "its identity secret)."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("site_name")
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="an allowed origin, e.g. https://www.example.com (repeat for several)",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="print the existing key of this site instead of creating a second one (and "
            "allow the given origins on it too)",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if options["if_missing"]:
            existing = WidgetKey.objects.filter(site_name=options["site_name"].strip()).first()
            if existing is not None:
                try:
                    added = widget_key_origins_add(widget_key=existing, origins=options["origin"])
                except ValidationError as error:
                    raise CommandError(error.message) from None
                self.stdout.write(existing.public_key)
                if added:
                    self.stderr.write(f"now also allowed: {', '.join(added)}")
                return
        try:
            widget_key = widget_key_create(
                site_name=options["site_name"], allowed_origins=options["origin"]
            )
        except ValidationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(widget_key.public_key)
        self.stderr.write(
            f"widget key for {widget_key.site_name!r}, allowed origins: "
            f"{', '.join(widget_key.allowed_origins) or '(none yet: add them in the admin)'}"
        )
        # Printed here once (and shown to admins in the admin): stdout stays the public key
        # alone, for scripts.
        self.stderr.write(
            f"identity secret (keep it on your server; it signs signed-in visitors, see "
            f"docs/widget-identity.md): {widget_key.identity_secret}"
        )
