import pytest

from apps.knowledge.parsing import ParseError, document_parse
from tests.knowledge.conftest import pdf_bytes

MARKDOWN = b"""---
url: https://help.example/returns
tags: [returns, refunds]
visibility: internal
---
# Returns

Intro paragraph.

## Sending it back

1. Open the order
2. Print the label

| Country | Fee |
|---|---|
| UK | free |

### Large items

We collect them.
"""


def test_markdown_gives_title_heading_paths_blocks_and_front_matter():
    # when
    document = document_parse(name="returns.md", data=MARKDOWN)
    # then
    assert document.title == "Returns"
    assert document.metadata == {
        "url": "https://help.example/returns",
        "tags": ["returns", "refunds"],
        "visibility": "internal",
    }
    assert [(b.kind, b.heading_path, b.text) for b in document.blocks] == [
        ("paragraph", (), "Intro paragraph."),
        ("list", ("Sending it back",), "1. Open the order\n2. Print the label"),
        ("table", ("Sending it back",), "| Country | Fee |\n|---|---|\n| UK | free |"),
        ("paragraph", ("Sending it back", "Large items"), "We collect them."),
    ]


def test_html_keeps_headings_lists_tables_and_drops_scripts_and_navigation():
    # given
    html = b"""<html lang="en-GB"><head><title>Page title</title><script>var x = 1;</script>
    </head><body><nav>Home | Shop</nav><h1>Shipping</h1><p>We ship <b>fast</b>.</p>
    <h2>Costs</h2><table><tr><th>Zone</th><th>Price</th></tr><tr><td>UK</td><td>3.95</td></tr>
    </table><ul><li>Tracked</li><li>Insured</li></ul></body></html>"""
    # when
    document = document_parse(name="shipping.html", data=html)
    # then
    assert document.title == "Shipping"
    assert document.metadata["language"] == "en"
    assert [(b.kind, b.heading_path, b.text) for b in document.blocks] == [
        ("paragraph", (), "We ship fast."),
        ("table", ("Costs",), "| Zone | Price |\n| UK | 3.95 |"),
        ("list", ("Costs",), "- Tracked\n- Insured"),
    ]


def test_malformed_html_with_unclosed_tags_still_yields_its_text():
    # given: unclosed elements, a stray closing tag, no <html>
    html = b"<h2>Refunds<p>Money back in <i>5 days</div><ul><li>card<li>PayPal"
    # when
    document = document_parse(name="refunds.htm", data=html)
    # then
    assert document.title == "Refunds"
    assert [(b.kind, b.heading_path, b.text) for b in document.blocks] == [
        ("paragraph", ("Refunds",), "Money back in 5 days"),
        ("list", ("Refunds",), "- card\n- PayPal"),
    ]


def test_html_with_only_markup_is_reported():
    # when / then
    with pytest.raises(ParseError, match="no text found"):
        document_parse(name="empty.html", data=b"<html><body><div><script>x()</script></div>")


def test_plain_text_uses_a_short_first_line_as_title():
    # when
    document = document_parse(
        name="faq.txt", data=b"Opening hours\n\nWe answer 9 to 5.\n\n- Monday\n- Friday\n"
    )
    # then
    assert document.title == "Opening hours"
    assert [(b.kind, b.text) for b in document.blocks] == [
        ("paragraph", "We answer 9 to 5."),
        ("list", "- Monday\n- Friday"),
    ]


def test_pdf_text_is_extracted_page_by_page():
    # given
    data = pdf_bytes([["Warranty terms", "Two years on all products."], ["Page two text."]])
    # when
    document = document_parse(name="warranty-terms.pdf", data=data)
    # then
    assert document.title == "Warranty terms"
    assert "Two years on all products." in document.blocks[0].text
    assert document.blocks[-1].text == "Page two text."


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.md", b"", "empty file"),
        ("blank.txt", b"  \n\n\t ", "empty file"),
        ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary content"),
        ("latin1.md", "caf\u00e9 cr\u00e8me".encode("latin-1"), "not UTF-8 text"),
        ("scan.pdf", pdf_bytes([[], []]), "no text layer"),
        ("fake.pdf", b"this is not a pdf at all", "not a PDF"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "unreadable PDF"),
        ("headings-only.md", b"# Title\n\n## Section\n", "no text to import"),
        ("slides.pptx", b"PK\x03\x04", "unsupported file type"),
    ],
)
def test_bad_files_raise_a_clear_reason(name, data, reason):
    # when / then
    with pytest.raises(ParseError) as caught:
        document_parse(name=name, data=data)
    assert reason in caught.value.reason


def test_markdown_setext_headings_and_rules_are_structure_not_text():
    # given
    data = b"Delivery\n========\n\nWe ship daily.\n\n---\n\nCosts\n-----\n\nFree over 50.\n\n***\n"
    # when
    document = document_parse(name="delivery.md", data=data)
    # then
    assert document.title == "Delivery"
    assert [(b.heading_path, b.text) for b in document.blocks] == [
        ((), "We ship daily."),
        (("Costs",), "Free over 50."),
    ]
