"""`nemawashi users ...` and `nemawashi kb ...`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from service.auth import service as auth
from service.config import PROJECT_ROOT, get_settings
from service.db import make_engine, make_sessionmaker, migrate, session_scope
from service.errors import NemawashiError
from service.retrieval import kb_files
from service.retrieval.kb_files import UPLOADS
from service.review import publishing

users_app = typer.Typer(help="Reviewers and admins: add, list, revoke.", no_args_is_help=True)
kb_app = typer.Typer(
    help="The curated knowledge base: export approved answers and uploaded files.", no_args_is_help=True
)
err = Console(stderr=True)
out = Console()
DEFAULT_EXPORT = PROJECT_ROOT / "knowledge" / "faq" / "approved"
DEFAULT_UPLOADS = PROJECT_ROOT / "knowledge" / UPLOADS


@contextmanager
def _session() -> Iterator[Session]:
    """The configured database, migrated, in one transaction; a NemawashiError exits with 2 and its message."""
    engine = make_engine(get_settings().sqlalchemy_url)
    try:
        migrate(engine)
        with session_scope(make_sessionmaker(engine)) as session:
            yield session
    except NemawashiError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        raise typer.Exit(code=2) from exc
    finally:
        engine.dispose()


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The name the audit log shows, e.g. sato.")],
    role: Annotated[str, typer.Option(help="reviewer (decides items) or admin (also manages users).")] = "reviewer",
) -> None:
    """Add a reviewer or admin and print their token once; only its hash is stored."""
    with _session() as session:
        account, token = auth.add_user(session, name=name, role=role)
        name, role = account.name, account.role
    err.print(f"added {role} [bold]{name}[/]. The token is shown only now: keep it somewhere safe.")
    print(token)


@users_app.command("list")
def list_users(as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False) -> None:
    """Every reviewer and admin, with whether their token still works."""
    with _session() as session:
        rows = [
            {
                "name": a.name,
                "role": a.role,
                "active": a.revoked_at is None,
                "created_at": a.created_at.isoformat(),
                "revoked_at": a.revoked_at.isoformat() if a.revoked_at else None,
            }
            for a in auth.list_users(session)
        ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="nemawashi users")
    for column in ("name", "role", "status", "created"):
        table.add_column(column)
    for row in rows:
        status = "active" if row["active"] else f"revoked {str(row['revoked_at'])[:10]}"
        table.add_row(str(row["name"]), str(row["role"]), status, str(row["created_at"])[:10])
    out.print(table)


@users_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The user whose token stops working now.")]) -> None:
    """Revoke a user's token at once."""
    with _session() as session:
        auth.revoke_user(session, name=name)
    err.print(f"revoked [bold]{name}[/]: their token no longer works")


@kb_app.command("export")
def export(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write the Markdown files (default: knowledge/faq/approved/).")
    ] = DEFAULT_EXPORT,
    uploads_dir: Annotated[
        Path,
        typer.Option(
            "--uploads-dir",
            help="Where to write the originals uploaded on /admin/kb (default: knowledge/uploads/; ingest reads that "
            "copy as the same documents).",
        ),
    ] = DEFAULT_UPLOADS,
) -> None:
    """Write every approved answer as a Markdown FAQ with front matter, and every uploaded file as it was uploaded,
    for git and `nemawashi ingest`.

    Files of answers withdrawn since the last export are removed; unchanged files are left untouched."""
    with _session() as session:
        entries = publishing.approved_entries(session)
        uploaded = kb_files.export_files(session, uploads_dir)
    report = publishing.export(entries, directory)
    err.print(
        f"exported {len(entries)} approved answers to {report.directory}: {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed"
    )
    for name in report.removed:
        err.print(f"  removed {name} (no longer approved)")
    err.print(f"exported uploaded files to {uploads_dir}: {len(uploaded)} written")
