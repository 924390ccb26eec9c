"""Turn a file's bytes into a titled list of blocks (paragraph, list, table, code) under headings.

Markdown, HTML, plain text and PDF. Every problem a person can fix is a `ParseError` with a
reason worth showing in an import report; nothing here touches the database.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePosixPath

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx"}
HTML_SUFFIXES = {".html", ".htm"}
TEXT_SUFFIXES = {".txt", ".text"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES | PDF_SUFFIXES


class ParseError(Exception):
    """The file cannot become an article; `reason` says why, for the import report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Block:
    kind: str  # "paragraph", "list", "table" or "code"
    text: str
    heading_path: tuple[str, ...] = ()


@dataclass
class ParsedDocument:
    title: str
    blocks: list[Block]
    # Front matter or page metadata: url, language, visibility, tags, status.
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def body(self) -> str:
        """The readable text of the document, headings included, for Article.body."""
        parts: list[str] = []
        last_path: tuple[str, ...] = ()
        for block in self.blocks:
            if block.heading_path != last_path:
                changed = [
                    heading
                    for index, heading in enumerate(block.heading_path)
                    if index >= len(last_path) or last_path[index] != heading
                ]
                depth = len(block.heading_path) - len(changed)
                for offset, heading in enumerate(changed):
                    parts.append("#" * (depth + offset + 2) + " " + heading)
                last_path = block.heading_path
            parts.append(block.text)
        return "\n\n".join(parts)


def document_parse(*, name: str, data: bytes) -> ParsedDocument:
    """Parse `data` by the file extension of `name`. Raises ParseError with a clear reason."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ParseError(f"unsupported file type {suffix or '(none)'!r}")
    if not data.strip():
        raise ParseError("empty file")
    fallback_title = title_from_filename(name)
    if suffix in PDF_SUFFIXES:
        document = _parse_pdf(data, fallback_title)
    else:
        text = text_decode(data)
        if suffix in MARKDOWN_SUFFIXES:
            document = _parse_markdown(text, fallback_title)
        elif suffix in HTML_SUFFIXES:
            document = _parse_html(text, fallback_title)
        else:
            document = _parse_plain_text(text, fallback_title)
    if not any(block.text.strip() for block in document.blocks):
        raise ParseError("no text to import (only headings or markup)")
    return document


def title_from_filename(name: str) -> str:
    stem = PurePosixPath(name).stem
    words = re.sub(r"[-_]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else "Untitled"


def text_decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or BOM-marked UTF-16; anything else is reported, not guessed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise ParseError(f"invalid UTF-16 text ({error.reason})") from error
    if b"\x00" in data[:65536]:
        raise ParseError("binary content (NUL bytes) in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ParseError(
            f"not UTF-8 text: invalid byte 0x{data[error.start]:02x} at offset {error.start}; "
            "save the file as UTF-8"
        ) from error
    control = sum(1 for char in text[:65536] if ord(char) < 32 and char not in "\t\n\r\f")
    if control > max(8, len(text[:65536]) // 50):
        raise ParseError("binary content (control characters) in a text file")
    return text


# --- assembly: headings and blocks into a document -----------------------------------------


class _Assembler:
    """Collects heading and block events; the first level-1 heading becomes the title."""

    def __init__(self, fallback_title: str) -> None:
        self.title: str | None = None
        self.fallback_title = fallback_title
        self.stack: list[tuple[int, str]] = []
        self.blocks: list[Block] = []

    def heading(self, level: int, text: str) -> None:
        text = _squash(text)
        if not text:
            return
        if level == 1 and self.title is None and not self.blocks and not self.stack:
            self.title = text
            return
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))

    def block(self, kind: str, text: str) -> None:
        text = text.strip("\n")
        if text.strip():
            path = tuple(heading for _, heading in self.stack)
            self.blocks.append(Block(kind=kind, text=text, heading_path=path))

    def document(self, metadata: dict[str, object] | None = None) -> ParsedDocument:
        metadata = metadata or {}
        title = str(metadata.get("title") or self.title or self.fallback_title)
        return ParsedDocument(title=_squash(title)[:500], blocks=self.blocks, metadata=metadata)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --- Markdown -------------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")


def _front_matter(text: str) -> tuple[dict[str, object], str]:
    """A leading `---` block of `key: value` lines (a YAML subset: scalars and [lists])."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for end in range(1, min(len(lines), 60)):
        if lines[end].strip() in {"---", "..."}:
            break
    else:
        return {}, text
    metadata: dict[str, object] = {}
    for line in lines[1:end]:
        key, separator, value = line.partition(":")
        if not separator or not key.strip():
            continue
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            metadata[key.strip().lower()] = [
                item.strip().strip("'\"") for item in value[1:-1].split(",") if item.strip()
            ]
        else:
            metadata[key.strip().lower()] = value.strip("'\"")
    return metadata, "\n".join(lines[end + 1 :])


