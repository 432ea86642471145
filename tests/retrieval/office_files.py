"""Office and PDF knowledge files built in tests with the same libraries that read them (Japanese content)."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import openpyxl
import pptx
from PIL import Image
from pptx.util import Inches
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject


def make_docx(path: Path, *, title: str, sections: list[tuple[str, str]], table: list[list[str]] | None = None) -> Path:
    """A Word file: a Title paragraph, then a Heading 1 and a body paragraph per section, then a table."""
    document = docx.Document()
    document.add_paragraph(title, style="Title")
    for heading, body in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(body)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def make_pptx(path: Path, slides: list[tuple[str, list[str], str]]) -> Path:
    """A deck of (title, bullet lines, speaker notes) slides."""
    deck = pptx.Presentation()
    for title, bullets, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0] if bullets else ""
        for line in bullets[1:]:
            body.add_paragraph().text = line
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    path.parent.mkdir(parents=True, exist_ok=True)
    deck.save(str(path))
    return path


def make_picture_pptx(path: Path, slides: int = 2) -> Path:
    """A deck whose slides hold only a picture (a scanned handout, a screenshot)."""
    deck = pptx.Presentation()
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(picture, format="PNG")
    for _ in range(slides):
        slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
        picture.seek(0)
        slide.shapes.add_picture(picture, Inches(1), Inches(1))
    deck.save(str(path))
    return path


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A workbook with one sheet per entry (first row is the header)."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(str(path))
    return path


def _japanese_font() -> DictionaryObject:
    """A CID font PDF viewers know without embedding (Adobe-Japan1), text in UTF-16BE (UniJIS-UTF16-H)."""
    descendant = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/CIDFontType0"),
            NameObject("/BaseFont"): NameObject("/KozMinPr6N-Regular"),
            NameObject("/CIDSystemInfo"): DictionaryObject(
                {
                    NameObject("/Registry"): _pdf_string("Adobe"),
                    NameObject("/Ordering"): _pdf_string("Japan1"),
                    NameObject("/Supplement"): NumberObject(6),
                }
            ),
        }
    )
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type0"),
            NameObject("/BaseFont"): NameObject("/KozMinPr6N-Regular-UniJIS-UTF16-H"),
            NameObject("/Encoding"): NameObject("/UniJIS-UTF16-H"),
            NameObject("/DescendantFonts"): ArrayObject([descendant]),
        }
    )


def _pdf_string(text: str):  # type: ignore[no-untyped-def]
    from pypdf.generic import TextStringObject

    return TextStringObject(text)


def make_pdf(path: Path, pages: list[list[str]], *, password: str | None = None) -> Path:
    """A PDF whose pages carry these lines as a real text layer (Japanese included), optionally encrypted."""
    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(width=595, height=842)
        font = writer._add_object(_japanese_font())
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        ops = ["BT", "/F1 12 Tf", "14 TL", "50 800 Td"]
        for line in lines:
            ops.append(f"<{line.encode('utf-16-be').hex()}> Tj T*")
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
    if password:
        writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        writer.write(out)
    return path


def make_blank_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF with pages but no text layer, as a scanner makes (without OCR)."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    with path.open("wb") as out:
        writer.write(out)
    return path
