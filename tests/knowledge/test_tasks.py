import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.knowledge.imports import import_run_create
from apps.knowledge.models import Article, ArticleStatus, ImportRun, ImportState, SourceKind
from apps.knowledge.services import source_get_or_create
from apps.knowledge.sitemap import sitemap_crawl
from apps.knowledge.tasks import sitemap_crawl_task
from tests.conftest import wait_for

PAGE = "<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def website(tmp_path, settings) -> Iterator[tuple[Path, str]]:
    """A help-center website on 127.0.0.1 serving files from a temporary folder (an
    internal site: its network is allowed for the crawler)."""
    settings.KNOWLEDGE_CRAWL_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_site(root: Path, base: str, pages: dict[str, tuple[str, str]]) -> None:
    for name, (title, text) in pages.items():
        (root / name).write_text(PAGE.format(title=title, text=text))
    locations = "".join(f"<url><loc>{base}/{name}</loc></url>" for name in pages)
    (root / "sitemap.xml").write_text(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{locations}</urlset>"
    )


@pytest.mark.django_db
@pytest.mark.slow
def test_sitemap_crawl_imports_pages_then_updates_and_unpublishes_incrementally(website):
    # given
    root, base = website
    write_site(
        root,
        base,
        {
            "returns.html": ("Returns", "Send items back within 30 days."),
            "shipping.html": ("Shipping", "We ship in 2 days."),
        },
    )
    source = source_get_or_create(name="site", kind=SourceKind.SITEMAP, url=f"{base}/sitemap.xml")
    # when
    first = sitemap_crawl(source=source)
    # then
    assert (sorted(first.added), first.failed) == (
        [f"{base}/returns.html", f"{base}/shipping.html"],
        [],
    )
    returns = Article.objects.get(external_id=f"{base}/returns.html")
    assert (returns.title, returns.url) == ("Returns", f"{base}/returns.html")
    # given: one page changed, one gone from the sitemap, one listed but missing (404)
    (root / "shipping.html").unlink()
    write_site(root, base, {"returns.html": ("Returns", "Send items back within 60 days.")})
    (root / "sitemap.xml").write_text(
        (root / "sitemap.xml")
        .read_text()
        .replace("</urlset>", f"<url><loc>{base}/gone.html</loc></url></urlset>")
    )
    # when: through the task, as the periodic crawl runs it
    summary = sitemap_crawl_task.apply(args=[source.pk]).get()
    # then
    assert summary.startswith("added 0, updated 1, unchanged 0, removed 1, failed 1;")
    assert Article.objects.get(external_id=f"{base}/shipping.html").status == ArticleStatus.DRAFT
    assert "60 days" in Article.objects.get(external_id=f"{base}/returns.html").body


@pytest.mark.django_db
def test_an_unreachable_sitemap_unpublishes_nothing(website):
    # given
    _, base = website
    source = source_get_or_create(name="site", kind=SourceKind.SITEMAP, url=f"{base}/missing.xml")
    # when
    report = sitemap_crawl(source=source)
    # then
    assert report.failed == [(f"{base}/missing.xml", "HTTP 404")]
    assert report.removed == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_queued_import_runs_on_the_ingest_queue_and_records_progress(
    celery_worker_process, tmp_path
):
    # given
    (tmp_path / "a.md").write_text("# Alpha\n\nFirst article.\n")
    (tmp_path / "b.md").write_text("# Beta\n\nSecond article.\n")
    (tmp_path / "c.md").write_bytes(b"")
    # when
    run = import_run_create(paths=[str(tmp_path)], source_name="queued", prune=False)
    # then
    finished = wait_for(
        lambda: ImportRun.objects.filter(pk=run.pk, state=ImportState.SUCCEEDED).first(),
        timeout=120,
    )
    assert (finished.total, finished.processed, finished.added, finished.failed) == (3, 3, 2, 1)
    assert finished.errors == [{"path": "c.md", "reason": "empty file"}]
    assert sorted(Article.objects.values_list("external_id", flat=True)) == ["a.md", "b.md"]


def test_sitemap_index_nested_in_an_index_is_refused_not_followed(website):
    # given: an index that lists itself
    root, base_url = website
    (root / "index.xml").write_text(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{base_url}/index.xml</loc></sitemap></sitemapindex>"
    )
    # when / then
    from apps.knowledge.sitemap import FetchError, sitemap_urls

    with pytest.raises(FetchError, match="nested inside another index"):
        sitemap_urls(url=f"{base_url}/index.xml")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/sitemap.xml",
        "http://localhost/sitemap.xml",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/sitemap.xml",
        "http://[::1]/sitemap.xml",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 of 169.254.169.254
        "http://[2002:a9fe:a9fe::1]/sitemap.xml",  # 6to4 of 169.254.169.254
    ],
)
def test_a_sitemap_on_a_non_public_address_is_refused_and_nothing_fetched(url, settings):
    # given: the default, no internal networks allowed
    settings.KNOWLEDGE_CRAWL_ALLOWED_NETWORKS = []
    source = source_get_or_create(name="site", kind=SourceKind.SITEMAP, url=url)
    # when
    report = sitemap_crawl(source=source)
    # then
    assert len(report.failed) == 1
    assert report.failed[0][0] == url
    assert "non-public address" in report.failed[0][1]
    assert "KNOWLEDGE_CRAWL_ALLOWED_NETWORKS" in report.failed[0][1]
    assert not Article.objects.exists()


class MetadataRedirect(QuietHandler):
    def do_GET(self):  # type: ignore[no-untyped-def]
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()


def test_a_redirect_to_a_non_public_address_is_refused():
    # given: an allowed internal site whose page redirects to the cloud metadata address
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MetadataRedirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from django.test import override_settings

    from apps.knowledge.sitemap import FetchError, _fetch

    try:
        # when / then
        with (
            override_settings(KNOWLEDGE_CRAWL_ALLOWED_NETWORKS=["127.0.0.0/8"]),
            pytest.raises(FetchError, match=r"non-public address \(169\.254\.169\.254\)"),
        ):
            _fetch(f"http://127.0.0.1:{server.server_address[1]}/page.html")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_pages_on_another_host_are_not_crawled(website):
    # given: a sitemap listing its own page and one on another host
    root, base = website
    (root / "own.html").write_text(PAGE.format(title="Own", text="Our own help page."))
    (root / "sitemap.xml").write_text(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}/own.html</loc></url>"
        "<url><loc>http://internal.example/admin</loc></url></urlset>"
    )
    source = source_get_or_create(name="site", kind=SourceKind.SITEMAP, url=f"{base}/sitemap.xml")
    # when
    report = sitemap_crawl(source=source)
    # then
    assert report.failed == [
        ("http://internal.example/admin", "not on the sitemap's host: not crawled")
    ]
    assert list(Article.objects.values_list("external_id", flat=True)) == [f"{base}/own.html"]
