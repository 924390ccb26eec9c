from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone

from apps.core.exceptions import ValidationError
from apps.knowledge.imports import import_runs_reclaim, kb_import
from apps.knowledge.models import (
    Article,
    ArticleStatus,
    Chunk,
    EmbeddingCache,
    ImportRun,
    ImportState,
)
from apps.knowledge.parsing import document_parse
from apps.knowledge.selectors import chunk_search
from apps.knowledge.services import ArticleInput, article_replace, source_get_or_create
from apps.knowledge.signals import knowledge_imported
from tests.knowledge.conftest import pdf_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

REFUNDS = (
    "# Refunds\n\nWe refund within 5 working days.\n\n## PayPal\n\nPayPal refunds take a day.\n"
)
SHIPPING = "# Shipping\n\nParcels leave our warehouse the same day.\n"


@pytest.fixture
def help_center(tmp_path):
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "refunds.md").write_text(REFUNDS)
    (tmp_path / "shipping.md").write_text(SHIPPING)
    (tmp_path / "faq.txt").write_text("Opening hours\n\nWe answer from 9 to 5.\n")
    (tmp_path / "guide.pdf").write_bytes(pdf_bytes([["Cast iron care", "Oil it after washing."]]))
    return tmp_path


def state():
    """Everything an import may change: article versions, chunk ids, cache size."""
    return (
        sorted(Article.objects.values_list("external_id", "version", "status", "content_hash")),
        sorted(Chunk.objects.values_list("id", flat=True)),
        EmbeddingCache.objects.count(),
    )


def test_folder_import_keys_articles_by_relative_path(help_center):
    # when
    report = kb_import(paths=[help_center], source_name="help")
    # then
    assert sorted(report.added) == ["billing/refunds.md", "faq.txt", "guide.pdf", "shipping.md"]
    assert report.failed == []
    refunds = Article.objects.get(external_id="billing/refunds.md")
    assert (refunds.title, refunds.source.name, refunds.version) == ("Refunds", "help", 1)
    assert list(refunds.chunks.order_by("position").values_list("heading_path", "text")) == [
        ("", "We refund within 5 working days."),
        ("PayPal", "PayPal refunds take a day."),
    ]
    assert report.embedded == Chunk.objects.count() == EmbeddingCache.objects.count() == 5


def test_reimporting_the_same_folder_embeds_nothing_and_changes_nothing(help_center):
    # given
    kb_import(paths=[help_center], source_name="help")
    before = state()
    # when
    report = kb_import(paths=[help_center], source_name="help")
    # then
    assert (report.added, report.updated, report.embedded, report.cached) == ([], [], 0, 0)
    assert sorted(report.unchanged) == ["billing/refunds.md", "faq.txt", "guide.pdf", "shipping.md"]
    assert state() == before


def test_a_changed_file_is_replaced_and_only_its_new_text_is_embedded(help_center):
    # given
    kb_import(paths=[help_center], source_name="help")
    old_chunks = set(
        Chunk.objects.filter(article__external_id="billing/refunds.md").values_list("id", flat=True)
    )
    (help_center / "billing" / "refunds.md").write_text(
        REFUNDS + "\n## Klarna\n\nKlarna updates your plan.\n"
    )
    # when
    report = kb_import(paths=[help_center], source_name="help")
    # then: one new passage embedded, the two unchanged ones come from the cache
    assert (report.updated, report.embedded, report.cached) == (["billing/refunds.md"], 1, 2)
    refunds = Article.objects.get(external_id="billing/refunds.md")
    assert refunds.version == 2
    assert list(refunds.chunks.order_by("position").values_list("heading_path", flat=True)) == [
        "",
        "PayPal",
        "Klarna",
    ]
    assert old_chunks.isdisjoint(refunds.chunks.values_list("id", flat=True))


