"""`manage.py kb_reembed [--all]`: embed chunks again with the active embedding model."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from apps.core.progress import Progress, command_stream
from apps.knowledge.services import chunks_reembed
from apps.llm import embeddings


class Command(BaseCommand):
    help = (
        "Re-embed chunks whose embedding model is not the active one (search only uses the "
        "active model's chunks). --all re-embeds every chunk (cached texts cost nothing)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", dest="everything")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        with Progress(
            "re-embed chunks", unit="chunk", stream=command_stream(self.stderr)
        ) as progress:
            result = chunks_reembed(
                everything=options["everything"],
                on_progress=lambda done, total: progress.update(done, total=total),
            )
        self.stdout.write(
            f"model {embeddings.model_name()}: {result.embedded} texts embedded, "
            f"{result.cached} from the cache"
        )
