"""What can be wrong with a user's survey file, as codes: the API's `error` stays English for programs, and the
upload page words each code in its own language (service/web/i18n.py, jobs.problems) from the values in `detail`."""

from __future__ import annotations

from enum import StrEnum


class FileProblem(StrEnum):
    """Why an uploaded file was refused; each has a message in both page languages."""

    no_file = "no_file"
    too_large = "too_large"
    empty_file = "empty_file"
    xls_file = "xls_file"
    not_text = "not_text"
    unknown_encoding = "unknown_encoding"
    undecodable = "undecodable"
    unreadable_header = "unreadable_header"
    no_rows = "no_rows"
    too_many_columns = "too_many_columns"
    no_json_objects = "no_json_objects"
    unreadable_xlsx = "unreadable_xlsx"
    no_such_sheet = "no_such_sheet"
    empty_sheet = "empty_sheet"
    xlsx_too_large = "xlsx_too_large"
    sheet_too_large = "sheet_too_large"
    result_columns = "result_columns"
    unknown_column = "unknown_column"
    ambiguous_column = "ambiguous_column"
    no_text_column = "no_text_column"
    ambiguous_text_column = "ambiguous_text_column"
