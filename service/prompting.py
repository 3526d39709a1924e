"""Render versioned prompt templates (sandboxed Jinja2, strict undefined variables)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from importlib import resources

import yaml
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from schemas.draft import MAX_EVIDENCE, MAX_POINTS
from schemas.reading import Reading
from schemas.result import PromptRef
from schemas.scheme import MarkScheme
from schemas.sentences import SentenceTable
from service.llm.port import ChatMessage, PrefixTag
from service.reading.feedback import point_name

FENCE_OPEN = "<<<STUDENT_ESSAY_START>>>"
FENCE_CLOSE = "<<<STUDENT_ESSAY_END>>>"


def fence_safe(essay: str) -> str:
    """The essay with any copy of our fence markers defused, so it cannot close the fence."""
    return essay.replace("<<<", "< < <").replace(">>>", "> > >")


@dataclass(frozen=True)
class PromptExample:
    """The one-shot format example a template shows: its question and the prose of its answer."""

    question: str
    prose: tuple[str, ...]


_EXAMPLE_QUESTION = re.compile(r'question \("([^"]+)"\)')


@dataclass(frozen=True, eq=False)
class PromptTemplate:
    """One prompt: its files, id, version and content hash."""

    id: str
    version: str
    sources: dict[str, str]
    sha256: str

    @property
    def ref(self) -> PromptRef:
        """The provenance record for this template."""
        return PromptRef(id=self.id, version=self.version, sha256=self.sha256)

    @cached_property
    def _templates(self) -> dict[str, Template]:
        env = SandboxedEnvironment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False)
        return {part: env.from_string(source) for part, source in self.sources.items()}

    def _render(self, part: str, **context: object) -> str:
        return self._templates[part].render(**context).strip() + "\n"

    def render(self, part: str, **context: object) -> str:
        """One part of the template (for templates other than marking, e.g. ``probe``)."""
        return self._render(part, fence_open=FENCE_OPEN, fence_close=FENCE_CLOSE, **context)

    def system(self, scheme: MarkScheme, *, sentence_refs: bool = False) -> ChatMessage:
        """The static part: instructions and the scheme (shared by every essay on the scheme).

        ``sentence_refs``: evidence is cited by sentence number (the essay is shown numbered).
        """
        return _system_message(self, scheme, sentence_refs)

    def render_system(self, scheme: MarkScheme, *, sentence_refs: bool = False) -> ChatMessage:
        """Render the system message (uncached; ``system`` caches it per scheme)."""
        text = self._render(
            "system",
            scheme=scheme,
            fence_open=FENCE_OPEN,
            fence_close=FENCE_CLOSE,
            max_evidence=MAX_EVIDENCE,
            max_points=MAX_POINTS,
            sentence_refs=sentence_refs,
        )
        tag = PrefixTag(
            prompt=self.ref,
            scheme_id=scheme.id,
            scheme_version=scheme.version,
            scheme_sha256=scheme_sha256(scheme),
            variant="sentences" if sentence_refs else "free",
        )
        return ChatMessage(role="system", content=text, prefix=tag)

    def example(self, scheme: MarkScheme) -> PromptExample:
        """The format example in the rendered system message (its last line, a JSON answer), for copy checks.

        Empty when the template shows none. The answer's rationales, feedback and notes are its prose.
        """
        lines = self.system(scheme, sentence_refs=True).content.strip().splitlines()
        try:
            answer = json.loads(lines[-1])
        except (json.JSONDecodeError, IndexError):
            return PromptExample(question="", prose=())
        if not isinstance(answer, dict) or not isinstance(answer.get("objectives"), dict):
            return PromptExample(question="", prose=())
        prose = [str(o.get("rationale", "")) for o in answer["objectives"].values() if isinstance(o, dict)]
        prose += [str(answer.get(k, "")) for k in ("what_went_well", "even_better_if", "teacher_notes")]
        found = _EXAMPLE_QUESTION.search(lines[-2]) if len(lines) > 1 else None
        return PromptExample(question=found.group(1) if found else "", prose=tuple(p for p in prose if p))

    def essay(self, essay: str, sentences: SentenceTable | None = None) -> ChatMessage:
        """The essay, fenced and last; with ``sentences``, one numbered sentence a line."""
        shown = (
            [{"ref": s.ref, "text": fence_safe(s.text), "new_paragraph": s.new_paragraph} for s in sentences.sentences]
            if sentences is not None
            else None
        )
        text = self._render(
            "essay", essay=fence_safe(essay), sentences=shown, fence_open=FENCE_OPEN, fence_close=FENCE_CLOSE
        )
        return ChatMessage(role="user", content=text)

    def decided(self, scheme: MarkScheme, marks: dict[str, int]) -> ChatMessage:
        """The marks calibration decided, for the model to explain (sent after the essay)."""
        rows = []
        for ao in scheme.objectives:
            if ao.id in marks:
                level = ao.level_for_mark(marks[ao.id])
                rows.append(
                    {
                        "id": ao.id,
                        "name": ao.name,
                        "level": level.level,
                        "mark": marks[ao.id],
                        "max_marks": ao.max_marks,
                        "descriptor": level.descriptor,
                    }
                )
        return ChatMessage(role="user", content=self._render("decided", decided=rows))

    def findings(self, reading: Reading) -> ChatMessage | None:
        """What code found in the essay (points made and missed, conclusion, period), for the model to phrase.

        Point names come from the scheme and sentences are cited by number: no essay text is repeated
        outside its fence. None when the reading found nothing to say (a scheme without indicative content).
        """
        if not any(c.addressed or c.missing for c in reading.coverage):
            return None
        coverage = [
            {
                "id": c.ao_id,
                "made": [
                    point_name(p.point) + (f" ([{p.sentences[0].ref}])" if p.sentences and p.sentences[0].ref else "")
                    for p in c.addressed[:_FACTS_PER_LIST]
                ],
                "missed": [point_name(p) for p in c.missing[:_FACTS_PER_LIST]],
            }
            for c in reading.coverage
        ]
        conclusion = f"[{reading.conclusion.ref}]" if reading.conclusion is not None and reading.conclusion.ref else ""
        text = self._render(
            "findings",
            coverage=coverage,
            conclusion=conclusion or ("yes" if reading.conclusion is not None else ""),
            period=reading.period if reading.latest_year is not None else None,
            latest=reading.latest_year,
        )
        return ChatMessage(role="user", content=text)

    def reask(self, problems: list[str]) -> ChatMessage:
        """Feedback on an unacceptable answer."""
        return ChatMessage(role="user", content=self._render("reask", problems=problems))

    def messages(
        self, scheme: MarkScheme, essay: str, sentences: SentenceTable | None = None
    ) -> tuple[ChatMessage, ...]:
        """The first request's messages (evidence by sentence number when ``sentences`` is given)."""
        return (self.system(scheme, sentence_refs=sentences is not None), self.essay(essay, sentences))


