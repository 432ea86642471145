"""Knowledge files in the formats a project office already has → Markdown parts for the heading-aware chunker.

Every format becomes the same thing: a Markdown body plus whatever metadata the file itself declares (front
matter, a document title, an FAQ or risk row's type). documents.py fills in the rest with visible defaults.
A file that cannot be read raises ValueError with a reason a person can act on; ingestion skips it. It is a
SourceError (source_problems.py) with a code and the values the reason quotes, for the admin page's wording.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import frontmatter
import yaml

from service.config import Settings
from service.retrieval.source_problems import SourceError, SourceProblem

MB = 1024 * 1024


@dataclass(frozen=True)
class SourceLimits:
    """Bounds that keep one bad file from exhausting memory (Settings: NEMAWASHI_KB_MAX_*)."""

    max_file_bytes: int = 20 * MB
    max_unpacked_bytes: int = 200 * MB  # declared uncompressed size of an Office file's zip members
    max_cells: int = 50_000  # per workbook

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceLimits:
        return cls(
            max_file_bytes=int(settings.kb_max_file_mb * MB),
            max_unpacked_bytes=int(settings.kb_max_unpacked_mb * MB),
            max_cells=settings.kb_max_cells,
        )


@dataclass(frozen=True)
class Part:
    """One document a file yields: its Markdown body and the metadata the file itself declares."""

    body: str
    meta: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""  # appended to the file's id when one file yields several documents (spreadsheet rows)
    keep_sections: bool = False  # slides and pages stay one chunk each, so a citation names exactly one


Converter = Callable[[bytes, str, SourceLimits], list[Part]]


def decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(
            SourceProblem.not_utf8,
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8",
            reason=exc.reason,
            byte=exc.start,
        ) from exc


def markdown_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """Markdown or plain text, with or without a front matter block."""
    text = decode_text(raw)
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        error = str(exc).splitlines()[0]
        raise SourceError(
            SourceProblem.bad_front_matter, f"front matter is not valid YAML: {error}", error=error
        ) from exc
    meta: dict[str, Any] = dict(post.metadata)
    if text.lstrip().startswith("---") and not post.content.strip():
        raise SourceError(SourceProblem.no_text_after_front_matter, "the document has no text after its front matter")
    return [Part(post.content.strip(), meta)]


_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "pre",
    "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "br", "hr", "figure", "figcaption",
}  # fmt: skip


class _HtmlToMarkdown(HTMLParser):
    """Headings, paragraphs, list items and table rows as Markdown lines; scripts and styles dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.title = ""
        self._line: list[str] = []
        self._prefix = ""
        self._skip = 0
        self._in_title = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._table_rows = 0

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._line)).strip()
        if text:
            self.lines.append(f"{self._prefix}{text}")
        elif self._prefix.startswith("#"):
            pass  # an empty heading says nothing
        self._line, self._prefix = [], ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP_TAGS:
            self._skip += 1
            return
        if re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._prefix = "#" * int(tag[1]) + " "
        elif tag == "li":
            self._flush()
            self._prefix = "- "
        elif tag == "table":
            self._flush()
            self._table_rows = 0
        elif tag == "tr":
            self._flush()
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
            return
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(re.sub(r"\s+", " ", "".join(self._cell)).strip().replace("|", "\\|"))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if any(self._row):
                self.lines.append("| " + " | ".join(self._row) + " |")
                self._table_rows += 1
                if self._table_rows == 1:
                    self.lines.append("|" + " --- |" * len(self._row))
            self._row = None
        elif re.fullmatch(r"h[1-6]", tag) or tag == "li" or tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        else:
            self._line.append(data)

    def markdown(self) -> str:
        self._flush()
        out = ""
        for prev, line in zip(["", *self.lines], self.lines, strict=False):
            same_block = prev[:2] == line[:2] and line.startswith(("|", "- "))  # table rows, list items
            out += ("\n" if same_block else "\n\n") + line if out else line
        return out


def html_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """An HTML page (e.g. saved from the intranet) as Markdown; its <title> is the document title."""
    parser = _HtmlToMarkdown()
    parser.feed(decode_text(raw))
    parser.close()
    title = re.sub(r"\s+", " ", parser.title).strip()
    return [Part(parser.markdown(), {"title": title} if title else {})]


# --- Office and PDF -------------------------------------------------------------------------------------------------
# Each is read with the format's own small library (python-docx, python-pptx, openpyxl, pypdf): no conversion
# service, nothing downloaded. Their parsers raise many kinds of errors on a damaged file; each becomes a reason.


