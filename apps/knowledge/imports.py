"""Folder imports: walk paths, parse each file, upsert in batches, report per file.

A file that cannot be read or parsed is reported with its reason and the import goes on;
its stored article (if any) is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from apps.core.exceptions import NotFoundError, ValidationError
from apps.knowledge.models import ImportRun, ImportState, Source, SourceKind
from apps.knowledge.parsing import SUPPORTED_SUFFIXES, ParseError, document_parse
from apps.knowledge.services import (
    ArticleInput,
    UpsertReport,
    articles_unpublish,
    articles_upsert,
    source_get_or_create,
)
from apps.knowledge.signals import knowledge_imported

# Files parsed, chunked and embedded together: big enough for efficient model batches.
FILES_PER_BATCH = 32
# An import path that names a folder in the media storage (the admin's uploads), which may be
# an object store the worker reaches from another machine: "storage:knowledge-uploads/<id>".
STORAGE_SCHEME = "storage:"
logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0
    cached: int = 0
    chunks: int = 0

    @property
    def processed(self) -> int:
        return len(self.added) + len(self.updated) + len(self.unchanged) + len(self.failed)

    def add(self, upserted: UpsertReport) -> None:
        """Count one batch's outcomes from `articles_upsert`."""
        for outcome in upserted.outcomes:
            if outcome.result == "failed":
                self.failed.append((outcome.external_id, outcome.reason))
            else:
                getattr(self, outcome.result).append(outcome.external_id)
        self.embedded += upserted.embedded
        self.cached += upserted.cached
        self.chunks += upserted.chunks

    def summary(self) -> str:
        return (
            f"added {len(self.added)}, updated {len(self.updated)}, "
            f"unchanged {len(self.unchanged)}, removed {self.removed}, "
            f"failed {len(self.failed)}; {self.chunks} chunks written, "
            f"{self.embedded} texts embedded, {self.cached} from the cache"
        )


ProgressCallback = Callable[[int, int, ImportReport], None]


@dataclass
class ArticleBatch:
    """Parsed articles upserted into `source` FILES_PER_BATCH at a time, each batch's
    outcomes counted into `report`; `on_flush` runs after each batch (progress)."""

    source: Source
    report: ImportReport
    on_flush: Callable[[], None] | None = None
    items: list[ArticleInput] = field(default_factory=list)

    def add(self, item: ArticleInput) -> None:
        self.items.append(item)
        if len(self.items) >= FILES_PER_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        self.report.add(articles_upsert(source=self.source, articles=self.items))
        self.items.clear()
        if self.on_flush:
            self.on_flush()


