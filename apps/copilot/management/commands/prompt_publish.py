"""`manage.py prompt_publish FILE [--note TEXT] [--activate [--override-reason TEXT]]`: store
a new version of the draft prompt (FILE holds its body; `-` reads stdin). Without
`--activate` it is stored inactive, for an A/B experiment or a later activation; with it,
it goes live through the regression gate."""

import sys

from django.core.management.base import BaseCommand, CommandError

from apps.copilot.services import prompt_template_publish
from apps.core.exceptions import ActivationRefusedError, DeskpilotError


class Command(BaseCommand):
    help = "Publish a new draft prompt version (inactive unless --activate)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("file", help="the prompt's body; - for stdin")
        parser.add_argument("--note", default="")
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--override-reason", default="")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        try:
            if options["file"] == "-":
                body = sys.stdin.read()
            else:
                with open(options["file"], encoding="utf-8") as handle:
                    body = handle.read()
        except OSError as error:
            raise CommandError(f"cannot read {options['file']}: {error.strerror}") from error
        try:
            prompt = prompt_template_publish(
                body=body,
                note=options["note"],
                activate=options["activate"],
                override_reason=options["override_reason"],
                requested_by="manage.py prompt_publish",
            )
        except ActivationRefusedError as error:
            raise CommandError(
                f"stored as an inactive version; the regression gate refused it: {error}"
            ) from error
        except DeskpilotError as error:
            raise CommandError(str(error)) from error
        state = "active" if prompt.is_active else "stored, inactive"
        self.stdout.write(f"draft prompt v{prompt.version}: {state}")