_FACTS_PER_LIST = 4
"""Points made and missed listed per objective in the findings (the most telling first)."""


@lru_cache(maxsize=64)
def _system_message(template: PromptTemplate, scheme: MarkScheme, sentence_refs: bool) -> ChatMessage:
    return template.render_system(scheme, sentence_refs=sentence_refs)


def scheme_sha256(scheme: MarkScheme) -> str:
    """A content hash of the scheme (a scheme edited without a version bump still changes it)."""
    return hashlib.sha256(scheme.model_dump_json().encode()).hexdigest()


@cache
def load_prompt(name: str = "marking") -> PromptTemplate:
    """Load ``prompts/<name>/``; the hash covers the manifest and every file it names."""
    folder = resources.files("prompts") / name
    manifest_text = (folder / "template.yaml").read_text(encoding="utf-8")
    manifest = yaml.safe_load(manifest_text)
    digest = hashlib.sha256(manifest_text.encode())
    sources: dict[str, str] = {}
    for part, filename in sorted(manifest["files"].items()):
        text = (folder / filename).read_text(encoding="utf-8")
        sources[part] = text
        digest.update(f"\0{part}\0".encode())
        digest.update(text.encode())
    return PromptTemplate(
        id=str(manifest["id"]), version=str(manifest["version"]), sources=sources, sha256=digest.hexdigest()
    )