def _labels(text: str) -> dict[str, str]:
    """Section labels in the document's own language (citations quote them)."""
    if _looks_japanese(text):
        return {"slide": "スライド {n}", "notes": "ノート", "row": "シート「{sheet}」{row}行目", "source": "出典"}
    return {"slide": "Slide {n}", "notes": "Notes", "row": "sheet '{sheet}' row {row}", "source": "Source"}


def _looks_japanese(text: str) -> bool:
    return bool(re.search(r"[\u3040-\u30ff\u3400-\u9fff]", text))


def _cell_text(value: object) -> str:
    text = "" if value is None else str(value)
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def _table_lines(rows: list[list[str]]) -> list[str]:
    """Rows as a Markdown table; the first row is the header."""
    rows = [r for r in rows if any(r)]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
    return [lines[0], "|" + " --- |" * width, *lines[1:]]


def check_zip(raw: bytes, kind: str, limits: SourceLimits) -> None:
    """An Office file is a zip: refuse a damaged one, and one that would unpack past the limit, before parsing.

    zipfile never inflates a member past its declared size, so the declared sizes bound the memory used."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        message = f"not a readable {kind} file (damaged, or not really {kind}): {exc}"
        raise SourceError(SourceProblem.unreadable_zip, message, kind=kind, error=str(exc)) from exc
    unpacked = sum(m.file_size for m in members)
    if unpacked > limits.max_unpacked_bytes or len(members) > 10_000:
        unpacked_mb, limit_mb = f"{unpacked / MB:,.0f}", f"{limits.max_unpacked_bytes / MB:,.0f}"
        raise SourceError(
            SourceProblem.zip_too_large,
            f"the {kind} file would unpack to {unpacked_mb} MB in {len(members):,} parts; the limit is "
            f"{limit_mb} MB (NEMAWASHI_KB_MAX_UNPACKED_MB): possibly a decompression bomb",
            kind=kind,
            unpacked_mb=unpacked_mb,
            parts=f"{len(members):,}",
            limit_mb=limit_mb,
        )


def _unreadable(kind: str, exc: Exception) -> SourceError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    fix = "export it again from the original" if kind == ".pdf" else "open it in Office and save it again"
    code = SourceProblem.unreadable_pdf if kind == ".pdf" else SourceProblem.unreadable_office
    return SourceError(
        code, f"cannot read this {kind} file ({detail}); {fix}, then ingest again", kind=kind, error=detail
    )


def _heading_level(style_name: str) -> int | None:
    """Word's built-in heading styles keep their English names in every UI language ("Heading 1")."""
    match = re.fullmatch(r"(?i)heading\s*([1-9])", style_name.strip())
    return int(match.group(1)) if match else None


def docx_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """A Word document: Heading 1 becomes ##, Heading 2 ###, …; lists become - items, tables Markdown tables."""
    import docx
    from docx.table import Table

    check_zip(raw, ".docx", limits)
    try:
        document = docx.Document(io.BytesIO(raw))
        lines: list[str] = []
        title = (document.core_properties.title or "").strip()
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                rows = []
                for row in block.rows:
                    cells, seen = [], set()
                    for cell in row.cells:  # a merged cell appears once per grid column
                        if id(cell._tc) not in seen:
                            seen.add(id(cell._tc))
                            cells.append(_cell_text(cell.text))
                    rows.append(cells)
                lines += ["", *_table_lines(rows), ""]
                continue
            text = block.text.strip()
            if not text:
                continue
            style = block.style.name if block.style is not None else ""
            level = _heading_level(style or "")
            if style == "Title":
                title = title or text
                lines += [f"# {text}", ""]
            elif level:
                lines += ["", f"{'#' * min(level + 1, 6)} {text}", ""]
            elif (style or "").startswith("List"):
                lines.append(f"- {text}")
            else:
                lines += [text, ""]
    except ValueError:
        raise
    except Exception as exc:  # python-docx/lxml raise many kinds on a damaged file
        raise _unreadable(".docx", exc) from exc
    return [Part(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip(), {"title": title} if title else {})]


def _shape_lines(shape: Any) -> list[str]:
    """The text of one shape, recursing into groups; tables as Markdown tables."""
    if hasattr(shape, "shapes"):  # a group
        return [line for inner in shape.shapes for line in _shape_lines(inner)]
    if getattr(shape, "has_table", False):
        return _table_lines([[_cell_text(c.text) for c in row.cells] for row in shape.table.rows])
    if getattr(shape, "has_text_frame", False):
        lines = []
        for paragraph in shape.text_frame.paragraphs:
            text = "".join(run.text for run in paragraph.runs).strip() or paragraph.text.strip()
            if text:
                lines.append(("  " * paragraph.level) + f"- {text}" if paragraph.level else text)
        return lines
    return []


