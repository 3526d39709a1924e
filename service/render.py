"""Human-readable rendering of a result for the terminal (rich)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from schemas.result import FlagCode, MarkingResult

_LOUD = {FlagCode.INDICATIVE_MODEL, FlagCode.POSSIBLE_PROMPT_INJECTION, FlagCode.NEEDS_REVIEW}


def print_result(result: MarkingResult, console: Console) -> None:
    """A per-AO table with quotes and feedback, flags first."""
    for flag in result.flags:
        style = "bold red" if flag.code in _LOUD else "yellow"
        console.print(Text(f"[{flag.code.value}] {flag.detail}", style=style))
    table = Table(
        title=f"Marks: {result.total}/{result.max_total}" + (f"  grade {result.grade}" if result.grade else "")
    )
    table.add_column("AO", style="bold")
    table.add_column("Level")
    table.add_column("Mark")
    table.add_column("Rationale and evidence", ratio=1)
    for ao in result.ao_marks:
        quotes = "\n".join(f"  \u201c{e.quote}\u201d" for e in ao.evidence)
        body = ao.rationale + (f"\n[dim]Evidence:[/dim]\n{quotes}" if quotes else "")
        spread = f"\nsamples {ao.sample_marks}" if ao.sample_marks else ""
        table.add_row(
            f"{ao.ao_id}\n{ao.ao_name}",
            f"{ao.level} ({ao.band[0]}-{ao.band[1]})",
            f"{ao.mark}/{ao.max_marks}{spread}",
            body,
        )
    console.print(table)
    calibration = result.provenance.calibration
    console.print(
        Text(f"Calibration: {calibration.summary}", style="bold" if calibration.status == "calibrated" else "dim")
    )
    if calibration.discounted:
        console.print(Text("Not counted by calibration: " + "; ".join(calibration.discounted), style="yellow"))
    points = []
    for ao in result.ao_marks:
        for s in ao.strengths:
            points.append(Text(f"+ {ao.ao_id}: {s}", style="green"))
        for s in ao.improvements:
            points.append(Text(f"> {ao.ao_id}: {s}", style="cyan"))
    console.print(
        Panel(
            Group(
                Text("What went well: ", style="bold").append(result.feedback.what_went_well, style="default"),
                Text("Even better if: ", style="bold").append(result.feedback.even_better_if, style="default"),
                *points,
            ),
            title="Feedback for the student",
        )
    )
    if result.teacher_notes:
        console.print(Panel(result.teacher_notes, title="Notes for the teacher"))
    p = result.provenance
    console.print(
        f"[dim]{p.model} ({p.endpoint_kind}) · prompt {p.prompt.id} v{p.prompt.version} "
        f"{p.prompt.sha256[:12]} · scheme {p.scheme_id}@{p.scheme_version} · T={p.temperature} · "
        f"samples {p.samples} · attempts {p.attempts} · tokens {p.usage.prompt_tokens}+"
        f"{p.usage.completion_tokens} · {p.latency_ms / 1000:.1f} s[/dim]"
    )
