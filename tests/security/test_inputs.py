"""Input edge cases: a number or a file the service cannot use is a 4xx that says what to fix, never a 500
(issue 15, item 9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.errors import BadInput
from service.jobs.readers import open_source
from tests.review.helpers import ReviewApp
from tests.security.helpers import database, fast_app

Auth = dict[str, str]
HUGE = "99999999999999999999"  # past a 64-bit integer: SQLite raises OverflowError, PostgreSQL "out of range"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReviewApp, Auth]]:
    """The service on each database, with a reviewer's header."""
    with database(request.param) as url, fast_app(tmp_path_factory.mktemp("inputs"), url) as running:
        yield running, running.user("sato")


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/review/items/{HUGE}",
        f"/v1/review/items/{HUGE}/audit",
        "/v1/review/items/9223372036854775808",
        f"/review/items/{HUGE}",
        f"/review/items/{HUGE}/state",
    ],
)
def test_a_huge_id_in_a_path_is_a_422(app: tuple[ReviewApp, Auth], path: str) -> None:
    running, reviewer = app
    response = running.client.get(path, headers=reviewer)
    assert response.status_code == 422, response.text
    assert "too large" in response.json()["error"]


@pytest.mark.parametrize(("item", "version"), [(HUGE, 1), ("1", 1e30), ("1", 2**40)])
def test_a_huge_id_or_version_in_a_decision_is_a_4xx(app: tuple[ReviewApp, Auth], item: str, version: float) -> None:
    running, reviewer = app
    decision = {"action": "approve", "version": version}
    response = running.client.post(f"/v1/review/items/{item}/decisions", headers=reviewer, json=decision)
    assert 400 <= response.status_code < 500, response.text


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_csv_with_bare_cr_line_endings_is_read_row_by_row(tmp_path: Path) -> None:
    text = 'id,comment\r1,給料が下がるのが心配\r2,"引き継ぎが\r不安"\r3,費用は？\r'
    source = open_source(write(tmp_path / "mac.csv", text.encode("cp932")))
    rows = [(r.cells, r.error) for r in source.rows()]
    assert rows == [(["1", "給料が下がるのが心配"], None), (["2", "引き継ぎが\r不安"], None), (["3", "費用は？"], None)]


@pytest.mark.parametrize("encoding", ["base64", "rot13", "zlib", "hex", "no-such-encoding"])
def test_an_encoding_that_is_not_a_text_encoding_is_refused_with_a_message(tmp_path: Path, encoding: str) -> None:
    with pytest.raises(BadInput, match=r"unknown encoding .*text encoding.*try utf-8"):
        open_source(write(tmp_path / "s.csv", b"id,comment\n1,x\n"), encoding=encoding)


def test_euc_jp_is_detected_not_read_as_shift_jis_mojibake(tmp_path: Path) -> None:
    comments = ["給料が下がるのが心配です", "引き継ぎ資料は誰が作りますか？ｶﾀｶﾅも"]
    data = "id,comment\n" + "".join(f"{i},{c}\n" for i, c in enumerate(comments))
    source = open_source(write(tmp_path / "euc.csv", data.encode("euc_jp")))
    assert source.encoding == "euc_jp"
    assert [(r.cells[1], r.error) for r in source.rows()] == [(c, None) for c in comments]
    # Shift_JIS is still Shift_JIS.
    assert open_source(write(tmp_path / "sjis.csv", data.encode("cp932"))).encoding == "cp932"


def test_a_csv_with_20001_columns_is_refused_at_upload(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(20_001))
    wide = write(tmp_path / "wide.csv", f"{header}\n{','.join('x' * 20_001)}\n".encode())
    with pytest.raises(BadInput, match="20,001 columns; at most 1,000"):
        open_source(wide)


def test_the_upload_api_answers_these_files_with_a_4xx(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(20_001))
    files = {
        "wide.csv": (f"{header}\n{','.join('x' * 20_001)}\n".encode(), None),
        "rot.csv": (b"id,comment\n1,x\n", "rot13"),
        "b64.csv": (b"id,comment\n1,x\n", "base64"),
    }
    with fast_app(tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}") as running:
        who = running.user("up")
        for name, (data, encoding) in files.items():
            form = {"encoding": encoding} if encoding else {}
            response = running.client.post("/v1/jobs/classify", files={"file": (name, data)}, data=form, headers=who)
            assert response.status_code == 422, (name, response.text)
            assert "columns" in response.json()["error"] or "text encoding" in response.json()["error"]
        mac = "id,comment\r1,給料が下がるのが心配\r".encode()
        response = running.client.post("/v1/jobs/classify", files={"file": ("mac.csv", mac)}, headers=who)
        assert response.status_code in (200, 201, 202), response.text
