"""`manage.py copilot_pause`: the kill switch (every auto-send stopped, or allowed again)."""

from django.core.management.base import BaseCommand

from apps.copilot.services import policy_auto_send_pause


class Command(BaseCommand):
    help = (
        "Stop all auto-sending at once, on every worker: drafts are still written for "
        "agents, with reason auto_send_paused."
    )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        was_paused = policy_auto_send_pause(paused=True)
        state = "was already paused" if was_paused else "paused"
        self.stdout.write(f"auto-sending {state}")
