"""The one marking pipeline every caller uses: ``mark_essay``."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.calibration import Calibrator
from schemas.draft import Fault, output_json_schema
from schemas.grounding import EssayIndex
from schemas.reading import Reading
from schemas.result import AOMark, Evidence, Flag, FlagCode, MarkingResult, Provenance, StudentFeedback, TokenUsage
from schemas.scheme import MarkScheme
from schemas.sentences import SentenceTable
from schemas.text import unstorable_problem
from service.aggregate import aggregate
from service.calibration.step import CalibrationStep
from service.errors import EssayError, PromptTooLargeError
from service.flags import injection_signals, word_count
from service.llm.port import LLM
from service.prompting import PromptTemplate, load_prompt
from service.reading import read_essay
from service.reading.feedback import from_facts_next, from_facts_rationale, from_facts_well
from service.reading.structure import copies_question
from service.reask import SampleOutcome, ask_until_valid
from service.redact import Redaction, redact
from service.settings import Settings
from service.version import __version__


def check_essay(essay: str, settings: Settings) -> str:
    """The essay as it will be marked; ``EssayError`` when it cannot be."""
    if not isinstance(essay, str):
        raise EssayError("the essay must be text")
    text = essay.replace("\r\n", "\n").replace("\r", "\n")
    if not has_visible_text(text):
        raise EssayError(
            "the essay is empty: it has no visible text (only spaces, zero-width or control characters); "
            "send the student's text"
        )
    problem = unstorable_problem(text)
    if problem is not None:
        raise EssayError(f"the essay {problem}")
    if len(text) > settings.max_essay_chars:
        raise EssayError(
            f"the essay has {len(text):,} characters; the limit is {settings.max_essay_chars:,} "
            "(DRAFTMARK_MAX_ESSAY_CHARS)"
        )
    return text


def has_visible_text(text: str) -> bool:
    """True when some character is a letter, digit, punctuation mark or symbol (not space, format or control)."""
    return any(unicodedata.category(c)[0] in "LNPS" for c in text)


def prompt_chars(template: PromptTemplate, scheme: MarkScheme, essay: str) -> int:
    """Characters of the first request's messages: instructions, scheme and fenced essay."""
    return sum(len(m.content) for m in template.messages(scheme, essay))


def check_prompt_size(template: PromptTemplate, scheme: MarkScheme, essay: str, settings: Settings) -> None:
    """``PromptTooLargeError`` when the rendered prompt would exceed ``DRAFTMARK_MAX_PROMPT_CHARS``."""
    size = prompt_chars(template, scheme, essay)
    if size > settings.max_prompt_chars:
        raise PromptTooLargeError(
            f"scheme {scheme.ref} and this essay render a prompt of {size:,} characters; the limit is "
            f"{settings.max_prompt_chars:,} (DRAFTMARK_MAX_PROMPT_CHARS): shorten the scheme's text or the essay"
        )


@dataclass(frozen=True)
class MarkedEssay:
    """A result and the exact text it was marked on: its evidence offsets index into ``essay``."""

    result: MarkingResult
    essay: str


def _input_flags(essay: str, scheme: MarkScheme) -> list[Flag]:
    flags: list[Flag] = []
    words = word_count(essay)
    if words < scheme.min_words:
        flags.append(
            Flag(code=FlagCode.TOO_SHORT, detail=f"{words} words; this scheme expects at least {scheme.min_words}")
        )
    signals = injection_signals(essay)
    if signals:
        flags.append(Flag(code=FlagCode.POSSIBLE_PROMPT_INJECTION, detail="; ".join(signals)))
    return flags


def _dropped_flags(faults: list[Fault]) -> list[Flag]:
    """What was left out of the model's answer when its re-asks ran out (the marks stand; a teacher checks)."""
    flags = []
    evidence = [f.message for f in faults if f.field is None]
    replaced = [f.message for f in faults if f.field is not None]
    if evidence:
        flags.append(
            Flag(
                code=FlagCode.EVIDENCE_MISSING,
                detail="evidence the model gave could not be found in the essay and was left out: "
                + "; ".join(dict.fromkeys(evidence)),
            )
        )
    if replaced:
        flags.append(
            Flag(
                code=FlagCode.TEXT_REPLACED,
                detail="text the model wrote failed its checks and was replaced by a sentence written from what "
                "the essay covers: " + "; ".join(dict.fromkeys(replaced)),
            )
        )
    return flags


