"""Reading survey files as staff export them: encodings, delimiters, spreadsheets, and damaged files."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import BadInput
from service.jobs.columns import resolve_layout
from service.jobs.readers import open_source
from tests.jobs.helpers import survey_rows, write_csv, write_jsonl, write_xlsx


def cells(path: Path, **kw: str) -> list[list[object]]:
    return [row.cells for row in open_source(path, **kw).rows()]


def test_a_shift_jis_csv_saved_by_excel_is_detected_and_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "survey.csv", survey_rows(3))
    source = open_source(path)
    assert source.encoding == "cp932" and source.columns == ["回答ID", "部署", "コメント"]
    assert [row.cells for row in source.rows()] == survey_rows(3)


def test_utf8_with_bom_and_plain_utf8_read_the_same(tmp_path: Path) -> None:
    bom = write_csv(tmp_path / "bom.csv", survey_rows(2), encoding="utf-8-sig")
    plain = write_csv(tmp_path / "plain.csv", survey_rows(2), encoding="utf-8")
    assert open_source(bom).columns == open_source(plain).columns == ["回答ID", "部署", "コメント"]
    assert cells(bom) == cells(plain) == survey_rows(2)


def test_the_encoding_can_be_overridden(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "survey.csv", survey_rows(2), encoding="utf-8")
    assert open_source(path, encoding="utf-8").encoding == "utf-8"
    with pytest.raises(BadInput, match="unknown encoding"):
        open_source(path, encoding="klingon")


def test_a_tab_separated_file_is_read_by_its_delimiter(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "survey.txt", survey_rows(2), encoding="utf-8", delimiter="\t")
    source = open_source(path)
    assert source.format == "tsv" and cells(path) == survey_rows(2)


def test_utf16_unicode_text_from_excel_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "unicode.txt", survey_rows(2), encoding="utf-16", delimiter="\t")
    assert cells(path) == survey_rows(2)


def test_an_xlsx_first_sheet_or_a_named_sheet_is_read(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "survey.xlsx", [[1, "営業一課", "不安です"], [2, None, "反対です"]])
    assert cells(path) == [[1, "営業一課", "不安です"], [2, None, "反対です"]]
    assert open_source(path, sheet="回答").sheet == "回答"
    with pytest.raises(BadInput, match="no sheet 'Sheet9'; its sheets are: 回答"):
        open_source(path, sheet="Sheet9")


def test_xlsx_values_beyond_the_header_are_kept_in_the_last_column_and_said(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "survey.xlsx", [[1, "営業一課", "費用が", "高すぎる"], [2, "営業二課", "普通です"]])
    rows = list(open_source(path).rows())
    assert rows[0].cells == [1, "営業一課", "費用が | 高すぎる"] and rows[0].error and "kept" in rows[0].error
    assert rows[1].cells == [2, "営業二課", "普通です"] and rows[1].error is None


def test_an_xlsx_renamed_to_csv_is_still_read_as_a_spreadsheet(tmp_path: Path) -> None:
    xlsx = write_xlsx(tmp_path / "survey.xlsx", [[1, "営業一課", "不安です"]])
    renamed = tmp_path / "survey.csv"
    renamed.write_bytes(xlsx.read_bytes())
    assert open_source(renamed).format == "xlsx"


def test_jsonl_columns_are_the_union_of_keys_in_order_of_appearance(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "s.jsonl", [{"id": 1, "comment": "不安です"}, {"id": 2, "dept": "経理", "comment": "高い"}]
    )
    source = open_source(path)
    assert source.columns == ["id", "comment", "dept"]
    assert cells(path) == [[1, "不安です", None], [2, "高い", "経理"]]


def test_a_jsonl_line_that_is_not_json_becomes_an_error_row_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"comment": "一行目"}\n{"comment": 壊れた\n{"comment": "三行目"}\n', encoding="utf-8")
    rows = list(open_source(path).rows())
    assert [r.cells for r in rows] == [["一行目"], [""], ["三行目"]]
    assert rows[1].error == "line 2 is not valid JSON: the row was not read" and rows[2].error is None


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\r\n\r\n", "is empty"), ("回答ID,部署,コメント\r\n".encode("cp932"), "no data rows")],
)
def test_an_empty_file_or_a_header_alone_is_refused_with_a_message(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "survey.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        open_source(path)


def test_a_binary_file_renamed_csv_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20)
    with pytest.raises(BadInput, match="not a text file"):
        open_source(path)


def test_an_old_xls_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "survey.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(BadInput, match=r"save it as \.xlsx or CSV"):
        open_source(path)


def test_a_broken_quote_spoils_only_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "survey.csv"
    lines = ["id,部署,コメント", '1,営業,"引き継ぎが心配', '2,営業,"改行を含む\r\nコメント"', "3,経理,費用が高い"]
    path.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    rows = list(open_source(path).rows())
    assert [r.cells[0] for r in rows] == ["1", "2", "3"]
    assert rows[0].error and "quote that is never closed" in rows[0].error and "line 2" in rows[0].error
    assert rows[1].cells[2] == "改行を含む\r\nコメント" and rows[1].error is None
    assert rows[2].cells == ["3", "経理", "費用が高い"] and rows[2].error is None


def test_mixed_encodings_are_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "merged.csv"
    header = "id,コメント\r\n".encode()
    utf8 = "1,外注には反対です\r\n".encode()
    sjis = "2,ボーナスが心配です\r\n".encode("cp932")
    garbage = b"3,\xff\xfe\xfa\xfb\r\n"
    path.write_bytes(header + utf8 + sjis + garbage)
    rows = list(open_source(path).rows())
    assert [r.cells[1] for r in rows[:2]] == ["外注には反対です", "ボーナスが心配です"]
    assert rows[0].error is None and rows[1].error is None
    assert rows[2].error and "neither UTF-8 nor Shift_JIS" in rows[2].error


def test_a_row_with_too_many_cells_keeps_them_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "survey.csv"
    path.write_text("id,コメント\n1,費用が,高すぎる\n2,普通の意見です\n", encoding="utf-8")
    rows = list(open_source(path).rows())
    assert rows[0].cells == ["1", "費用が,高すぎる"] and rows[0].error and "3 cells" in rows[0].error
    assert rows[1].error is None


def test_the_comment_column_is_detected_by_its_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", survey_rows(4))
    layout = resolve_layout(open_source(path))
    assert (layout.text_column, layout.department_column) == ("コメント", "部署")


def test_the_comment_column_is_detected_by_its_content_when_no_name_says_so(tmp_path: Path) -> None:
    rows = [[str(i), "A", c] for i, c in enumerate(["外注が始まったら仕事はなくなるの？", "費用が高すぎると思います"])]
    path = write_csv(tmp_path / "s.csv", rows, header=("no", "grp", "q1"))
    assert resolve_layout(open_source(path)).text_column == "q1"


def test_two_comment_like_columns_are_ambiguous_and_the_message_lists_the_columns(tmp_path: Path) -> None:
    rows = [["1", "外注が始まったら仕事はなくなるの？", "引き継ぎの段取りが不安です"]]
    path = write_csv(tmp_path / "s.csv", rows, header=("id", "ご意見", "自由記述"))
    with pytest.raises(BadInput) as caught:
        resolve_layout(open_source(path))
    message = caught.value.message
    assert "cannot tell which column" in message and "--text-column" in message
    assert "'ご意見'" in message and "'自由記述'" in message and "'id'" in message
    assert resolve_layout(open_source(path), text_column="自由記述").text_index == 2


def test_a_file_without_any_free_text_column_is_refused_with_its_columns(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "s.csv", [["1", "3", "2024/01/05"], ["2", "5", "2024/01/06"]], header=("id", "score", "date")
    )
    with pytest.raises(BadInput, match=r"no column that looks like free text.*'score'"):
        resolve_layout(open_source(path))


def test_an_unknown_text_column_lists_the_real_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", survey_rows(2))
    with pytest.raises(BadInput, match=r"is not a column of s\.csv\. Its columns are: 回答ID, 部署, コメント"):
        resolve_layout(open_source(path), text_column="comment")


def test_a_file_that_already_has_result_columns_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [["1", "不安です", "job_fear"]], header=("id", "コメント", "root_cause"))
    with pytest.raises(BadInput, match="already has the column"):
        resolve_layout(open_source(path))
    header = ("id", "コメント", "根本原因（ID）")
    japanese = write_csv(tmp_path / "ja.csv", [["1", "不安です", "job_fear"]], header=header)
    with pytest.raises(BadInput, match="already has the column"):  # a Japanese result file, uploaded again
        resolve_layout(open_source(japanese))
