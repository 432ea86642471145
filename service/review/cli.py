"""`nemawashi users ...` and `nemawashi kb ...`."""

from __future__ import annotations

import typer

users_app = typer.Typer(help="Reviewers and admins: add, list, revoke.", no_args_is_help=True)
kb_app = typer.Typer(help="The curated knowledge base: export approved answers.", no_args_is_help=True)
