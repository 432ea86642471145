"""Why a knowledge file cannot be indexed, as codes: the API, the logs and the CLI keep the English reason, and the
admin page (/admin/kb) words each code in its own language (service/web/i18n.py, kb_admin.problems).

sources.py raises SourceError (a ValueError whose text is the English reason) with the code and the values the
reason quotes; an upload refused at once carries them in the error's detail. The skipped files' reasons are stored
as English text (kb_skipped.reason, kb_files.message, written before codes existed and by code outside sources.py),
so the page words a stored reason at display time from this table: a pattern over each English reason and its
code, filled with the pattern's named groups (a group named q_<name> is a Python repr: its quotes are dropped).
A reason no pattern knows is shown as a generic one ("unknown"), never in English."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from service.errors import problem


class SourceProblem(StrEnum):
    """Why a knowledge file was skipped or an upload refused; each has a message in both page languages."""

    not_utf8 = "not_utf8"
    bad_front_matter = "bad_front_matter"
    bad_metadata = "bad_metadata"
    no_text_after_front_matter = "no_text_after_front_matter"
    unreadable_zip = "unreadable_zip"
    zip_too_large = "zip_too_large"
    unreadable_office = "unreadable_office"
    unreadable_pdf = "unreadable_pdf"
    pdf_password = "pdf_password"
    no_slide_text = "no_slide_text"
    no_pdf_text = "no_pdf_text"
    too_many_cells = "too_many_cells"
    old_office_format = "old_office_format"
    unsupported_type = "unsupported_type"
    no_extension = "no_extension"
    no_text = "no_text"
    too_large = "too_large"
    duplicate_id = "duplicate_id"
    bad_file_name = "bad_file_name"
    no_file = "no_file"
    unknown = "unknown"


class SourceError(ValueError):
    """A file that cannot be indexed: str() is the English reason (as before codes), plus its code and values."""

    def __init__(self, code: SourceProblem, message: str, **values: object) -> None:
        super().__init__(message)
        self.code = code
        self.values = values


_QUOTED = r"'.*'|\".*\""
REASONS: tuple[tuple[re.Pattern[str], SourceProblem], ...] = tuple(
    (re.compile(pattern, re.DOTALL), code)
    for pattern, code in (
        # sources.py
        (r"not UTF-8 text \((?P<reason>.*) at byte (?P<byte>\d+)\); save it as UTF-8", SourceProblem.not_utf8),
        (r"front matter is not valid YAML: (?P<error>.*)", SourceProblem.bad_front_matter),
        (r"the document has no text after its front matter", SourceProblem.no_text_after_front_matter),
        (
            r"not a readable (?P<kind>\.\w+) file \(damaged, or not really \.\w+\): (?P<error>.*)",
            SourceProblem.unreadable_zip,
        ),
        (
            r"the (?P<kind>\.\w+) file would unpack to (?P<unpacked_mb>[\d,]+) MB in (?P<parts>[\d,]+) parts; "
            r"the limit is (?P<limit_mb>[\d,]+) MB \(NEMAWASHI_KB_MAX_UNPACKED_MB\): possibly a decompression bomb",
            SourceProblem.zip_too_large,
        ),
        (
            r"cannot read this (?P<kind>\.pdf) file \((?P<error>.*)\); export it again from the original, "
            r"then ingest again",
            SourceProblem.unreadable_pdf,
        ),
        (
            r"cannot read this (?P<kind>\.\w+) file \((?P<error>.*)\); open it in Office and save it again, "
            r"then ingest again",
            SourceProblem.unreadable_office,
        ),
        (
            r"the PDF is password-protected; save a copy without a password and ingest that",
            SourceProblem.pdf_password,
        ),
        (
            r"no text on any of its (?P<slides>[\d,]+) slides \(only pictures\?\); "
            r"add the text to the slides or the notes",
            SourceProblem.no_slide_text,
        ),
        (
            r"the PDF has no text layer on any of its (?P<pages>[\d,]+) pages \(a scan\?\); "
            r"export it from the original document, or run OCR on it first",
            SourceProblem.no_pdf_text,
        ),
        (
            rf"sheet (?P<q_sheet>{_QUOTED}) has more than (?P<limit>[\d,]+) cells \((?P<cells>[\d,]+)\); "
            r"the limit is [\d,]+ \(NEMAWASHI_KB_MAX_CELLS\): "
            r"keep the FAQ or risk register in a workbook of its own",
            SourceProblem.too_many_cells,
        ),
        (
            r"(?P<suffix>\.\w+) is the old Office format; save it as (?P<modern>\.\w+) and ingest again",
            SourceProblem.old_office_format,
        ),
        (r"unsupported file type '\(no extension\)'; supported: (?P<supported>.*)", SourceProblem.no_extension),
        (
            rf"unsupported file type (?P<q_suffix>{_QUOTED}); supported: (?P<supported>.*)",
            SourceProblem.unsupported_type,
        ),
        (r"the file has no text to index", SourceProblem.no_text),
        # documents.py: front matter values, the size limit (the upload route words it before reading the file)
        (r"front matter: (?P<error>.*)", SourceProblem.bad_metadata),
        (
            r"the file is (?P<size_mb>[\d.,]+) MB; the limit is (?P<limit_mb>[\d.,]+) MB "
            r"\(NEMAWASHI_KB_MAX_FILE_MB\): split it or raise the limit",
            SourceProblem.too_large,
        ),
        (
            r"the file is larger than the (?P<limit_mb>[\d.,]+) MB limit \(NEMAWASHI_KB_MAX_FILE_MB\)",
            SourceProblem.too_large,
        ),
        # documents.py, kb_files.py, uploads.py: an id two files declare; an upload's name; no file sent
        (
            rf"duplicate id (?P<q_doc_id>{_QUOTED}) \(also in (?P<other>.*?)\)"
            r"(?:: change its id or delete that file first)?",
            SourceProblem.duplicate_id,
        ),
        (rf"not a usable file name: (?P<q_name>{_QUOTED})", SourceProblem.bad_file_name),
        (r"send the knowledge file as the multipart field `file`", SourceProblem.no_file),
    )
)


def reason_problem(reason: str) -> tuple[SourceProblem, dict[str, str]]:
    """The code of a stored English reason and the values its wording takes (unknown when no pattern matches)."""
    for pattern, code in REASONS:
        match = pattern.fullmatch(reason.strip())
        if match:
            values = {}
            for name, value in match.groupdict().items():
                if name.startswith("q_"):
                    name, value = name[2:], value[1:-1]
                values[name] = value
            return code, values
    return SourceProblem.unknown, {}


def error_problem(exc: Exception) -> dict[str, object]:
    """An error's code and values for an API detail: its own when it has them, else matched from its text."""
    if isinstance(exc, SourceError):
        return problem(exc.code, **exc.values)
    code, values = reason_problem(str(exc))
    return problem(code, **values)


def reason_text(reason: str | None, lang: str) -> str:
    """A stored reason as a reader of lang sees it; English stays as stored (the API's and the CLI's wording)."""
    from service.web.i18n import TEXTS  # the web layer's texts; imported late so the CLI's import stays light

    if lang == "en" or not reason:
        return reason or ""
    code, values = reason_problem(reason)
    return _wording(TEXTS[lang]["kb_admin"]["problems"], code).format(**values)


def _wording(texts: Mapping[str, str], code: str) -> str:
    return texts.get(code) or texts[SourceProblem.unknown]