def test_prune_unpublishes_articles_whose_file_is_gone_and_reimport_republishes(help_center):
    # given
    kb_import(paths=[help_center], source_name="help")
    shipping = (help_center / "shipping.md").read_text()
    (help_center / "shipping.md").unlink()
    # when
    report = kb_import(paths=[help_center], source_name="help", prune=True)
    # then
    assert report.removed == 1
    assert Article.objects.get(external_id="shipping.md").status == ArticleStatus.DRAFT
    hits = chunk_search(query="when do parcels leave the warehouse", k=5)
    assert "shipping.md" not in [hit.external_id for hit in hits]
    # when the file comes back, it is published again without embedding anything
    (help_center / "shipping.md").write_text(shipping)
    again = kb_import(paths=[help_center], source_name="help", prune=True)
    assert (again.updated, again.embedded, again.removed) == (["shipping.md"], 0, 0)
    assert Article.objects.get(external_id="shipping.md").status == ArticleStatus.PUBLISHED


def test_without_prune_missing_files_stay_published(help_center):
    # given
    kb_import(paths=[help_center], source_name="help")
    (help_center / "shipping.md").unlink()
    # when
    report = kb_import(paths=[help_center], source_name="help")
    # then
    assert report.removed == 0
    assert Article.objects.get(external_id="shipping.md").status == ArticleStatus.PUBLISHED


def test_bad_files_are_reported_and_the_rest_is_imported(help_center, settings):
    # given
    settings.KNOWLEDGE_MAX_FILE_BYTES = 4096
    (help_center / "empty.md").write_bytes(b"")
    (help_center / "photo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (help_center / "latin1.txt").write_bytes(
        "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e".encode("latin-1")
    )
    (help_center / "scan.pdf").write_bytes(pdf_bytes([[]]))
    (help_center / "huge.pdf").write_bytes(b"%PDF-1.4\n" + b"0" * 5000)
    (help_center / "broken.html").write_bytes(b"<html><div><script>only()</script>")
    # when
    report = kb_import(paths=[help_center], source_name="help")
    # then
    reasons = dict(report.failed)
    assert sorted(reasons) == [
        "broken.html",
        "empty.md",
        "huge.pdf",
        "latin1.txt",
        "photo.md",
        "scan.pdf",
    ]
    assert reasons["empty.md"] == "empty file"
    assert reasons["photo.md"].startswith("binary content")
    assert reasons["latin1.txt"].startswith("not UTF-8 text: invalid byte 0xe9")
    assert reasons["scan.pdf"].startswith("PDF has no text layer")
    assert reasons["huge.pdf"] == "file is 0.0 MB, over the 0.0 MB limit"
    assert "no text found" in reasons["broken.html"]
    assert sorted(report.added) == ["billing/refunds.md", "faq.txt", "guide.pdf", "shipping.md"]


def test_a_file_broken_on_reimport_keeps_its_stored_article(help_center):
    # given
    kb_import(paths=[help_center], source_name="help")
    before = state()
    (help_center / "shipping.md").write_bytes(b"\x00\x01\x02binary garbage")
    # when
    report = kb_import(paths=[help_center], source_name="help", prune=True)
    # then: reported, not pruned, not changed
    assert [path for path, _ in report.failed] == ["shipping.md"]
    assert report.removed == 0
    assert state() == before


def test_a_replacement_failing_halfway_leaves_the_previous_version_whole(help_center):
    # given
    kb_import(paths=[help_center], source_name="help")
    before = state()
    source = source_get_or_create(name="help")
    document = document_parse(
        name="refunds.md", data=(REFUNDS + "\n## New\n\nNew text.\n").encode()
    )
    item = ArticleInput.from_document(external_id="billing/refunds.md", document=document)
    from apps.knowledge.chunking import ChunkDraft

    drafts = [
        ChunkDraft(position=0, heading_path="", context="Refunds", text="first", token_count=3),
        ChunkDraft(position=1, heading_path="", context="Refunds", text="second", token_count=3),
    ]
    # when: the second chunk's vector has the wrong size, so its insert fails in the database
    with pytest.raises(DatabaseError):
        article_replace(
            source=source,
            item=item,
            content_hash="new-hash",
            drafts=drafts,
            vectors=[[0.0] * 384, [0.0] * 3],
            embedding_model="all-MiniLM-L6-v2",
        )
    # then
    assert state() == before