def _parse_markdown(text: str, fallback_title: str) -> ParsedDocument:
    metadata, text = _front_matter(text.replace("\r\n", "\n").replace("\r", "\n"))
    assembler = _Assembler(fallback_title)
    lines = text.split("\n")
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            assembler.block("paragraph", "\n".join(paragraph))
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            code = [line]
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                code.append(lines[index])
                index += 1
            code.append(marker)
            assembler.block("code", "\n".join(code))
            index += 1
            continue
        if _SETEXT.match(line) and len(paragraph) == 1:
            # "Title" underlined with === (level 1) or --- (level 2)
            assembler.heading(1 if stripped.startswith("=") else 2, paragraph.pop())
            index += 1
            continue
        if _RULE.match(line):
            flush()  # a horizontal rule separates, it says nothing
            index += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            assembler.heading(len(heading.group(1)), heading.group(2))
            index += 1
            continue
        if stripped.startswith("|"):
            flush()
            table = []
            while index < len(lines) and lines[index].strip().startswith("|"):
                table.append(lines[index].strip())
                index += 1
            assembler.block("table", "\n".join(table))
            continue
        if _LIST_ITEM.match(line) and not paragraph:
            items = []
            while index < len(lines):
                current = lines[index]
                if _LIST_ITEM.match(current) or (
                    current.startswith((" ", "\t")) and current.strip()
                ):
                    items.append(current.rstrip())
                    index += 1
                elif (
                    not current.strip()
                    and index + 1 < len(lines)
                    and _LIST_ITEM.match(lines[index + 1])
                ):
                    index += 1  # a loose list: a blank line between items
                else:
                    break
            assembler.block("list", "\n".join(items))
            continue
        if not stripped:
            flush()
        else:
            paragraph.append(
                stripped.removeprefix(">").strip() if stripped.startswith(">") else line.rstrip()
            )
        index += 1
    flush()
    return assembler.document(metadata)


# --- HTML -----------------------------------------------------------------------------------

_SKIPPED_TAGS = {"script", "style", "noscript", "template", "nav", "footer", "svg", "iframe"}
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "blockquote", "dd", "dt", "header"}


