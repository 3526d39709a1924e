"""What every CLI command group shares: settings from the environment and the local store (no cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console

from service.settings import Settings
from service.validation import format_validation_error

if TYPE_CHECKING:
    from service.persistence.stores import Store

err = Console(stderr=True)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (2 caller, 3 model, 4 configuration)."""
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the environment, or a clean exit explaining what is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        raise fail("invalid configuration: " + "; ".join(format_validation_error(exc)), 4) from exc


def open_store(settings: Settings) -> Store:
    """The local database, migrated."""
    from service.persistence.db import make_engine, migrate
    from service.persistence.stores import Store

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    return Store(engine)