def pptx_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """A deck: one section per slide, "## スライド N: title", its text, tables and speaker notes."""
    import pptx

    check_zip(raw, ".pptx", limits)
    try:
        deck = pptx.Presentation(io.BytesIO(raw))
        slides = []
        for n, slide in enumerate(deck.slides, start=1):
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            title_id = title_shape.shape_id if title_shape is not None else None
            body = [line for shape in slide.shapes if shape.shape_id != title_id for line in _shape_lines(shape)]
            notes = ""
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
            slides.append((n, re.sub(r"\s+", " ", title), body, notes))
        deck_title = (deck.core_properties.title or "").strip()
    except Exception as exc:  # python-pptx/lxml raise many kinds on a damaged file
        raise _unreadable(".pptx", exc) from exc
    labels = _labels(" ".join(t + " ".join(b) + notes for _, t, b, notes in slides))
    sections = []
    for n, title, body, notes in slides:
        if not (title or body or notes):
            continue
        heading = labels["slide"].format(n=n) + (f": {title}" if title else "")
        section = [f"## {heading}", *body]
        if notes:
            section += ["", f"{labels['notes']}: {notes}"]
        sections.append("\n".join(section))
    if not sections:
        raise SourceError(
            SourceProblem.no_slide_text,
            f"no text on any of its {len(slides)} slides (only pictures?); add the text to the slides or the notes",
            slides=len(slides),
        )
    first_title = next((t for _, t, _, _ in slides if t), "")
    title = deck_title or first_title or name.rsplit(".", 1)[0]  # "スライド N" is no title
    return [Part("\n\n".join(sections), {"title": title}, keep_sections=True)]


def pdf_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """A PDF's text layer, one section per page ("## p. N"); scanned pages have none and are refused."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))  # only an owner password: anyone may read it
            except Exception:
                opened = False
            if not opened:
                raise SourceError(
                    SourceProblem.pdf_password,
                    "the PDF is password-protected; save a copy without a password and ingest that",
                )
        pages = [(n, (page.extract_text() or "").strip()) for n, page in enumerate(reader.pages, start=1)]
        meta_title = ((reader.metadata.title if reader.metadata else None) or "").strip()
    except ValueError:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise _unreadable(".pdf", exc) from exc
    sections = [f"## p. {n}\n{text}" for n, text in pages if text]
    if not sections:
        raise SourceError(
            SourceProblem.no_pdf_text,
            f"the PDF has no text layer on any of its {len(pages)} pages (a scan?); "
            "export it from the original document, or run OCR on it first",
            pages=len(pages),
        )
    title = meta_title or name.rsplit(".", 1)[0]  # its generated "p. N" headings are no title
    return [Part("\n\n".join(sections), {"title": title}, keep_sections=True)]


# Header words that make a sheet an FAQ or a risk register (compared lower-cased, spaces removed).
_QUESTION = ("質問", "問い", "question", "faq", "q")
_ANSWER = ("回答", "答え", "answer", "a")
_RISK = ("リスク", "risk", "課題", "issue")
_MITIGATION = ("対策", "対応", "mitigation", "軽減策", "countermeasure")


def _column(header: list[str], words: tuple[str, ...], *, exclude: tuple[str, ...] = ()) -> int | None:
    """The first column whose header is one of words (single letters must match exactly)."""
    for i, cell in enumerate(header):
        key = cell.lower().replace(" ", "").replace("　", "").rstrip(".:：")
        if any(w in key for w in exclude):
            continue
        if any(key == w or (len(w) > 1 and w in key) for w in words):
            return i
    return None


def _sheet_rows(sheet: Any, budget: list[int], limits: SourceLimits) -> list[tuple[int, list[str]]]:
    """(row number, cell texts) of one sheet, counting cells against the workbook's budget."""
    declared = (sheet.max_row or 0) * (sheet.max_column or 0)
    if declared > limits.max_cells:
        raise _too_many_cells(sheet.title, declared, limits)
    rows = []
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        budget[0] += len(values)
        if budget[0] > limits.max_cells:
            raise _too_many_cells(sheet.title, budget[0], limits)
        cells = [_cell_text(v) for v in values]
        if any(cells):
            rows.append((number, cells))
    return rows


def _too_many_cells(sheet: str, cells: int, limits: SourceLimits) -> SourceError:
    return SourceError(
        SourceProblem.too_many_cells,
        f"sheet {sheet!r} has more than {limits.max_cells:,} cells ({cells:,}); the limit is "
        f"{limits.max_cells:,} (NEMAWASHI_KB_MAX_CELLS): keep the FAQ or risk register in a workbook of its own",
        sheet=sheet,
        limit=f"{limits.max_cells:,}",
        cells=f"{cells:,}",
    )