def _filled_from_facts(
    ao_marks: list[AOMark], feedback: StudentFeedback, reading: Reading
) -> tuple[list[AOMark], StudentFeedback]:
    """Text left out of the model's answer (``_dropped_flags``) written from the reading's facts: never blank."""
    coverage = {c.ao_id: c for c in reading.coverage}
    marks = [
        m
        if m.rationale.strip()
        else m.model_copy(update={"rationale": from_facts_rationale(coverage.get(m.ao_id), m.level)})
        for m in ao_marks
    ]
    weakest_ao = min(ao_marks, key=lambda m: m.mark / m.max_marks).ao_id if ao_marks else None
    weakest = coverage.get(weakest_ao) if weakest_ao else None
    return marks, StudentFeedback(
        what_went_well=feedback.what_went_well.strip() or from_facts_well(reading),
        even_better_if=feedback.even_better_if.strip() or from_facts_next(reading, weakest),
    )


def _restore(
    ao_marks: list[AOMark],
    feedback: StudentFeedback,
    notes: str,
    redaction: Redaction,
    index: EssayIndex,
    essay: str,
) -> tuple[list[AOMark], StudentFeedback, str]:
    """Show quotes and feedback with the redacted values put back, spans into the original essay."""
    restored: list[AOMark] = []
    for mark in ao_marks:
        evidence = []
        for ev in mark.evidence:
            span = index.locate(redaction.restore(ev.quote))
            if span is None:
                raise ValueError("a restored quote is missing from the original essay")
            evidence.append(Evidence(quote=essay[span.start : span.end], start=span.start, end=span.end))
        restored.append(
            mark.model_copy(
                update={
                    "evidence": evidence,
                    "rationale": redaction.restore(mark.rationale),
                    "strengths": [redaction.restore(s) for s in mark.strengths],
                    "improvements": [redaction.restore(s) for s in mark.improvements],
                }
            )
        )
    return (
        restored,
        StudentFeedback(
            what_went_well=redaction.restore(feedback.what_went_well),
            even_better_if=redaction.restore(feedback.even_better_if),
        ),
        redaction.restore(notes),
    )


async def mark_essay(
    essay: str,
    scheme: MarkScheme,
    *,
    llm: LLM,
    settings: Settings,
    samples: int | None = None,
    prompt: PromptTemplate | None = None,
    redact_terms: tuple[str, ...] = (),
    calibrator: Calibrator | None = None,
) -> MarkingResult:
    """Mark ``essay`` against ``scheme`` with ``llm``: validated, grounded, aggregated, flagged.

    Raises ``EssayError`` for unmarkable input, ``PromptTooLargeError`` when scheme and essay are
    too long together, and ``ModelError`` subclasses (including ``MarkingFailedError`` when
    re-asks run out) for model trouble. Never returns a guess.
    """
    marked = await mark_essay_with_text(
        essay,
        scheme,
        llm=llm,
        settings=settings,
        samples=samples,
        prompt=prompt,
        redact_terms=redact_terms,
        calibrator=calibrator,
    )
    return marked.result


