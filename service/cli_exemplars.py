"""``draftmark exemplars ...``: a teacher's marked scripts for a scheme, and the calibration fitted on them.

The command line works as the local owner (the same one the server uses with auth disabled), on
the database named by ``DRAFTMARK_DATABASE_URL`` (SQLite by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from schemas.calibration import Calibrator
from schemas.scheme import MarkScheme
from service.calibration.importing import parse_marked_scripts
from service.errors import DraftmarkError
from service.persistence.db import LOCAL_OWNER as LOCAL_PRINCIPAL
from service.persistence.exemplars import ExemplarStore
from service.persistence.stores import Store
from service.schemes import SchemeLibrary
from service.settings import Settings
from service.workflows.calibration import describe

exemplars_app = typer.Typer(help="A teacher's marked scripts per scheme, and the calibration learnt from them.")
err = Console(stderr=True)
SchemeOption = Annotated[str, typer.Option("--scheme", "-s", help="Library scheme id (id or id@version) or a file.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _open(settings: Settings, scheme_ref: str) -> tuple[ExemplarStore, MarkScheme]:
    from service.cli_common import open_store as _store

    scheme = SchemeLibrary().resolve(scheme_ref)
    store: Store = _store(settings)
    store.put_scheme(scheme, owner=LOCAL_PRINCIPAL)
    return ExemplarStore(store), scheme


def local_calibrator(settings: Settings, scheme: MarkScheme) -> Calibrator | None:
    """The local owner's calibrator for ``scheme``, without creating a database that does not exist."""
    url = settings.resolved_database_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        return None
    from service.cli_common import open_store as _store

    return ExemplarStore(_store(settings)).current(LOCAL_PRINCIPAL, scheme.id, scheme.version)


def _print_calibration(exemplars: ExemplarStore, scheme: MarkScheme, console: Console) -> None:
    counts = exemplars.counts(LOCAL_PRINCIPAL, scheme.id, scheme.version)
    shown = describe(scheme, counts, exemplars.current(LOCAL_PRINCIPAL, scheme.id, scheme.version))
    console.print(
        f"[bold]{scheme.ref}[/bold]: {counts.total} marked script(s), {counts.counted} counted; status {shown.status}",
        highlight=False,
    )
    for objective in shown.objectives:
        console.print(f"  {objective.ao_id}: {objective.summary}", highlight=False, soft_wrap=True)
    if not shown.objectives:
        console.print(f"  {shown.message}", highlight=False)


@exemplars_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="CSV (essay + a column per objective, or mark) or JSONL (eval format).")],
    scheme: SchemeOption,
) -> None:
    """Import marked scripts and refit the calibration; prints its cross-validated figures."""
    from service.cli_common import load_settings

    if not path.is_file():
        raise _fail(f"{path} does not exist")
    kind = "text/csv" if path.suffix.lower() == ".csv" else "application/x-ndjson"
    try:
        exemplars, resolved = _open(load_settings(), scheme)
        scripts = parse_marked_scripts(path.read_bytes(), kind, resolved)
        added, updated = exemplars.add(LOCAL_PRINCIPAL, resolved, scripts, source="import")
        exemplars.refit(LOCAL_PRINCIPAL, resolved)
    except DraftmarkError as exc:
        raise _fail(f"{path}: {exc.message}") from exc
    console = Console()
    console.print(f"added {added}, updated {updated}", highlight=False)
    _print_calibration(exemplars, resolved, console)


@exemplars_app.command("list")
def list_exemplars(scheme: SchemeOption) -> None:
    """The marked scripts held for the scheme (ids, marks, where they came from)."""
    from service.cli_common import load_settings

    try:
        exemplars, resolved = _open(load_settings(), scheme)
    except DraftmarkError as exc:
        raise _fail(exc.message) from exc
    table = Table(title=f"Exemplars for {resolved.ref}")
    for column in ("id", "student", "source", "marks", "words"):
        table.add_column(column)
    for row in exemplars.listing(LOCAL_PRINCIPAL, resolved.id, resolved.version):
        marks = ", ".join(f"{k} {v}" for k, v in row.marks.items())
        table.add_row(row.id, row.external_id or "", row.source, marks, str(row.words))
    Console().print(table)


@exemplars_app.command("delete")
def delete_exemplar(exemplar_id: str, scheme: SchemeOption) -> None:
    """Remove one marked script (its text leaves the database) and refit."""
    from service.cli_common import load_settings

    try:
        exemplars, resolved = _open(load_settings(), scheme)
        exemplars.delete(LOCAL_PRINCIPAL, resolved.id, resolved.version, exemplar_id)
        exemplars.refit(LOCAL_PRINCIPAL, resolved)
    except DraftmarkError as exc:
        raise _fail(exc.message) from exc
    Console().print(f"deleted {exemplar_id}", highlight=False)


@exemplars_app.command("calibration")
def show_calibration(scheme: SchemeOption) -> None:
    """The calibration's cross-validated agreement beside word count and the model alone."""
    from service.cli_common import load_settings

    try:
        exemplars, resolved = _open(load_settings(), scheme)
    except DraftmarkError as exc:
        raise _fail(exc.message) from exc
    _print_calibration(exemplars, resolved, Console())
