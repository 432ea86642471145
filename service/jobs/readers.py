"""Survey files in: CSV/TSV in UTF-8, UTF-8 with BOM, Shift_JIS (CP932) or UTF-16, XLSX, JSONL; read as a stream.

Every reader yields the same InputRow: its cells in column order, and an error when the row itself is
damaged (undecodable bytes, a quote that never closes, too many cells), so that one bad line never
takes the rest of the file down with it.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from service.errors import BadInput, NemawashiError, problem
from service.jobs.problems import FileProblem
from service.text import strip_unsafe

Format = Literal["csv", "tsv", "xlsx", "jsonl"]
SAMPLE_BYTES = 256 * 1024
MAX_RECORD_LINES = 200  # a quoted cell spanning more lines than this is taken for a quote that never closes
MAX_RECORD_CHARS = 1_000_000
TEXT_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
XLSX_EXTENSIONS = (".xlsx", ".xlsm")
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls format

_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_BARE_CR = re.compile(rb"(?<=\r)(?!\n)")  # split after a CR that is not part of CRLF
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a pasted essay in one cell must not stop the file


@dataclass
class InputRow:
    """One data row: 0-based index in file order, where it starts in the file, its cells, what is wrong with it."""

    index: int
    line: int
    cells: list[Any]
    error: str | None = None
    cleaned: bool = False  # NUL characters or lone surrogates were removed from its cells


@dataclass
class Source:
    """A survey file opened for reading; rows() reads it again from the start each time it is called."""

    path: Path
    format: Format
    columns: list[str]
    encoding: str | None = None
    sheet: str | None = None
    delimiter: str = ","

    def rows(self) -> Iterator[InputRow]:
        if self.format == "xlsx":
            return _cleaned(_xlsx_rows(self))
        if self.format == "jsonl":
            return _cleaned(_jsonl_rows(self))
        return _cleaned(_csv_rows(self))


def _cleaned(rows: Iterator[InputRow]) -> Iterator[InputRow]:
    """Rows without NUL characters or lone surrogates (PostgreSQL and UTF-8 refuse them), marked when changed:
    one such cell must not fail the whole job."""
    for row in rows:
        for i, cell in enumerate(row.cells):
            if isinstance(cell, str):
                row.cells[i], changed = strip_unsafe(cell)
                row.cleaned = row.cleaned or changed
        yield row


@dataclass(frozen=True)
class SpreadsheetLimits:
    """What an XLSX may hold before any of it is read: a small zip can unpack to gigabytes, and a declared
    dimension of A1:XFD1048576 makes the reader pad 17 billion empty cells (see Settings.xlsx_*)."""

    max_unzipped_mb: int = 100
    max_columns: int = 1000
    max_cells: int = 10_000_000


DEFAULT_LIMITS = SpreadsheetLimits()


class SpreadsheetTooLarge(NemawashiError):
    status_code = 413


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    bad: bool = False


def open_source(
    path: Path,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    limits: SpreadsheetLimits | None = DEFAULT_LIMITS,
) -> Source:
    """Detect the format, encoding and header of a survey file; BadInput says what is wrong with the file.
    limits: None only for a file a job already accepted under the limits of its day."""
    if not path.is_file():
        raise BadInput(f"file not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if not head.strip():
        raise BadInput(f"{path.name} is empty: there is nothing to classify", detail=problem(FileProblem.empty_file))
    suffix = path.suffix.lower()
    if head.startswith(ZIP_MAGIC) or suffix in XLSX_EXTENSIONS:
        return _open_xlsx(path, sheet, limits)
    if head.startswith(OLE_MAGIC) or suffix == ".xls":
        raise BadInput(
            f"{path.name} is an old Excel .xls file: save it as .xlsx or CSV and try again",
            detail=problem(FileProblem.xls_file),
        )
    chosen = _text_encoding(path, head, encoding)
    if suffix in (".jsonl", ".ndjson") or (suffix in (".json", ".txt") and head.lstrip().startswith(b"{")):
        source = _open_jsonl(path, chosen)
    else:
        source = _open_csv(path, chosen, tab=TEXT_EXTENSIONS.get(suffix) == "tsv")
    if limits is not None and len(source.columns) > limits.max_columns:
        # An XLSX result sheet holds at most 16,384 columns; refuse now rather than fail at export.
        raise BadInput(
            f"{path.name} has {len(source.columns):,} columns; at most {limits.max_columns:,} are read "
            "(NEMAWASHI_XLSX_MAX_COLUMNS): keep only the survey's columns / "
            "列が多すぎます。必要な列だけを残してください",
            detail=problem(FileProblem.too_many_columns, columns=len(source.columns), limit=limits.max_columns),
        )
    return source


# --- text decoding --------------------------------------------------------------------------------------------


def _text_encoding(path: Path, head: bytes, override: str | None) -> str:
    """The file's encoding: the override, a BOM, UTF-8 if the sample decodes, EUC-JP when it reads as that and not
    as Shift_JIS, else CP932 (Excel in Japan)."""
    if override:
        try:
            name = codecs.lookup(override).name
            b"a".decode(name, errors="ignore")  # base64, rot13, zlib… are codecs, not text encodings: LookupError
        except LookupError as exc:
            raise BadInput(
                f"unknown encoding {override!r} (it must be a text encoding): try utf-8, utf-8-sig, cp932, euc_jp or "
                "utf-16 / "
                f"文字コード {override!r} は使えません",
                detail=problem(FileProblem.unknown_encoding, encoding=override),
            ) from exc
        return name
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        raise BadInput(
            f"{path.name} is not a text file (it contains NUL bytes): is it a spreadsheet or another binary file "
            "saved under a .csv name? Export it as CSV or XLSX",
            detail=problem(FileProblem.not_text),
        )
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    sample = head.splitlines()[:-1] if len(head) == SAMPLE_BYTES else head.splitlines()
    utf8_bad = sum(not _decodes(line, "utf-8") for line in sample)
    if utf8_bad == 0:
        return "utf-8"
    if _looks_euc_jp(sample):
        return "euc_jp"
    cp932_bad = sum(not _decodes(line, "cp932") for line in sample)
    if cp932_bad > max(2, len(sample) // 3) and utf8_bad > max(2, len(sample) // 3):
        raise BadInput(
            f"{path.name} does not read as text in UTF-8 or Shift_JIS (CP932): is it a binary file? "
            "If it is text in another encoding, pass --encoding",
            detail=problem(FileProblem.undecodable),
        )
    return "cp932" if cp932_bad <= utf8_bad else "utf-8"


def _looks_euc_jp(sample: list[bytes]) -> bool:
    """EUC-JP text decodes as CP932 too, as mojibake. Its Japanese characters are byte pairs in A1–FE (8E/8F start
    half-width kana and rarer kanji), while Shift_JIS kana and most kanji start with 81–9F: a sample that decodes
    as EUC-JP and has no byte in 80–A0 other than 8E/8F is EUC-JP."""
    if not all(_decodes(line, "euc_jp") for line in sample):
        return False
    return not any(0x80 <= byte <= 0xA0 and byte not in (0x8E, 0x8F) for line in sample for byte in line)


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _lines(path: Path, encoding: str) -> Iterator[_Line]:
    """Physical lines (with their line endings), each decoded on its own so one mis-encoded line stays one line."""
    if encoding.startswith("utf-16") or encoding not in ("utf-8", "utf-8-sig", "cp932", "shift_jis", "euc_jp"):
        with path.open("r", encoding=encoding, errors="replace", newline="") as text:
            for number, line in enumerate(text, start=1):
                yield _Line(number, line.lstrip("\ufeff") if number == 1 else line, "\ufffd" in line)
        return
    fallback = "cp932" if encoding.startswith("utf-8") else "utf-8"
    with path.open("rb") as handle:
        for number, raw in enumerate(_split_bare_cr(handle), start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            yield _decode_line(number, raw, encoding.replace("-sig", ""), fallback)


def _split_bare_cr(handle: Iterator[bytes]) -> Iterator[bytes]:
    """Physical lines ending in LF, CRLF or a bare CR (old Mac exports), each with its ending."""
    for raw in handle:
        if b"\r" not in raw.rstrip(b"\r\n") and not raw.endswith(b"\r"):
            yield raw
            continue
        yield from (part for part in _BARE_CR.split(raw) if part)


def _decode_line(number: int, raw: bytes, encoding: str, fallback: str) -> _Line:
    # Mixed files happen when rows are pasted together from different exports: try the other encoding too.
    for candidate in (encoding, fallback):
        try:
            text = raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        # CP932 maps almost any byte to something; private-use characters mean it was not really CP932.
        if candidate != "cp932" or not _PRIVATE_USE.search(text):
            return _Line(number, text)
    return _Line(number, raw.decode(encoding, errors="replace"), bad=True)


# --- CSV ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    line: int
    cells: list[str]
    error: str | None = None


def _open_csv(path: Path, encoding: str, *, tab: bool) -> Source:
    first = next((line for line in _lines(path, encoding) if line.text.strip()), None)
    if first is None:
        raise BadInput(f"{path.name} is empty: there is nothing to classify", detail=problem(FileProblem.empty_file))
    delimiter = "\t" if tab or first.text.count("\t") > first.text.count(",") else ","
    header = next(_records(_lines(path, encoding), delimiter))
    if header.error:
        raise BadInput(
            f"{path.name}: the header row cannot be read ({header.error})",
            detail=problem(FileProblem.unreadable_header),
        )
    columns = [_column_name(name, i) for i, name in enumerate(header.cells)]
    source = Source(path, "tsv" if delimiter == "\t" else "csv", columns, encoding=encoding, delimiter=delimiter)
    _require_rows(source)
    return source


def _column_name(raw: Any, index: int) -> str:
    name = "" if raw is None else strip_unsafe(str(raw))[0].strip().lstrip("\ufeff")
    return name or f"(column {index + 1})"


def _require_rows(source: Source) -> None:
    if next(iter(source.rows()), None) is None:
        raise BadInput(
            f"{source.path.name} has a header row ({', '.join(source.columns)}) but no data rows: "
            "there is nothing to classify",
            detail=problem(FileProblem.no_rows, columns=source.columns),
        )


def _csv_rows(source: Source) -> Iterator[InputRow]:
    records = _records(_lines(source.path, source.encoding or "utf-8"), source.delimiter)
    next(records, None)  # the header
    width = len(source.columns)
    for index, record in enumerate(records):
        cells: list[Any] = list(record.cells)
        error = record.error
        if len(cells) > width:
            extra = cells[width - 1 :]
            cells = [*cells[: width - 1], source.delimiter.join(extra)]
            error = error or (
                f"line {record.line} has {len(record.cells)} cells but the header has {width}: "
                "an unquoted comma or tab? The extra cells were kept in the last column"
            )
        cells += [""] * (width - len(cells))
        yield InputRow(index, record.line, cells, error)


class _Broken(Exception):
    """The pending lines do not make one record."""


def _records(lines: Iterator[_Line], delimiter: str) -> Iterator[_Record]:
    """Logical CSV records; a quote that never closes spoils only the line it is on."""
    replay: list[_Line] = []
    pending: list[_Line] = []
    while True:
        line = replay.pop() if replay else next(lines, None)
        if line is None:
            if not pending:
                return
            yield _broken(pending[0], delimiter)
            replay.extend(reversed(pending[1:]))
            pending = []
            continue
        if not pending and not line.text.strip():
            continue  # blank lines are not rows
        pending.append(line)
        try:
            record = _parse(pending, delimiter)
        except _Broken:
            yield _broken(pending[0], delimiter)
            replay.extend(reversed(pending[1:]))
            pending = []
            continue
        if record is not None:
            pending = []
            yield record
        elif len(pending) >= MAX_RECORD_LINES or sum(len(p.text) for p in pending) > MAX_RECORD_CHARS:
            yield _broken(pending[0], delimiter)
            replay.extend(reversed(pending[1:]))
            pending = []


def _parse(pending: list[_Line], delimiter: str) -> _Record | None:
    """The record in these lines, or None while a quoted cell is still open."""
    texts = [p.text for p in pending]
    try:
        rows = list(csv.reader(texts, delimiter=delimiter, strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return None
        if len(pending) > 1:
            raise _Broken from exc  # a quote closed by a later line's quote: the first line was broken
        rows = list(csv.reader(texts, delimiter=delimiter))  # a stray quote inside a cell: read it as written
    cells = rows[0] if rows else []
    bad = [p.number for p in pending if p.bad]
    error = f"line {bad[0]} is neither UTF-8 nor Shift_JIS (CP932): unreadable characters shown as �" if bad else None
    return _Record(pending[0].number, cells, error)


def _broken(line: _Line, delimiter: str) -> _Record:
    cells = next(csv.reader([line.text], delimiter=delimiter), [])
    cells = [cell.rstrip("\r\n") for cell in cells]
    return _Record(line.number, cells, f"line {line.number} has a quote that is never closed: the row was not read")


# --- JSONL ----------------------------------------------------------------------------------------------------


def _open_jsonl(path: Path, encoding: str) -> Source:
    columns: dict[str, None] = {}
    for line in _lines(path, encoding):
        value = _json_object(line.text)
        if isinstance(value, dict):
            columns.update(dict.fromkeys(str(key) for key in value))
    if not columns:
        raise BadInput(
            f'{path.name} has no JSON objects: JSONL needs one object per line, like {{"comment": ...}}',
            detail=problem(FileProblem.no_json_objects),
        )
    return Source(path, "jsonl", list(columns), encoding=encoding)


def _json_object(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return ValueError


def _jsonl_rows(source: Source) -> Iterator[InputRow]:
    index = 0
    for line in _lines(source.path, source.encoding or "utf-8"):
        if not line.text.strip():
            continue
        value = _json_object(line.text)
        if isinstance(value, dict):
            cells = [_json_cell(value.get(name)) for name in source.columns]
            yield InputRow(index, line.number, cells, "unreadable characters" if line.bad else None)
        else:
            what = "not valid JSON" if value is ValueError else "not a JSON object"
            cells = [""] * len(source.columns)
            yield InputRow(index, line.number, cells, f"line {line.number} is {what}: the row was not read")
        index += 1


def _json_cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, ensure_ascii=False)


# --- XLSX -----------------------------------------------------------------------------------------------------


def _open_xlsx(path: Path, sheet: str | None, limits: SpreadsheetLimits | None) -> Source:
    if limits is not None:
        _refuse_zip_bomb(path, limits)
    with _workbook(path) as workbook:
        names = list(workbook.sheetnames)
        if sheet is not None and sheet not in names:
            raise BadInput(
                f"{path.name} has no sheet {sheet!r}; its sheets are: {', '.join(names)}",
                detail=problem(FileProblem.no_such_sheet, sheet=sheet, sheets=names),
            )
        name = sheet or names[0]
        if limits is not None:
            _refuse_oversized_sheet(path.name, workbook[name], limits)
        first = next(_xlsx_values(workbook[name]), None)
    if first is None:
        raise BadInput(
            f"{path.name}: sheet {name!r} is empty: there is nothing to classify",
            detail=problem(FileProblem.empty_sheet, sheet=name),
        )
    header = first[1]
    width = max((i + 1 for i, v in enumerate(header) if v is not None), default=0)
    source = Source(path, "xlsx", [_column_name(v, i) for i, v in enumerate(header[:width])], sheet=name)
    _require_rows(source)
    return source


def _refuse_zip_bomb(path: Path, limits: SpreadsheetLimits) -> None:
    """413 when the parts of the XLSX declare more than the limit unpacked (checked before anything is unpacked)."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInput(
            f"{path.name} is not a readable XLSX file ({type(exc).__name__}): save it again from Excel",
            detail=problem(FileProblem.unreadable_xlsx),
        ) from exc
    if unpacked > limits.max_unzipped_mb * 1024 * 1024:
        raise SpreadsheetTooLarge(
            f"{path.name} unpacks to {unpacked / 1024 / 1024:,.0f} MB; the limit is {limits.max_unzipped_mb} MB "
            "(NEMAWASHI_XLSX_MAX_UNZIPPED_MB): save the survey as CSV, or split it / "
            "展開後のサイズが上限を超えています。CSV で保存するか分割してください",
            detail=problem(
                FileProblem.xlsx_too_large,
                unzipped_bytes=unpacked,
                unzipped_mb=round(unpacked / 1024 / 1024),
                limit_mb=limits.max_unzipped_mb,
            ),
        )


