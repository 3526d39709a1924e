"""Ask the model until its answer validates, feeding each failure back (bounded)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from schemas.draft import Fault, JsonObject, MarkingDraft, evidence_faults, without
from schemas.grounding import EssayIndex
from schemas.reading import Reading
from schemas.result import TokenUsage
from schemas.scheme import MarkScheme
from service.copying import copy_faults
from service.errors import MarkingFailedError
from service.llm.port import LLM, ChatMessage, CompletionRequest
from service.prompting import PromptTemplate
from service.reading.feedback import praise_faults
from service.validation import format_validation_error

_CODE_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


class _InvalidOutput(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SampleOutcome:
    """One valid draft and what it cost; ``dropped``: what was left out of it when the re-asks ran out."""

    draft: MarkingDraft
    attempts: int
    usage: TokenUsage
    dropped: tuple[Fault, ...] = ()


def parse_draft(text: str, scheme: MarkScheme, essay: EssayIndex, *, evidence: bool = True) -> MarkingDraft | list[str]:
    """The validated draft, or the list of problems to send back to the model.

    ``evidence=False`` checks the structure only (objectives, levels, marks in band): the caller
    checks the evidence itself (``evidence_faults``) so that bad quotes can be dropped, not fatal.
    """
    fenced = _CODE_FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return [f"the reply is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    except RecursionError:
        return ["the reply is not valid JSON (nested too deeply)"]
    except ValueError:  # an integer of more than 4,300 digits: Python refuses to read it
        return ["the reply is not valid JSON (a number is too long; marks are small whole numbers)"]
    try:
        return MarkingDraft.model_validate(data, context={"scheme": scheme, "essay": essay, "evidence": evidence})
    except ValidationError as exc:
        return format_validation_error(exc)


def _changed_decided_marks(draft: MarkingDraft, decided: dict[str, int]) -> list[str]:
    return [
        f"{ao_id}: the mark is decided as {mark}; keep it and explain it"
        for ao_id, mark in decided.items()
        if ao_id in draft.objectives and draft.objectives[ao_id].mark != mark
    ]


async def ask_until_valid(
    *,
    llm: LLM,
    prompt: PromptTemplate,
    scheme: MarkScheme,
    essay: str,
    essay_index: EssayIndex,
    temperature: float,
    max_output_tokens: int,
    seed: int | None,
    max_reasks: int,
    json_schema: JsonObject,
    decided: dict[str, int] | None = None,
    reading: Reading | None = None,
    reask_text: bool = True,
) -> SampleOutcome:
    """One sample: ask, validate, re-ask with the problems; ``MarkingFailedError`` when no valid marks came back.

    A reply whose structure and marks are valid but whose evidence is not in the essay, or whose
    text copies the prompt's example or a descriptor, is re-asked for those faults alone; when the
    re-asks run out, the best such reply (fewest faults) is kept with the faults left out
    (``SampleOutcome.dropped``), so one paraphrased quote never costs the teacher the marks.
    ``decided`` (objective id -> mark) are marks the model must keep and explain (calibration).
    ``reading``: what code found in the essay; feedback that contradicts it or its levels is a fault.
    ``reask_text=False``: a reply whose only faults are in its text (copied, false praise) is kept at
    once with that text left out, not re-asked (the embedded model rarely rewrites it, at a minute a try).
    ``ModelError``s from the adapter (timeouts, truncation...) are not re-asked: they propagate.
    """
    messages: list[ChatMessage] = list(prompt.messages(scheme, essay, essay_index.sentences))
    findings = prompt.findings(reading) if reading is not None else None
    if findings is not None:  # after the scheme, before the essay: the essay stays last, fenced
        messages.insert(1, findings)
    if decided:
        messages.append(prompt.decided(scheme, decided))
    usage = TokenUsage()
    attempts = 0
    last_text = ""
    problems: list[str] = []
    fallback: tuple[MarkingDraft, list[Fault]] | None = None
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_reasks + 1),
        retry=retry_if_exception_type(_InvalidOutput),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                completion = await llm.complete(
                    CompletionRequest(
                        messages=tuple(messages),
                        json_schema=json_schema,
                        schema_name="marking_draft",
                        temperature=temperature,
                        max_output_tokens=max_output_tokens,
                        seed=seed,
                    )
                )
                attempts += 1
                usage = usage + completion.usage
                last_text = completion.text
                outcome = parse_draft(completion.text, scheme, essay_index, evidence=False)
                if isinstance(outcome, MarkingDraft):
                    problems = _changed_decided_marks(outcome, decided or {})
                    if not problems:
                        faults = evidence_faults(outcome, scheme, essay_index)
                        faults += copy_faults(outcome, prompt, scheme, essay)
                        if reading is not None:
                            faults += praise_faults(outcome, scheme, reading, essay)
                        if not faults:
                            return SampleOutcome(draft=outcome, attempts=attempts, usage=usage)
                        if not reask_text and all(f.field is not None for f in faults):
                            return SampleOutcome(
                                draft=without(outcome, faults), attempts=attempts, usage=usage, dropped=tuple(faults)
                            )
                        if fallback is None or len(faults) <= len(fallback[1]):
                            fallback = (outcome, faults)
                        problems = [f.message for f in faults]
                else:
                    problems = outcome
                messages += [ChatMessage("assistant", completion.text), prompt.reask(problems)]
                raise _InvalidOutput(problems)
    except _InvalidOutput:
        pass
    if fallback is not None:
        draft, faults = fallback
        return SampleOutcome(draft=without(draft, faults), attempts=attempts, usage=usage, dropped=tuple(faults))
    raise MarkingFailedError(
        f"the model gave no valid marking in {attempts} attempt(s); last problems: " + "; ".join(problems[:5]),
        last_output=last_text,
        problems=problems,
        attempts=attempts,
        usage=usage,
    )
