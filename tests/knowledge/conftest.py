"""Knowledge fixtures: small files of each format, a PDF writer, the demo KB imported once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import factory
import pytest

from apps.knowledge.models import Source, SourceKind

DEMO_KB = Path(__file__).resolve().parents[2] / "fixtures/demo/kb"
DEMO_TEST_SOURCE = "demo-test"


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source

    name = factory.Sequence(lambda n: f"source-{n}")
    kind = SourceKind.FOLDER


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: one Helvetica text line per string; an empty page has no text."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * index for index in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page_id, lines in zip(page_ids, pages, strict=True):
        if lines:
            shown = " T* ".join(
                "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj"
                for line in lines
            )
            content = f"BT /F1 12 Tf 72 720 Td 16 TL {shown} ET".encode()
        else:
            content = b"0 0 m 200 200 l S"  # a drawing, no text: like a scanned page
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    output = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(output)
    output += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        output += f"{offset:010d} 00000 n \n".encode()
    output += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(output)


@pytest.fixture(scope="module")
def demo_kb(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The demo knowledge base imported once for a module's search tests; removed after."""
    from apps.knowledge.imports import kb_import

    with django_db_blocker.unblock():
        report = kb_import(paths=[DEMO_KB], source_name=DEMO_TEST_SOURCE)
        assert report.failed == []
    yield DEMO_TEST_SOURCE
    with django_db_blocker.unblock():
        Source.objects.filter(name=DEMO_TEST_SOURCE).delete()