async def mark_essay_with_text(
    essay: str,
    scheme: MarkScheme,
    *,
    llm: LLM,
    settings: Settings,
    samples: int | None = None,
    prompt: PromptTemplate | None = None,
    redact_terms: tuple[str, ...] = (),
    calibrator: Calibrator | None = None,
) -> MarkedEssay:
    """``mark_essay``, also returning the normalised text it marked (CRLF becomes LF), for callers that store it."""
    started = time.perf_counter()
    text = check_essay(essay, settings)
    template = prompt or load_prompt()
    k = samples if samples is not None else settings.samples
    if not 1 <= k <= 9:
        raise EssayError(f"samples must be between 1 and 9, got {k}")
    redaction = redact(text, redact_terms) if settings.redact or redact_terms else None
    model_text = redaction.text if redaction else text
    check_prompt_size(template, scheme, model_text, settings)
    # Sentence references on every endpoint unless free quotes are asked for: a small model behind
    # Ollama or llama.cpp's server paraphrases free quotes constantly (issue 26).
    evidence_mode = settings.resolved_evidence_mode
    # The title and the copied-out question are not evidence: they are not offered, and a citation is a fault.
    table = SentenceTable(model_text)
    copies = frozenset(x.ref for x in table.sentences if copies_question(x, scheme))
    index = EssayIndex(model_text, sentence_refs=evidence_mode == "sentences", not_evidence=copies, table=table)
    refs = [r for r in index.sentences.citable_refs() if r not in copies] if index.sentences else None

    async def ask(count: int, decided: dict[str, int] | None) -> list[SampleOutcome]:
        schema = output_json_schema(scheme, sentence_refs=refs, decided=decided)
        return await asyncio.gather(
            *(
                ask_until_valid(
                    llm=llm,
                    prompt=template,
                    scheme=scheme,
                    essay=model_text,
                    essay_index=index,
                    temperature=settings.temperature,
                    max_output_tokens=settings.max_output_tokens,
                    seed=None if settings.seed is None else settings.seed + i,
                    max_reasks=settings.max_reasks,
                    json_schema=schema,
                    decided=decided,
                    reading=reading,
                    # The embedded model rarely rewrites failed text when re-asked (the example essay: the
                    # same praise three times, 3x the time); its failed text is written from the reading at once.
                    reask_text=llm.endpoint_kind != "local",
                )
                for i in range(count)
            )
        )

    reading = await asyncio.to_thread(read_essay, model_text, scheme, table.sentences)
    step = CalibrationStep(calibrator, scheme, text)
    outcomes = await ask(k, await asyncio.to_thread(step.decided_before))
    ao_marks, feedback, notes, sample_flags = aggregate(
        scheme, [o.draft for o in outcomes], model_text, index, review_spread=settings.review_spread
    )
    decided_after = await asyncio.to_thread(step.decided_after, {m.ao_id: m.mark for m in ao_marks})
    used = outcomes  # the samples whose text the result shows
    if decided_after:
        # The model argued for its own marks; it writes again for the calibrated ones.
        rewritten = await ask(1, decided_after)
        outcomes, used = [*outcomes, *rewritten], rewritten
        ao_marks, feedback, notes, _ = aggregate(
            scheme, [o.draft for o in rewritten], model_text, index, review_spread=settings.review_spread
        )
    ao_marks, feedback = _filled_from_facts(ao_marks, feedback, reading)
    if redaction is not None:
        ao_marks, feedback, notes = _restore(ao_marks, feedback, notes, redaction, EssayIndex(text), text)
    flags = _input_flags(text, scheme) + sample_flags + _dropped_flags([f for o in used for f in o.dropped])
    flags += step.flags()
    if llm.indicative_only and not step.calibrates_all():
        flags.append(
            Flag(
                code=FlagCode.INDICATIVE_MODEL,
                detail=f"{llm.model_id} is a small local model; its marks are indicative only and "
                "are not reliable enough to use without a teacher's review",
            )
        )
    review_reasons = [f.code.value for f in flags]
    if review_reasons:
        flags.append(Flag(code=FlagCode.NEEDS_REVIEW, detail="raised by: " + ", ".join(review_reasons)))
    total = sum(m.mark for m in ao_marks)
    usage = sum((o.usage for o in outcomes), TokenUsage())
    result = MarkingResult(
        ao_marks=ao_marks,
        total=total,
        max_total=scheme.total_marks,
        grade=scheme.grade_for_total(total),
        feedback=feedback,
        teacher_notes=notes,
        flags=flags,
        reading=reading if redaction is None else read_essay(text, scheme),
        provenance=Provenance(
            model=llm.model_id,
            endpoint_kind=llm.endpoint_kind,
            prompt=template.ref,
            scheme_id=scheme.id,
            scheme_version=scheme.version,
            temperature=settings.temperature,
            samples=k,
            evidence_mode=evidence_mode,
            max_output_tokens=settings.max_output_tokens,
            seed=settings.seed,
            attempts=sum(o.attempts for o in outcomes),
            usage=usage,
            latency_ms=round((time.perf_counter() - started) * 1000),
            draftmark_version=__version__,
            created_at=datetime.now(UTC),
            calibration=step.info(),
        ),
    )
    return MarkedEssay(result=result, essay=text)
