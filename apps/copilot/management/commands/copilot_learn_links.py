"""`manage.py copilot_learn_links`: learn intent→article links from the intents' examples."""

from django.core.management.base import BaseCommand

from apps.copilot.links import intent_links_learn_active


class Command(BaseCommand):
    help = (
        "Learn which article answers each intent, from the active classifier's training "
        "examples and the knowledge search (the pipeline does this by itself before the first "
        "message after a retraining or a knowledge-base change). Idempotent."
    )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        learning = intent_links_learn_active()
        if learning is None:
            self.stdout.write("no active classifier: nothing to learn from")
            return
        self.stdout.write(
            f"{learning.links} links for {learning.intents} intents "
            f"({learning.unsupported} left unlinked: their examples' article has no passage "
            f"about them) "
            f"({learning.examples} examples searched, {learning.seconds:.1f} s) for classifier "
            f"version {learning.classifier_version_id}"
        )