class _HtmlCollector(HTMLParser):
    """A forgiving walk over HTML: broken nesting and unclosed tags still yield the text."""

    def __init__(self, assembler: _Assembler) -> None:
        super().__init__(convert_charrefs=True)
        self.assembler = assembler
        self.skip_depth = 0
        self.text: list[str] = []
        self.heading_level: int | None = None
        self.list_depth = 0
        self.list_items: list[str] = []
        self.ordered: list[bool] = []
        self.item_counter: list[int] = []
        self.in_table = 0
        self.in_cell = False
        self.rows: list[str] = []
        self.cells: list[str] = []
        self.in_pre = False
        self.in_title = False
        self.page_title = ""
        self.metadata: dict[str, object] = {}

    def _take(self) -> str:
        text = "".join(self.text)
        self.text = []
        return text if self.in_pre else _squash(text)

    def _flush_paragraph(self) -> None:
        text = self._take()
        if text:
            self.assembler.block("paragraph", text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        attributes = dict(attrs)
        if self.heading_level is not None and (
            tag in _BLOCK_TAGS
            or tag in {"ul", "ol", "table", "pre"}
            or re.fullmatch(r"h[1-6]", tag)
        ):
            # An unclosed heading ends where the next block starts.
            self.assembler.heading(self.heading_level, self._take())
            self.heading_level = None
        if tag == "title":
            self.in_title = True
        elif tag == "html" and attributes.get("lang"):
            self.metadata["language"] = str(attributes["lang"]).split("-")[0].lower()
        elif tag == "link" and attributes.get("rel") == "canonical" and attributes.get("href"):
            self.metadata["url"] = attributes["href"]
        elif re.fullmatch(r"h[1-6]", tag):
            self._end_open_blocks()
            self.heading_level = int(tag[1])
        elif tag in {"ul", "ol"}:
            if self.list_depth == 0:
                self._flush_paragraph()
            elif self.text:
                self._end_item()
            self.list_depth += 1
            self.ordered.append(tag == "ol")
            self.item_counter.append(0)
        elif tag == "li" and self.list_depth:
            self._end_item()
            self.item_counter[-1] += 1
        elif tag == "table":
            self._flush_paragraph()
            self.in_table += 1
        elif tag in {"td", "th"} and self.in_table:
            if self.in_cell:
                self._end_cell()  # the previous cell was never closed
            self.text = []  # whitespace between cells
            self.in_cell = True
        elif tag == "tr" and self.in_table:
            self._end_row()
        elif tag == "pre":
            self._flush_paragraph()
            self.in_pre = True
        elif tag == "br":
            self.text.append("\n")
        elif tag in _BLOCK_TAGS and not self.list_depth and not self.in_table:
            self._flush_paragraph()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag == "title":
            self.in_title = False
        elif re.fullmatch(r"h[1-6]", tag) and self.heading_level is not None:
            self.assembler.heading(self.heading_level, self._take())
            self.heading_level = None
        elif tag in {"ul", "ol"} and self.list_depth:
            self._end_item()
            self.list_depth -= 1
            self.ordered.pop()
            self.item_counter.pop()
            if self.list_depth == 0:
                self.assembler.block("list", "\n".join(self.list_items))
                self.list_items = []
        elif tag == "li" and self.list_depth:
            self._end_item()
        elif tag in {"td", "th"} and self.in_table and self.in_cell:
            self._end_cell()
        elif tag == "tr" and self.in_table:
            self._end_row()
        elif tag == "table" and self.in_table:
            self._end_row()
            self.in_table -= 1
            if not self.in_table and self.rows:
                self.assembler.block("table", "\n".join(self.rows))
                self.rows = []
        elif tag == "pre" and self.in_pre:
            text = self._take()
            self.in_pre = False
            if text.strip():
                self.assembler.block("code", text)
        elif tag in _BLOCK_TAGS and not self.list_depth and not self.in_table:
            self._flush_paragraph()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.in_title:
            self.page_title += data
            return
        self.text.append(data)

    def _end_item(self) -> None:
        text = self._take()
        if text:
            depth = max(0, self.list_depth - 1)
            marker = f"{self.item_counter[-1]}." if self.ordered and self.ordered[-1] else "-"
            self.list_items.append("  " * depth + f"{marker} {text}")

    def _end_cell(self) -> None:
        self.cells.append(self._take())
        self.in_cell = False

    def _end_row(self) -> None:
        if self.in_cell:
            self._end_cell()
        self.text = []
        if any(self.cells):
            self.rows.append("| " + " | ".join(self.cells) + " |")
        self.cells = []

    def _end_open_blocks(self) -> None:
        if self.list_depth:
            self._end_item()
            self.assembler.block("list", "\n".join(self.list_items))
            self.list_items, self.list_depth, self.ordered, self.item_counter = [], 0, [], []
        if self.in_table:
            self._end_row()
            self.assembler.block("table", "\n".join(self.rows))
            self.rows, self.in_table = [], 0
        self._flush_paragraph()

    def finish(self) -> None:
        self.close()
        if self.heading_level is not None:
            self.assembler.heading(self.heading_level, self._take())
        self._end_open_blocks()


def _parse_html(text: str, fallback_title: str) -> ParsedDocument:
    assembler = _Assembler(fallback_title)
    collector = _HtmlCollector(assembler)
    try:
        collector.feed(text)
        collector.finish()
    except (AssertionError, ValueError) as error:  # html.parser's last-resort failures
        raise ParseError(f"malformed HTML: {error}") from error
    metadata = dict(collector.metadata)
    if assembler.title is None and _squash(collector.page_title):
        metadata["title"] = _squash(collector.page_title)
    if not assembler.blocks:
        raise ParseError("malformed or empty HTML: no text found outside markup")
    return assembler.document(metadata)


# --- plain text -----------------------------------------------------------------------------


def _parse_plain_text(text: str, fallback_title: str) -> ParsedDocument:
    assembler = _Assembler(fallback_title)
    paragraphs = [part for part in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if part.strip()]
    if len(paragraphs) > 1:
        first = paragraphs[0].strip()
        # A short first line on its own reads as the title, as people write text files.
        if "\n" not in first and len(first) <= 120 and not first.endswith((".", ":", "?")):
            assembler.heading(1, first)
            paragraphs = paragraphs[1:]
    for paragraph in paragraphs:
        lines = [line for line in paragraph.split("\n") if line.strip()]
        kind = "list" if all(_LIST_ITEM.match(line) for line in lines) else "paragraph"
        assembler.block(kind, "\n".join(line.rstrip() for line in lines))
    return assembler.document()


# --- PDF ------------------------------------------------------------------------------------


def _parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    from django.conf import settings
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not data.startswith(b"%PDF"):
        raise ParseError("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("encrypted PDF")
        page_count = len(reader.pages)
        if page_count > settings.KNOWLEDGE_MAX_PDF_PAGES:
            raise ParseError(
                f"PDF has {page_count} pages, over the limit of {settings.KNOWLEDGE_MAX_PDF_PAGES}"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except ParseError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        raise ParseError(f"unreadable PDF: {error}") from error
    if not any(page.strip() for page in pages):
        raise ParseError("PDF has no text layer (scanned pages?): run OCR before importing")
    assembler = _Assembler(fallback_title)
    for page in pages:
        for paragraph in re.split(r"\n\s*\n", page):
            if paragraph.strip():
                assembler.block("paragraph", _squash(paragraph))
    return assembler.document({"title": title} if title else {})
