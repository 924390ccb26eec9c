"""Crawl a website's sitemap into its Source: pages are HTML articles keyed by URL.

The crawler fetches what a sitemap lists, so it must not become a way to read internal
services into the knowledge base (which anyone can then search): pages and child sitemaps
must be on the sitemap's own host, and hosts that resolve to private, loopback, link-local
or otherwise non-public addresses are refused, redirects included, unless they are in
KNOWLEDGE_CRAWL_ALLOWED_NETWORKS (an internal help center). (The address is checked
when the URL is resolved, not pinned for the connection: DNS rebinding is not covered.)
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit
from xml.etree import ElementTree

from django.conf import settings
from django.utils import timezone

from apps.core.exceptions import ValidationError
from apps.core.outbound import OutboundRefused, outbound_url_check
from apps.knowledge.imports import ArticleBatch, ImportReport, import_announce
from apps.knowledge.models import Source, SourceKind
from apps.knowledge.parsing import ParseError, document_parse
from apps.knowledge.services import ArticleInput, articles_unpublish

FETCH_TIMEOUT_SECONDS = 15
MAX_PAGES = 5000
MAX_NESTED_SITEMAPS = 50
_NAMESPACE = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class FetchError(Exception):
    pass


def _check_url(url: str) -> None:
    """Refuse what the crawler must not fetch: other schemes, and non-public addresses."""
    try:
        outbound_url_check(
            url,
            allowed_networks=settings.KNOWLEDGE_CRAWL_ALLOWED_NETWORKS,
            setting="KNOWLEDGE_CRAWL_ALLOWED_NETWORKS (an internal site)",
        )
    except OutboundRefused as error:
        raise FetchError(str(error)) from error


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a new fetch: it gets the same checks as the first URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        _check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_CheckedRedirects)


def _same_host(url: str, sitemap_url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() == (urlsplit(sitemap_url).hostname or "").lower()


def _fetch(url: str) -> bytes:
    _check_url(url)
    limit = settings.KNOWLEDGE_MAX_FILE_BYTES
    # The scheme is checked above: no file:// or custom schemes reach the opener.
    request = urllib.request.Request(url, headers={"User-Agent": "Deskpilot-KB-crawler/1.0"})  # noqa: S310
    try:
        with _OPENER.open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            data = response.read(limit + 1)
    except urllib.error.HTTPError as error:
        raise FetchError(f"HTTP {error.code}") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise FetchError(f"unreachable: {getattr(error, 'reason', error)}") from error
    if len(data) > limit:
        raise FetchError(f"larger than the {limit // 1_048_576} MB limit")
    return data


def sitemap_urls(*, url: str, nested: bool = False) -> list[str]:
    """Page URLs of a sitemap (following a sitemap index one level deep), in order.

    An index inside an index is not followed: a self-listing or deeply nested index must
    not turn one crawl into unbounded fetches.
    """
    try:
        root = ElementTree.fromstring(_fetch(url))  # noqa: S314 - size-capped, no entities expanded by expat
    except ElementTree.ParseError as error:
        raise FetchError(f"sitemap is not valid XML: {error}") from error
    if root.tag == f"{_NAMESPACE}sitemapindex" or root.tag == "sitemapindex":
        if nested:
            raise FetchError(f"sitemap index {url} is nested inside another index")
        pages: list[str] = []
        children = [loc.text.strip() for loc in root.iter() if loc.tag.endswith("loc") and loc.text]
        for child in children[:MAX_NESTED_SITEMAPS]:
            # A child that cannot be read fails the crawl: its pages must not look deleted.
            if not _same_host(child, url):
                raise FetchError(f"child sitemap {child} is not on the index's host")
            pages.extend(sitemap_urls(url=child, nested=True))
        return list(dict.fromkeys(pages))[:MAX_PAGES]
    locations = [loc.text.strip() for loc in root.iter() if loc.tag.endswith("loc") and loc.text]
    return list(dict.fromkeys(locations))[:MAX_PAGES]


def sitemap_crawl(*, source: Source) -> ImportReport:
    """Fetch every page of the source's sitemap, upsert changed pages, unpublish vanished ones.

    Idempotent and incremental (content hash). If the sitemap itself cannot be read, nothing
    is unpublished: a site that is down is not a site that deleted its help center.
    """
    if source.kind != SourceKind.SITEMAP or not source.url:
        raise ValidationError(f"source {source.name!r} is not a sitemap source")
    report = ImportReport()
    try:
        urls = sitemap_urls(url=source.url)
    except FetchError as error:
        report.failed.append((source.url, str(error)))
        return report
    batch = ArticleBatch(source=source, report=report)

    for url in urls:
        if not _same_host(url, source.url):
            report.failed.append((url, "not on the sitemap's host: not crawled"))
            continue
        try:
            document = document_parse(name="page.html", data=_fetch(url))
        except (FetchError, ParseError) as error:
            report.failed.append((url, getattr(error, "reason", None) or str(error)))
            continue
        item = ArticleInput.from_document(external_id=url[:500], document=document)
        item.url = url
        batch.add(item)
    batch.flush()
    report.removed = articles_unpublish(source=source, keep_external_ids=[u[:500] for u in urls])
    Source.objects.filter(pk=source.pk).update(last_crawled_at=timezone.now())
    import_announce(report=report, source_name=source.name)
    return report