def test_kb_import_command_prints_a_summary_with_failure_reasons(help_center):
    # given
    (help_center / "empty.md").write_bytes(b"")
    out = StringIO()
    # when
    call_command("kb_import", str(help_center), "--source", "cli", stdout=out)
    # then
    assert out.getvalue().splitlines() == [
        "source cli: added 4, updated 0, unchanged 0, removed 0, failed 1; "
        "5 chunks written, 5 texts embedded, 0 from the cache",
        "  failed  empty.md: empty file",
    ]


def test_an_import_that_changed_the_knowledge_base_announces_it_and_one_that_did_not_is_quiet(
    help_center,
):
    # given: a listener, as the copilot is
    heard = []

    def listener(*, report, source_name, **_):  # type: ignore[no-untyped-def]
        heard.append((source_name, len(report.added), len(report.unchanged)))

    knowledge_imported.connect(listener)
    try:
        # when: the same folder imported twice, then one file changed
        call_command("kb_import", str(help_center), "--source", "cli", stdout=StringIO())
        call_command("kb_import", str(help_center), "--source", "cli", stdout=StringIO())
        (help_center / "shipping.md").write_text("# Shipping\n\nWe ship on Mondays only.\n")
        call_command("kb_import", str(help_center), "--source", "cli", stdout=StringIO())
    finally:
        knowledge_imported.disconnect(listener)
    # then: the unchanged second import said nothing
    assert heard == [("cli", 4, 0), ("cli", 0, 3)]


def test_kb_import_command_rejects_a_missing_path(tmp_path):
    # when / then
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("kb_import", str(tmp_path / "nope"), stdout=StringIO())
    assert Article.objects.count() == 0


def test_reembed_moves_chunks_to_the_active_model(help_center, settings):
    # given: chunks of the current model, then the active model changes
    kb_import(paths=[help_center], source_name="help")
    settings.EMBEDDING_MODEL = "all-MiniLM-L6-v2@v2"
    assert chunk_search(query="refund", k=5) == []
    out = StringIO()
    # when
    call_command("kb_reembed", stdout=out)
    # then
    assert out.getvalue() == "model all-MiniLM-L6-v2@v2: 5 texts embedded, 0 from the cache\n"
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {"all-MiniLM-L6-v2@v2"}
    assert chunk_search(query="refund", k=1)[0].external_id == "billing/refunds.md"
    # and a second run has nothing to do
    call_command("kb_reembed", stdout=(again := StringIO()))
    assert again.getvalue() == "model all-MiniLM-L6-v2@v2: 0 texts embedded, 0 from the cache\n"


def test_prune_refuses_a_single_file_and_changes_nothing(help_center):
    # given
    kb_import(paths=[help_center], source_name="help")
    before = state()
    # when / then
    with pytest.raises(ValidationError, match="--prune needs folders"):
        kb_import(paths=[help_center / "shipping.md"], source_name="help", prune=True)
    assert state() == before


def test_a_running_import_without_progress_is_failed_with_the_reason_and_a_live_one_kept():
    # given: a run whose worker died an hour ago, and one that reported progress just now
    source = source_get_or_create(name="folder")
    lost = ImportRun.objects.create(source=source, paths=["/data/kb"], state=ImportState.RUNNING)
    live = ImportRun.objects.create(source=source, paths=["/data/kb"], state=ImportState.RUNNING)
    ImportRun.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    # when
    reclaimed = import_runs_reclaim(stale_after_seconds=1800)
    # then
    lost.refresh_from_db()
    assert reclaimed == 1
    assert lost.state == ImportState.FAILED
    assert lost.detail.startswith("no progress for 30 minutes: the worker running it was lost")
    assert lost.finished_at is not None
    assert ImportRun.objects.get(pk=live.pk).state == ImportState.RUNNING
