"""`manage.py copilot_resume`: the kill switch (every auto-send stopped, or allowed again)."""

from django.core.management.base import BaseCommand

from apps.copilot.services import policy_auto_send_pause


class Command(BaseCommand):
    help = "Allow auto-sending again (undoes copilot_pause)."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        was_paused = policy_auto_send_pause(paused=False)
        state = "resumed" if was_paused else "was not paused"
        self.stdout.write(f"auto-sending {state}")