def files_collect(*, paths: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """(external_id, file) pairs: a folder's files by their path relative to that folder.

    Hidden files and folders and unsupported extensions are skipped. Raises NotFoundError
    for a path that does not exist.
    """
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise NotFoundError(f"no such file or folder: {raw}")
        if path.is_file():
            found.append((path.name, path))
            continue
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if file.is_file() and file.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append((relative.as_posix(), file))
    return found


def _read(file: Path) -> bytes:
    size = file.stat().st_size
    limit = settings.KNOWLEDGE_MAX_FILE_BYTES
    if size > limit:
        raise ParseError(
            f"file is {size / 1_048_576:.1f} MB, over the {limit / 1_048_576:.1f} MB limit"
        )
    return file.read_bytes()


def kb_import(
    *,
    paths: Sequence[str | Path],
    source_name: str,
    prune: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import files into `source_name` incrementally; with `prune`, unpublish the missing.

    Idempotent: a second run over the same files changes nothing and embeds nothing.
    """
    if prune and any(Path(path).is_file() for path in paths):
        # Pruning after importing one file would unpublish the rest of the source.
        raise ValidationError("--prune needs folders, not single files", field="paths")
    source = source_get_or_create(name=source_name, kind=SourceKind.FOLDER)
    files = files_collect(paths=paths)
    report = ImportReport()
    seen: set[str] = set()
    batch = ArticleBatch(
        source=source,
        report=report,
        on_flush=(lambda: on_progress(report.processed, len(files), report))
        if on_progress
        else None,
    )

    for external_id, file in files:
        if external_id in seen:
            report.failed.append((external_id, f"duplicate external_id (also at {file})"))
            continue
        seen.add(external_id)
        try:
            document = document_parse(name=file.name, data=_read(file))
        except ParseError as error:
            report.failed.append((external_id, error.reason))
            continue
        except OSError as error:
            report.failed.append((external_id, f"unreadable: {error.strerror or error}"))
            continue
        batch.add(ArticleInput.from_document(external_id=external_id, document=document))
    batch.flush()
    if prune:
        # A file that is there but failed to parse keeps its stored article published.
        report.removed = articles_unpublish(source=source, keep_external_ids=seen)
    if on_progress:
        on_progress(report.processed, len(files), report)
    return report


def import_announce(*, report: ImportReport, source_name: str) -> None:
    """Tell the apps above that a finished import changed the knowledge base (see
    apps.knowledge.signals); nothing when it changed nothing. A failing listener is logged,
    never the import's failure."""
    if not (report.added or report.updated or report.removed):
        return
    for receiver, outcome in knowledge_imported.send_robust(
        sender=ImportReport, report=report, source_name=source_name
    ):
        if isinstance(outcome, Exception):
            logger.warning("knowledge_imported listener %r failed: %r", receiver, outcome)


def import_run_create(*, paths: Sequence[str], source_name: str, prune: bool) -> ImportRun:
    """Queue an import on the `ingest` queue; progress is kept on the returned ImportRun."""
    from apps.knowledge.tasks import import_run_execute_task

    if not paths:
        raise ValidationError("give at least one path", field="paths")
    resolved = []
    for raw in paths:
        if raw.startswith(STORAGE_SCHEME):
            if not storages["default"].listdir(raw.removeprefix(STORAGE_SCHEME))[1]:
                raise NotFoundError(f"no files in the media storage under {raw}")
            resolved.append(raw)
            continue
        path = Path(raw).resolve()
        if not path.exists():
            raise NotFoundError(f"no such file or folder: {raw}")
        resolved.append(str(path))
    source = source_get_or_create(name=source_name)
    run = ImportRun.objects.create(source=source, paths=resolved, prune=prune)
    transaction.on_commit(
        lambda: import_run_execute_task.apply_async(args=[run.pk], queue="ingest")
    )
    return run


@contextlib.contextmanager
def storage_fetched(paths: Sequence[str]) -> Iterator[list[str]]:
    """Local paths for `paths`: each "storage:" folder copied from the media storage into a
    scratch folder kept until the block ends (its files keep their names, which are the
    articles' external ids); other paths as they are."""
    with tempfile.TemporaryDirectory(prefix="deskpilot-import-") as scratch:
        local = []
        storage = storages["default"]
        for position, raw in enumerate(paths):
            if not raw.startswith(STORAGE_SCHEME):
                local.append(raw)
                continue
            prefix = raw.removeprefix(STORAGE_SCHEME).strip("/")
            folder = Path(scratch) / str(position) / PurePosixPath(prefix).name
            folder.mkdir(parents=True)
            for name in storage.listdir(prefix)[1]:
                with (
                    storage.open(f"{prefix}/{name}", "rb") as source,
                    open(folder / name, "wb") as target,
                ):
                    shutil.copyfileobj(source, target)
            local.append(str(folder))
        yield local


def import_runs_reclaim(*, stale_after_seconds: float | None = None) -> int:
    """Mark failed the runs still "running" with no progress for longer than any batch takes
    (the worker running them died), saying so; returns how many. What they imported is kept,
    and running the import again skips unchanged files."""
    after = (
        settings.KNOWLEDGE_IMPORT_STALE_SECONDS
        if stale_after_seconds is None
        else stale_after_seconds
    )
    return ImportRun.objects.filter(
        state=ImportState.RUNNING, updated_at__lt=timezone.now() - timedelta(seconds=after)
    ).update(
        state=ImportState.FAILED,
        detail=(
            f"no progress for {after / 60:.0f} minutes: the worker running it was lost. "
            "Articles imported so far are kept; run the import again (unchanged files are "
            "skipped)."
        ),
        finished_at=timezone.now(),
    )


def import_run_execute(*, import_run_id: int) -> ImportRun | None:
    """Run a queued import. Idempotent: only a QUEUED run starts; a gone run is ignored."""
    claimed = ImportRun.objects.filter(pk=import_run_id, state=ImportState.QUEUED).update(
        state=ImportState.RUNNING, started_at=timezone.now(), updated_at=timezone.now()
    )
    if not claimed:
        return ImportRun.objects.filter(pk=import_run_id).first()
    run = ImportRun.objects.select_related("source").get(pk=import_run_id)

    def progress(done: int, total: int, report: ImportReport) -> None:
        ImportRun.objects.filter(pk=run.pk).update(
            updated_at=timezone.now(),  # the reclaim measures staleness by it
            total=total,
            processed=done,
            added=len(report.added),
            updated=len(report.updated),
            unchanged=len(report.unchanged),
            failed=len(report.failed),
            embedded=report.embedded,
        )

    try:
        with storage_fetched(run.paths) as paths:
            report = kb_import(
                paths=paths, source_name=run.source.name, prune=run.prune, on_progress=progress
            )
    except Exception as error:
        # Terminal: recorded on the run for a human; the task does not retry a broken import.
        ImportRun.objects.filter(pk=run.pk, state=ImportState.RUNNING).update(
            state=ImportState.FAILED, detail=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    # Only a run still marked running: one the reclaim failed (and told the admin to run
    # again) stays failed, so its outcome is never reported twice.
    ImportRun.objects.filter(pk=run.pk, state=ImportState.RUNNING).update(
        state=ImportState.SUCCEEDED,
        processed=report.processed,
        added=len(report.added),
        updated=len(report.updated),
        unchanged=len(report.unchanged),
        removed=report.removed,
        failed=len(report.failed),
        embedded=report.embedded,
        errors=[{"path": path, "reason": reason} for path, reason in report.failed],
        detail=report.summary(),
        finished_at=timezone.now(),
    )
    import_announce(report=report, source_name=run.source.name)
    run.refresh_from_db()
    return run
