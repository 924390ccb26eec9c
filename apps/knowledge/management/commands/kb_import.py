"""`manage.py kb_import PATH [PATH…] [--source NAME] [--prune] [--queue]`."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.exceptions import DeskpilotError
from apps.core.progress import Progress, command_stream
from apps.knowledge.imports import ImportReport, import_announce, import_run_create, kb_import


class Command(BaseCommand):
    help = (
        "Import Markdown, HTML, text and PDF files (folders are walked) into a knowledge "
        "source. Incremental: unchanged files are skipped; --prune unpublishes missing ones."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="files or folders")
        parser.add_argument("--source", default="default", help="source name (default: default)")
        parser.add_argument(
            "--prune", action="store_true", help="unpublish articles whose file is gone"
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="run on the Celery `ingest` queue; follow progress in the admin (Import runs)",
        )

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        paths = [self._resolve(raw) for raw in options["paths"]]
        try:
            if options["queue"]:
                run = import_run_create(
                    paths=[str(path) for path in paths],
                    source_name=options["source"],
                    prune=options["prune"],
                )
                self.stdout.write(f"queued import run #{run.pk} on the ingest queue")
                return
            with Progress(
                f"import into {options['source']}", unit="file", stream=command_stream(self.stderr)
            ) as progress:
                report = kb_import(
                    paths=paths,
                    source_name=options["source"],
                    prune=options["prune"],
                    on_progress=lambda done, total, report: progress.update(
                        done, total=total, detail=f"{len(report.failed)} failed"
                    ),
                )
        except DeskpilotError as error:
            raise CommandError(error.message) from error
        self._summary(report, options["source"])
        import_announce(report=report, source_name=options["source"])

    @staticmethod
    def _resolve(raw: str) -> Path:
        # Relative paths (demo_load passes fixtures/demo/kb) resolve against the project.
        path = Path(raw)
        if not path.is_absolute() and not path.exists():
            path = Path(settings.BASE_DIR) / path
        return path

    def _summary(self, report: ImportReport, source: str) -> None:
        self.stdout.write(f"source {source}: {report.summary()}")
        for path, reason in report.failed:
            self.stdout.write(f"  failed  {path}: {reason}")
