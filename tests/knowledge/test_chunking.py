import pytest

from apps.knowledge.chunking import document_chunk
from apps.knowledge.parsing import Block, ParsedDocument
from apps.llm import embeddings

pytestmark = pytest.mark.slow  # the tokenizer comes with the embedding model


def chunk(document: ParsedDocument):
    return document_chunk(
        document=document, token_count=embeddings.token_count, max_tokens=embeddings.max_tokens()
    )


def test_each_chunk_carries_title_and_heading_path_and_stays_in_its_section():
    # given
    document = ParsedDocument(
        title="Refunds",
        blocks=[
            Block("paragraph", "We refund within 5 days.", ()),
            Block("paragraph", "PayPal is fastest.", ("Timing", "PayPal")),
        ],
    )
    # when
    chunks = chunk(document)
    # then
    assert [(c.position, c.heading_path, c.context, c.text) for c in chunks] == [
        (0, "", "Refunds", "We refund within 5 days."),
        (1, "Timing > PayPal", "Refunds\nTiming > PayPal", "PayPal is fastest."),
    ]
    assert chunks[1].embedded_text == "Refunds\nTiming > PayPal\n\nPayPal is fastest."


def test_a_table_that_fits_is_kept_whole_with_its_section():
    # given
    table = "| Zone | Price |\n|---|---|\n" + "\n".join(f"| Zone {i} | {i}.95 |" for i in range(10))
    document = ParsedDocument(
        title="Costs",
        blocks=[
            Block("paragraph", "Prices below.", ("Prices",)),
            Block("table", table, ("Prices",)),
        ],
    )
    # when
    chunks = chunk(document)
    # then
    assert len(chunks) == 1
    assert chunks[0].text == "Prices below.\n\n" + table


def test_long_sections_are_split_within_the_model_window_at_natural_boundaries():
    # given: a list and a table far larger than 256 tokens
    items = "\n".join(
        f"- Step {i}: open the drawer number {i} and take the blue box out" for i in range(60)
    )
    rows = "\n".join(f"| Country {i} | {i} working days | {i}.50 |" for i in range(80))
    table = "| Country | Time | Cost |\n|---|---|---|\n" + rows
    document = ParsedDocument(
        title="Long article",
        blocks=[Block("list", items, ("Steps",)), Block("table", table, ("Table",))],
    )
    # when
    chunks = chunk(document)
    # then: every chunk fits the window, with room for [CLS] and [SEP]
    window = embeddings.max_tokens() - 2
    assert all(embeddings.token_count(c.embedded_text) <= window for c in chunks)
    assert all(c.token_count <= window for c in chunks)
    list_chunks = [c for c in chunks if c.heading_path == "Steps"]
    table_chunks = [c for c in chunks if c.heading_path == "Table"]
    assert len(list_chunks) > 1 and len(table_chunks) > 1
    # items are never cut in the middle, and every table part repeats the header
    assert all(line.startswith("- Step ") for c in list_chunks for line in c.text.split("\n"))
    assert "\n".join(c.text for c in list_chunks) == items
    assert all(
        c.text.startswith("| Country | Time | Cost |\n|---|---|---|\n") for c in table_chunks
    )
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_a_single_huge_sentence_is_split_by_words_within_the_window():
    # given
    sentence = " ".join(f"word{i}" for i in range(2000))
    document = ParsedDocument(title="Wall of text", blocks=[Block("paragraph", sentence, ())])
    # when
    chunks = chunk(document)
    # then
    assert all(c.token_count <= embeddings.max_tokens() - 2 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == sentence.split()
