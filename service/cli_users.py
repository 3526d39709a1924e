"""``draftmark users ...``: teachers who sign in on the page with email and password."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from service.cli_common import fail, load_settings, open_store
from service.errors import CallerError, DraftmarkError

users_app = typer.Typer(help="Teachers who sign in on the page (email and password).", no_args_is_help=True)
err = Console(stderr=True)


def _exit(exc: DraftmarkError) -> typer.Exit:
    return fail(exc.message, 2 if isinstance(exc, CallerError) else 4)


@users_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The teacher's email address (their sign-in name).")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    url: Annotated[
        str, typer.Option(help="The server's address, for the set-password link.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Add a teacher; prints a one-time link to set their password (valid three days), unless --password-stdin."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        user, token = open_store(load_settings()).add_user(email, password)
    except DraftmarkError as exc:
        raise _exit(exc) from exc
    err.print(f"added {user.email} ({user.id})")
    if token:
        err.print("send them this link to set a password (it works once, for three days):")
        sys.stdout.write(f"{url.rstrip('/')}/teacher#/set-password/{token}\n")


@users_app.command("link")
def link(
    email: Annotated[str, typer.Argument(help="The teacher's email address.")],
    url: Annotated[str, typer.Option(help="The server's address.")] = "http://127.0.0.1:8000",
) -> None:
    """A new one-time set-password link (a forgotten password)."""
    store = open_store(load_settings())
    found = next((u for u in store.users() if u.email == email.strip().casefold()), None)
    if found is None:
        raise fail(f"no account for {email!r}", 2)
    sys.stdout.write(f"{url.rstrip('/')}/teacher#/set-password/{store.password_link(found.id)}\n")


@users_app.command("list")
def list_users() -> None:
    """Every teacher: id, email, whether a password is set, whether disabled."""
    for u in open_store(load_settings()).users():
        flags = ("" if u.has_password else "  (no password yet)") + ("  (disabled)" if u.disabled else "")
        Console().print(f"{u.id}  {u.email}{flags}", highlight=False)


@users_app.command("disable")
def disable(email: Annotated[str, typer.Argument(help="The teacher's email address.")]) -> None:
    """Disable an account: its sessions and keys stop working (within 30 s)."""
    try:
        open_store(load_settings()).disable_user(email)
    except DraftmarkError as exc:
        raise _exit(exc) from exc
    err.print(f"disabled {email}")
