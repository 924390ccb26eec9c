from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import api_key_create
from apps.core.exceptions import ValidationError


class Command(BaseCommand):
    help = "Create an API key and print it once (only its hash is stored)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("name")
        parser.add_argument(
            "--scopes",
            default="read,write",
            help="comma-separated scopes: read, write (default both)",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        try:
            api_key, key = api_key_create(name=options["name"], scopes=scopes)
        except ValidationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(key)
        self.stderr.write(
            f"API key {api_key.name!r} created with scopes {', '.join(api_key.scopes)}. "
            "Store it now: it cannot be shown again."
        )
