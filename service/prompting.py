"""Render versioned prompt templates (sandboxed Jinja2, strict undefined variables)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from importlib import resources

import yaml
from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from schemas.draft import MAX_EVIDENCE, MAX_POINTS
from schemas.result import PromptRef
from schemas.scheme import MarkScheme
from service.llm.port import ChatMessage

FENCE_OPEN = "<<<STUDENT_ESSAY_START>>>"
FENCE_CLOSE = "<<<STUDENT_ESSAY_END>>>"


def fence_safe(essay: str) -> str:
    """The essay with any copy of our fence markers defused, so it cannot close the fence."""
    return essay.replace("<<<", "< < <").replace(">>>", "> > >")


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

    def system(self, scheme: MarkScheme) -> ChatMessage:
        """The static part: instructions and the scheme (shared by every essay on the scheme)."""
        return _system_message(self, scheme)

    def render_system(self, scheme: MarkScheme) -> ChatMessage:
        """Render the system message (uncached; ``system`` caches it per scheme)."""
        text = self._render(
            "system",
            scheme=scheme,
            fence_open=FENCE_OPEN,
            fence_close=FENCE_CLOSE,
            max_evidence=MAX_EVIDENCE,
            max_points=MAX_POINTS,
        )
        return ChatMessage(role="system", content=text)

    def essay(self, essay: str) -> ChatMessage:
        """The essay, fenced and last."""
        text = self._render("essay", essay=fence_safe(essay), fence_open=FENCE_OPEN, fence_close=FENCE_CLOSE)
        return ChatMessage(role="user", content=text)

    def reask(self, problems: list[str]) -> ChatMessage:
        """Feedback on an unacceptable answer."""
        return ChatMessage(role="user", content=self._render("reask", problems=problems))

    def messages(self, scheme: MarkScheme, essay: str) -> tuple[ChatMessage, ...]:
        """The first request's messages."""
        return (self.system(scheme), self.essay(essay))


@lru_cache(maxsize=64)
def _system_message(template: PromptTemplate, scheme: MarkScheme) -> ChatMessage:
    return template.render_system(scheme)


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