def _entry_details(header: list[str], cells: list[str], skip: set[int]) -> list[str]:
    return [
        f"- {header[i] or f'列{i + 1}'}: {value}"
        for i, value in enumerate(cells)
        if value and i not in skip and i < len(header)
    ]


def xlsx_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """A workbook: FAQ sheets (質問/回答) give one FAQ entry per row, risk registers (リスク/対策) one risk per
    row, each citing its sheet and row; any other sheet becomes one table document."""
    import openpyxl

    check_zip(raw, ".xlsx", limits)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise _unreadable(".xlsx", exc) from exc
    parts: list[Part] = []
    budget = [0]
    try:
        for index, sheet in enumerate(workbook.worksheets, start=1):
            try:
                rows = _sheet_rows(sheet, budget, limits)
            except ValueError:
                raise
            except Exception as exc:
                raise _unreadable(".xlsx", exc) from exc
            if rows:
                parts += _sheet_parts(name, index, sheet.title, rows)
    finally:
        workbook.close()
    return parts


def _sheet_parts(name: str, index: int, sheet: str, rows: list[tuple[int, list[str]]]) -> list[Part]:
    (_, header), data = rows[0], rows[1:]
    labels = _labels(" ".join(" ".join(cells) for _, cells in rows[:50]))
    question, answer = _column(header, _QUESTION), _column(header, _ANSWER)
    mitigation = _column(header, _MITIGATION)
    risk = _column(header, _RISK, exclude=_MITIGATION)
    parts = []
    if question is not None and answer is not None and question != answer:
        for number, cells in data:
            q, a = _at(cells, question), _at(cells, answer)
            if q and a:
                where = labels["row"].format(sheet=sheet, row=number)
                body = f"## Q: {q}\n{a}\n\n{labels['source']}: {name} {where}"
                parts.append(Part(body, {"type": "faq", "title": q[:120]}, suffix=f"-s{index}-r{number}"))
        return parts
    if risk is not None and mitigation is not None:
        for number, cells in data:
            r, m = _at(cells, risk), _at(cells, mitigation)
            if not r:
                continue
            where = labels["row"].format(sheet=sheet, row=number)
            details = _entry_details(header, cells, {risk, mitigation})
            mitigation_heading = header[mitigation] or ("対策" if _looks_japanese(r) else "Mitigation")
            body = "\n".join([f"## {where}: {r}", *details, "", f"### {mitigation_heading}", m or "-"])
            parts.append(Part(body, {"type": "risk", "title": r[:120]}, suffix=f"-s{index}-r{number}"))
        return parts
    row_label = "行" if labels["notes"] == "ノート" else "row"
    numbered = [[row_label, *header]] + [[str(number), *cells] for number, cells in data]
    body = "\n".join([f"## {sheet}", *_table_lines(numbered)])
    return [Part(body, {"title": f"{name.rsplit('.', 1)[0]}: {sheet}"}, suffix=f"-s{index}")]


def _at(cells: list[str], i: int) -> str:
    return cells[i] if i < len(cells) else ""


CONVERTERS: dict[str, Converter] = {
    ".md": markdown_parts,
    ".markdown": markdown_parts,
    ".txt": markdown_parts,
    ".html": html_parts,
    ".htm": html_parts,
    ".docx": docx_parts,
    ".pptx": pptx_parts,
    ".xlsx": xlsx_parts,
    ".pdf": pdf_parts,
}
# Old binary Office formats get a reason that says how to fix them.
LEGACY = {".doc": ".docx", ".ppt": ".pptx", ".xls": ".xlsx"}
# Files that live in a knowledge folder without being documents: its configuration, editors' lock files.
NOT_DOCUMENTS = (".yaml", ".yml")


def is_candidate(name: str) -> bool:
    """Whether a file in the knowledge folder is meant as a document (hidden and lock files are not)."""
    return not name.startswith((".", "~$")) and not name.lower().endswith(NOT_DOCUMENTS)


def convert(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """The Markdown parts of one file, or ValueError saying why it cannot be indexed."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    converter = CONVERTERS.get(suffix)
    if converter is None:
        if suffix in LEGACY:
            message = f"{suffix} is the old Office format; save it as {LEGACY[suffix]} and ingest again"
            raise SourceError(SourceProblem.old_office_format, message, suffix=suffix, modern=LEGACY[suffix])
        supported = ", ".join(sorted(CONVERTERS))
        message = f"unsupported file type {suffix or '(no extension)'!r}; supported: {supported}"
        code = SourceProblem.unsupported_type if suffix else SourceProblem.no_extension
        raise SourceError(code, message, **({"suffix": suffix} if suffix else {}), supported=supported)
    parts = [p for p in converter(raw, name, limits) if p.body.strip()]
    if not parts:
        raise SourceError(SourceProblem.no_text, "the file has no text to index")
    return parts
