"""Celery adapters for ingestion: take ids, call one service."""

from __future__ import annotations

from celery import shared_task

from apps.knowledge.models import Source, SourceKind


@shared_task(name="knowledge.import_run_execute", acks_late=True)
def import_run_execute_task(import_run_id: int) -> str | None:
    """Run a queued ImportRun (idempotent: a run already started or finished is skipped)."""
    from apps.knowledge.imports import import_run_execute

    run = import_run_execute(import_run_id=import_run_id)
    return run.state if run else None


@shared_task(name="knowledge.sitemap_crawl", acks_late=True)
def sitemap_crawl_task(source_id: int) -> str | None:
    from apps.knowledge.sitemap import sitemap_crawl

    source = Source.objects.filter(pk=source_id, kind=SourceKind.SITEMAP, is_active=True).first()
    if source is None:
        return None
    return sitemap_crawl(source=source).summary()


@shared_task(name="knowledge.sitemap_sources_crawl")
def sitemap_sources_crawl_task() -> int:
    """Periodic (beat): queue one crawl per active sitemap source."""
    ids = list(
        Source.objects.filter(kind=SourceKind.SITEMAP, is_active=True).values_list("id", flat=True)
    )
    for source_id in ids:
        sitemap_crawl_task.apply_async(args=[source_id], queue="ingest")
    return len(ids)


@shared_task(name="knowledge.import_runs_reclaim")
def import_runs_reclaim_task() -> int:
    """Periodic (beat): fail the import runs whose worker was lost."""
    from apps.knowledge.imports import import_runs_reclaim

    return import_runs_reclaim()
