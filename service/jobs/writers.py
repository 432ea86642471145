"""Results out: CSV (UTF-8 with BOM so Excel opens it, or another encoding) or XLSX, chosen by the extension."""

from __future__ import annotations

import csv
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Protocol

from service.errors import BadInput

XLSX_MAX_CELL = 32_767  # Excel's limit; longer cells make Excel "repair" the file
# OWASP CSV injection: a text cell starting with one of these is a formula to Excel (tab and CR too, before =).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A whole number as text ("1042" from a CSV): a number in Excel, so it sorts and filters as one. Leading zeros
# ("00123") and more than 15 digits (Excel's precision) stay text.
_WHOLE_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")


class RowWriter(Protocol):
    def write(self, cells: list[Any]) -> None: ...


def csv_value(value: Any) -> str:
    """A cell as CSV text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() or abs(value) >= 1e6 else repr(round(value, 6))
    return neutralise_formula(str(value)) if isinstance(value, str) else str(value)


def neutralise_formula(text: str) -> str:
    """Text that Excel would run as a formula, made inert with a leading apostrophe (as OWASP recommends)."""
    return "'" + text if text.startswith(FORMULA_START) else text


class _CsvWriter:
    def __init__(self, handle: Any, delimiter: str) -> None:
        self._writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")

    def write(self, cells: list[Any]) -> None:
        self._writer.writerow([csv_value(v) for v in cells])


class _XlsxWriter:
    """Rows into a write-only sheet: a frozen header row with filters, the given column widths, whole numbers as
    numbers, text never a formula."""

    def __init__(self, worksheet: Any, widths: Sequence[float]) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        from openpyxl.utils import get_column_letter

        self._ws = worksheet
        self._cell = WriteOnlyCell
        self._illegal = ILLEGAL_CHARACTERS_RE
        self._letter = get_column_letter
        self._rows, self._columns = 0, 0
        for index, width in enumerate(widths, 1):  # a write-only sheet takes widths before its first row
            worksheet.column_dimensions[get_column_letter(index)].width = width
        worksheet.freeze_panes = "A2"

    def write(self, cells: list[Any]) -> None:
        self._ws.append([self._value(v) for v in cells])
        self._rows += 1
        self._columns = max(self._columns, len(cells))

    def finish(self) -> None:
        if self._rows and self._columns:
            self._ws.auto_filter.ref = f"A1:{self._letter(self._columns)}{self._rows}"

    def _value(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if _WHOLE_NUMBER.fullmatch(value):
            return int(value)
        text = self._illegal.sub("", value)
        if len(text) > XLSX_MAX_CELL:
            text = text[: XLSX_MAX_CELL - 1] + "…"
        if text.startswith("="):  # a comment is text, never a formula
            cell = self._cell(self._ws, value=text)
            cell.data_type = "s"
            return cell
        return text


def output_format(path: Path) -> str:
    """xlsx for .xlsx/.xlsm, tsv for .tsv, else csv."""
    suffix = path.suffix.lower()
    return "xlsx" if suffix in (".xlsx", ".xlsm") else "tsv" if suffix in (".tsv", ".tab") else "csv"


@contextmanager
def open_writer(
    path: Path, *, encoding: str = "utf-8-sig", widths: Sequence[float] = (), sheet: str = "classified"
) -> Iterator[RowWriter]:
    """A row writer on a temporary file that replaces `path` only when everything was written. widths and sheet: the
    XLSX column widths, in characters, and the name of its sheet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.part")  # two first downloads at once do not collide
    fmt = output_format(path)
    try:
        if fmt == "xlsx":
            from openpyxl import Workbook

            workbook = Workbook(write_only=True)
            xlsx = _XlsxWriter(workbook.create_sheet(sheet), widths)
            yield xlsx
            xlsx.finish()
            workbook.save(partial)
        else:
            with partial.open("w", encoding=encoding, newline="") as handle:
                yield _CsvWriter(handle, "\t" if fmt == "tsv" else ",")
        os.replace(partial, path)
    except UnicodeEncodeError as exc:  # never a silent "?" in a copied comment
        bad = exc.object[exc.start : exc.end]
        raise BadInput(
            f"the result holds {bad!r}, which {encoding} cannot encode: write it as utf-8-sig (Excel opens it) or .xlsx"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
