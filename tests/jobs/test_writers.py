"""Writing results: CSV that Excel opens, XLSX that never turns a comment into a formula, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import BadInput
from service.jobs.writers import open_writer


def test_a_csv_result_has_a_utf8_bom_crlf_lines_and_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with open_writer(path) as writer:
        writer.write(["コメント", "confidence", "is_objection", "secondary_cause"])
        writer.write(["不安です", 0.613, True, None])
    expected = "\ufeffコメント,confidence,is_objection,secondary_cause\r\n不安です,0.613,true,\r\n"
    assert path.read_bytes() == expected.encode()


def test_a_cp932_result_can_be_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with open_writer(path, encoding="cp932") as writer:
        writer.write(["部署", "コメント"])
    assert path.read_bytes() == "部署,コメント\r\n".encode("cp932")


def test_a_comment_cp932_cannot_hold_is_refused_with_the_fix_rather_than_turned_into_a_question_mark(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.csv"
    path.write_text("the previous result", encoding="utf-8")
    with pytest.raises(BadInput, match="utf-8-sig") as refused, open_writer(path, encoding="cp932") as writer:
        writer.write(["コメント"])
        writer.write(["최고예요 👍"])
    assert "cp932" in refused.value.message
    assert path.read_text(encoding="utf-8") == "the previous result"  # nothing half-written replaced it


def test_an_xlsx_result_keeps_a_comment_that_starts_with_equals_as_text(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = tmp_path / "out.xlsx"
    with open_writer(path) as writer:
        writer.write(["コメント", "n"])
        writer.write(['=HYPERLINK("http://example.invalid","押して")', 3])
    sheet = load_workbook(path).active
    assert sheet is not None
    cell = sheet["A2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK") and sheet["B2"].value == 3


def test_a_failed_write_leaves_no_half_written_file(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), open_writer(path) as writer:
        writer.write(["a"])
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "comment",
    [
        '=HYPERLINK("http://evil.example","詳細")',
        "+81-3-0000",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_a_csv_cell_excel_would_run_as_a_formula_is_written_as_inert_text(tmp_path: Path, comment: str) -> None:
    path = tmp_path / "out.csv"
    with open_writer(path) as writer:
        writer.write([comment, -0.5, 3])
    cells = path.read_bytes().decode("utf-8-sig").rstrip("\r\n")
    assert cells.lstrip('"').startswith("'" + comment[0])
    assert cells.endswith(",-0.5,3"), "numbers stay numbers"