def _refuse_oversized_sheet(name: str, worksheet: Any, limits: SpreadsheetLimits) -> None:
    """422 when the sheet declares more columns or cells than the limits (its dimension, e.g. A1:XFD1048576)."""
    columns, rows = worksheet.max_column or 0, worksheet.max_row or 0
    if columns > limits.max_columns or columns * rows > limits.max_cells:
        raise BadInput(
            f"{name}: sheet {worksheet.title!r} declares {rows:,} rows × {columns:,} columns; the limits are "
            f"{limits.max_columns:,} columns and {limits.max_cells:,} cells (NEMAWASHI_XLSX_MAX_COLUMNS, "
            "NEMAWASHI_XLSX_MAX_CELLS): copy only the survey's cells to a new sheet, or save it as CSV / "
            "シートの範囲が大きすぎます。必要なセルだけを新しいシートにコピーしてください",
            detail=problem(
                FileProblem.sheet_too_large,
                sheet=worksheet.title,
                rows=rows,
                columns=columns,
                max_columns=limits.max_columns,
                max_cells=limits.max_cells,
            ),
        )


@contextmanager
def _workbook(path: Path) -> Iterator[Any]:
    """The workbook in read-only (streaming) mode; opened from a handle so that a .csv name does not matter."""
    from openpyxl import load_workbook  # imported here: openpyxl is only needed for spreadsheets

    with path.open("rb") as handle:
        try:
            workbook = load_workbook(handle, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise BadInput(
                f"{path.name} is not a readable XLSX file ({type(exc).__name__}): save it again from Excel",
                detail=problem(FileProblem.unreadable_xlsx),
            ) from exc
        except Exception as exc:  # openpyxl raises its own InvalidFileException and friends
            raise BadInput(
                f"{path.name} is not a readable XLSX file: {str(exc)[:200]}",
                detail=problem(FileProblem.unreadable_xlsx),
            ) from exc
        try:
            yield workbook
        finally:
            workbook.close()


def _xlsx_values(worksheet: Any) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row number, values) of rows that have any value (Excel keeps formatted but empty rows around)."""
    for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
        if any(v is not None and str(v).strip() for v in values):
            yield number, values


def _xlsx_rows(source: Source) -> Iterator[InputRow]:
    width = len(source.columns)
    with _workbook(source.path) as workbook:
        rows = _xlsx_values(workbook[source.sheet])
        next(rows, None)  # the header
        for index, (number, values) in enumerate(rows):
            cells = list(values[:width]) + [None] * max(0, width - len(values))
            extra = [v for v in values[width:] if v is not None and str(v).strip()]
            error = None
            if extra:  # kept, as with CSV: appended to the last column of the output
                cells[-1] = " | ".join(str(v) for v in [cells[-1], *extra] if v is not None)
                error = f"row {number} has values outside the header's {width} columns: they were kept in the last one"
            yield InputRow(index, number, cells, error)


def read_text(value: Any) -> str:
    """A cell as comment text."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value).strip()
