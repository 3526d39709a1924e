"""Scheme-derived yes/no questions: does each level's descriptor fit the essay? (a calibration signal).

A small model asked for one level out of six mostly answers the same level (``probe.py``). Asked
about one descriptor at a time, it answers a narrower question (TRATES, ACL 2025, derives its
questions from the rubric the same way). Each answer is read as P(Yes) from next-token
probabilities; the objective's signal is the fit-weighted expected mark
``sum_k P(yes_k) * midpoint_k / sum_k P(yes_k)``. Level descriptors describe best fit, not a
ladder (a strong essay does not fit "undeveloped"), so the weights are normalised instead of
summed. The essay comes before the descriptor in the prompt, so the questions on one essay
share its evaluated tokens and each costs only the descriptor's.
"""

from __future__ import annotations

from schemas.scheme import AssessmentObjective, MarkScheme
from service.calibration.probe import ObjectiveProbe, Probe
from service.llm.port import ChatMessage, NextTokenProbe
from service.prompting import PromptTemplate, fence_safe, load_prompt

ANSWERS = ("Yes", "No")


def descriptor_messages(
    template: PromptTemplate, scheme: MarkScheme, ao: AssessmentObjective, essay: str, descriptor: str
) -> tuple[ChatMessage, ...]:
    """The question about one descriptor (essay first, descriptor last)."""
    system = template.render("system", question=scheme.question)
    question = template.render("question", essay=fence_safe(essay), objective=ao, descriptor=descriptor)
    return ChatMessage("system", system), ChatMessage("user", question)


async def descriptor_probe(
    llm: NextTokenProbe, scheme: MarkScheme, essay: str, template: PromptTemplate | None = None
) -> Probe:
    """P(Yes) for every level descriptor of every objective, and each objective's expected mark."""
    prompt = template or load_prompt("descriptors")
    objectives: dict[str, ObjectiveProbe] = {}
    for ao in scheme.objectives:
        fits: dict[int, float] = {}
        masses: list[float] = []
        for level in ao.levels:
            messages = descriptor_messages(prompt, scheme, ao, essay, level.descriptor)
            answer = await llm.next_token_probabilities(messages, ANSWERS)
            fits[level.level] = answer["Yes"]
            masses.append(answer[""])
        weight = sum(fits.values())
        if weight > 0:
            expected = sum(p * ao.level(lv).midpoint for lv, p in fits.items()) / weight
        else:  # "No" to every descriptor with certainty: no information, the scale's middle
            expected = (ao.min_marks + ao.max_marks) / 2
        objectives[ao.id] = ObjectiveProbe(
            probabilities=fits, answer_mass=sum(masses) / len(masses), expected_mark=expected
        )
    return Probe(model=llm.model_id, prompt_sha256=prompt.sha256, objectives=objectives, kind="descriptors")
