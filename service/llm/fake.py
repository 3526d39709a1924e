"""Test doubles behind the LLM port.

They never pretend to be real models: their provenance says ``endpoint_kind="fake"``.

- ``ScriptedLLM`` answers from a script and records every request it was sent.
- ``FakeMarker`` answers any marking request instantly with a valid, grounded draft
  whose marks come from a policy function (used for API load tests and eval plumbing).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from schemas.draft import JsonObject, bands_from_schema
from schemas.result import EndpointKind, TokenUsage
from service.errors import ModelResponseError
from service.llm.port import Completion, CompletionRequest

Step = str | Completion | Exception | Callable[[CompletionRequest], "str | Completion"]


class ScriptedLLM:
    """Replies with the scripted steps in order; an exception step is raised."""

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        model_id: str = "scripted-fake",
        indicative_only: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        self._steps = list(steps)
        self._model_id = model_id
        self._indicative = indicative_only
        self._delay = delay_s
        self.history: list[CompletionRequest] = []

    @property
    def model_id(self) -> str:
        """The fake's name."""
        return self._model_id

    @property
    def endpoint_kind(self) -> EndpointKind:
        """Always ``fake``."""
        return "fake"

    @property
    def indicative_only(self) -> bool:
        """As configured."""
        return self._indicative

    async def complete(self, request: CompletionRequest) -> Completion:
        """The next scripted step."""
        self.history.append(request)
        if self._delay:
            await asyncio.sleep(self._delay)
        if len(self.history) > len(self._steps):
            raise ModelResponseError(
                f"scripted fake has {len(self._steps)} steps but was called {len(self.history)} times"
            )
        step = self._steps[len(self.history) - 1]
        if isinstance(step, Exception):
            raise step
        if callable(step):
            step = step(request)
        if isinstance(step, Completion):
            return step
        return Completion(text=step, finish_reason="stop", usage=_usage(request, step), model=self._model_id)


def _usage(request: CompletionRequest, text: str) -> TokenUsage:
    prompt_chars = sum(len(m.content) for m in request.messages)
    return TokenUsage(prompt_tokens=prompt_chars // 4, completion_tokens=len(text) // 4)


MarkPolicy = Callable[[str, int, int, str], int]
"""(ao_id, min_mark, max_mark, essay) -> mark."""


def middle_policy(ao_id: str, low: int, high: int, essay: str) -> int:
    """The middle of the AO's range."""
    return (low + high) // 2


def essay_from_request(request: CompletionRequest) -> str:
    """The essay text between the fence markers of the last essay message."""
    for message in reversed(request.messages):
        match = re.search(r"<<<STUDENT_ESSAY_START>>>\n(.*)\n<<<STUDENT_ESSAY_END>>>", message.content, re.S)
        if match:
            return match.group(1)
    raise ModelResponseError("fake marker found no fenced essay in the request")


def _quotes(essay: str) -> list[str]:
    words = essay.split()
    if len(words) < 4:
        return []
    return [" ".join(words[:6]), " ".join(words[len(words) // 2 : len(words) // 2 + 6])]


_FINDING = re.compile(r"^- (?P<ao>[^:\n]+): makes (?P<made>.*?)(?:; misses (?P<missed>.*))?\.$", re.M)


def _findings(request: CompletionRequest) -> dict[str, tuple[list[str], list[str]]]:
    """The points made and missed that the findings message lists per objective (empty without one)."""
    for message in request.messages:
        if message.content.startswith("What a first reading of the essay below found"):
            out = {}
            for m in _FINDING.finditer(message.content):
                made = (
                    []
                    if m["made"].startswith("none of")
                    else [re.sub(r" \(\[S\d+\]\)$", "", p) for p in m["made"].split("; ")]
                )
                out[m["ao"]] = (made, m["missed"].split("; ") if m["missed"] else [])
            return out
    return {}


def _well(essay: str) -> str:
    """Names something the essay does, as a model should: a run of its own words."""
    plain = re.sub(r"\[S\d+\] ?", "", essay)
    quotes = _quotes(plain)
    return f'Fake: you write "{quotes[-1]}".' if quotes else "Fake: what went well."


@dataclass
class FakeMarker:
    """Instant, valid answers: marks from ``policy``, quotes taken from the essay itself."""

    policy: MarkPolicy = middle_policy
    model_id: str = "fake-marker"
    indicative_only: bool = False
    delay_s: float = 0.0
    calls: int = 0

    @property
    def endpoint_kind(self) -> EndpointKind:
        """Always ``fake``."""
        return "fake"

    def answer(self, request: CompletionRequest) -> str:
        """The JSON draft for ``request``."""
        essay = essay_from_request(request)
        found = _findings(request)
        made = [p for ao_made, _ in found.values() for p in ao_made]
        missed = [p for _, ao_missed in found.values() for p in ao_missed]
        objectives: JsonObject = {}
        schema_objectives = request.json_schema["properties"]["objectives"]["properties"]
        for ao_id, ao_schema in schema_objectives.items():
            allowed = ao_schema["anyOf"][0]["properties"]["evidence"]["items"].get("enum")
            quotes = list(allowed[:2]) if allowed else _quotes(essay)
            # Levels and marks come from the schema's enums (a decided mark leaves only one).
            offered = [
                (variant["properties"]["level"]["enum"][0], mark)
                for variant in ao_schema["anyOf"]
                for mark in variant["properties"]["mark"]["enum"]
            ]
            marks = sorted(m for _, m in offered)
            low, high = marks[0], marks[-1]
            wanted = min(max(self.policy(ao_id, low, high, essay), low), high)
            level, mark = min(offered, key=lambda lm: abs(lm[1] - wanted))
            lowest = bands_from_schema(ao_schema)[0][1]
            objectives[ao_id] = {
                "evidence": quotes if mark > lowest else [],
                "rationale": f"Fake rationale for {ao_id}: level {level}, mark {mark}. "
                + (f"Misses {found[ao_id][1][0]}." if found.get(ao_id, ([], []))[1] else _well(essay)),
                "strengths": ["Fake strength."],
                "improvements": ["Fake improvement."],
                "level": level,
                "mark": mark,
            }
        return json.dumps(
            {
                "objectives": objectives,
                "what_went_well": f"Fake: you bring in {made[0]}." if made else _well(essay),
                "even_better_if": f"Add {missed[0]} (fake: even better if)."
                if missed
                else "Add what the essay misses (fake: even better if).",
                "teacher_notes": "Produced by a fake model.",
                "off_topic": False,
            }
        )

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer after the configured delay."""
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self.answer(request)
        return Completion(text=text, finish_reason="stop", usage=_usage(request, text), model=self.model_id)
