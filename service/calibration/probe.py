"""The model's judgement as a distribution: P(level) per objective from next-token probabilities.

One narrow question per objective (``prompts/probe/``), read without generating text. The
expected mark (each level's band midpoint weighted by its probability) is a calibration signal
that keeps rank information even when a small model's argmax is the same level for every essay.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from schemas.scheme import AssessmentObjective, MarkScheme
from service.llm.port import ChatMessage, NextTokenProbe
from service.prompting import PromptTemplate, fence_safe, load_prompt


class ObjectiveProbe(BaseModel):
    """One objective's answers: P(level) for ``levels`` probes, P(descriptor fits) for ``descriptors``."""

    probabilities: dict[int, float]
    answer_mass: float
    expected_mark: float


class Probe(BaseModel):
    """Every objective's distribution for one essay, and what produced it."""

    model: str
    prompt_sha256: str
    objectives: dict[str, ObjectiveProbe]
    kind: Literal["levels", "descriptors"] = "levels"

    @property
    def expected_marks(self) -> dict[str, float]:
        """The signal: expected mark per objective."""
        return {k: v.expected_mark for k, v in self.objectives.items()}


def _messages(
    template: PromptTemplate, scheme: MarkScheme, ao: AssessmentObjective, essay: str
) -> tuple[ChatMessage, ...]:
    system = template.render("system", question=scheme.question, objective=ao)
    return ChatMessage("system", system), ChatMessage("user", template.render("essay", essay=fence_safe(essay)))


async def probe_essay(
    llm: NextTokenProbe, scheme: MarkScheme, essay: str, template: PromptTemplate | None = None
) -> Probe:
    """Ask each objective's level question and read the answer as probabilities."""
    prompt = template or load_prompt("probe")
    objectives: dict[str, ObjectiveProbe] = {}
    for ao in scheme.objectives:
        choices = tuple(str(level.level) for level in ao.levels)
        answer = await llm.next_token_probabilities(_messages(prompt, scheme, ao, essay), choices)
        probabilities = {level.level: answer[str(level.level)] for level in ao.levels}
        expected = sum(p * ao.level(lv).midpoint for lv, p in probabilities.items())
        objectives[ao.id] = ObjectiveProbe(probabilities=probabilities, answer_mass=answer[""], expected_mark=expected)
    return Probe(model=llm.model_id, prompt_sha256=prompt.sha256, objectives=objectives)
