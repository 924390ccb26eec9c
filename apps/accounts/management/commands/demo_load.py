"""Load the demo: an admin and an agent login, then each app's demo data.

Idempotent: users that exist are kept (their passwords too), and the data steps
are incremental imports that change nothing the second time.
"""

import secrets

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from apps.accounts.models import Role, User
from apps.accounts.services import user_create

DEMO_USERS = [("admin", Role.ADMIN), ("agent", Role.AGENT)]

# (management command, arguments): each runs if its app is installed.
DEMO_DATA_STEPS: list[tuple[str, list[str]]] = []
DEMO_DATA_STEPS.append(("kb_import", ["fixtures/demo/kb", "--source", "demo"]))


class Command(BaseCommand):
    help = "Create the demo logins and load the demo company's data (idempotent)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="where the demo is served, e.g. http://127.0.0.1:8101 (repeat for several): "
            "the demo widget key allows it (`up --demo` passes its own)",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        logins_path = settings.DESKPILOT_HOME / "demo_logins.txt"
        lines = []
        for username, role in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(9)
            user_create(username=username, password=password, role=role)
            lines.append(f"  login      {username} / {password}  ({role.label.lower()})")
        if lines:
            settings.DESKPILOT_HOME.mkdir(parents=True, exist_ok=True)
            logins_path.write_text("\n".join(lines) + "\n")
            logins_path.chmod(0o600)
        available = get_commands()
        origins = options["origin"] or DEFAULT_DEMO_ORIGINS
        for command, arguments in DEMO_DATA_STEPS:
            if command in available:
                if command == "widgetkey_create":
                    arguments = [*arguments, *(f"--origin={origin}" for origin in origins)]
                call_command(command, *arguments, stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(f"demo data loaded; logins in {logins_path}")


# Tickets and intake: a widget key for the demo site served by `up`, allowing the origins
# it is served on (`--origin`; a second run on another port adds that port's).
DEFAULT_DEMO_ORIGINS = ["http://localhost:8000", "http://127.0.0.1:8000"]
DEMO_DATA_STEPS.append(("widgetkey_create", ["Demo site", "--if-missing"]))

# Canned replies agents insert in the inbox.
DEMO_DATA_STEPS.append(("macros_import", ["fixtures/demo/macros.csv"]))

# Copilot (issue 6): intents, policies, article links, classifier, prompt, calibration.
DEMO_DATA_STEPS.append(("copilot_demo_setup", []))

# Evaluation: the demo's gold sets (the copilot's and the search's questions), so the
# regression gate and the nightly runs have something to measure from the start.
DEMO_DATA_STEPS.append(("eval_goldset_import", ["--fixtures"]))
