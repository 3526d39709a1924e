"""Record real completions once; replay them deterministically (CI runs the evals without a model)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from schemas.result import EndpointKind, TokenUsage
from service.errors import ModelResponseError
from service.llm.port import LLM, Completion, CompletionRequest


def request_key(request: CompletionRequest) -> str:
    """A stable hash of everything that determines the answer."""
    payload = json.dumps(
        {
            "messages": [[m.role, m.content] for m in request.messages],
            "schema": request.json_schema,
            "temperature": request.temperature,
            "seed": request.seed,
            "max_output_tokens": request.max_output_tokens,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class RecordingLLM:
    """Wraps a real backend and appends each completion to a JSONL recording."""

    def __init__(self, inner: LLM, path: Path) -> None:
        self._inner = inner
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def model_id(self) -> str:
        """The wrapped model's id."""
        return self._inner.model_id

    @property
    def endpoint_kind(self) -> EndpointKind:
        """The wrapped model's kind."""
        return self._inner.endpoint_kind

    @property
    def indicative_only(self) -> bool:
        """As the wrapped model."""
        return self._inner.indicative_only

    async def complete(self, request: CompletionRequest) -> Completion:
        """Forward, then record."""
        completion = await self._inner.complete(request)
        record = {
            "key": request_key(request),
            "text": completion.text,
            "finish_reason": completion.finish_reason,
            "usage": completion.usage.model_dump(),
            "model": completion.model,
            "endpoint_kind": self.endpoint_kind,
            "indicative_only": self.indicative_only,
        }
        with self._path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return completion


class ReplayLLM:
    """Answers from a recording; a request that was never recorded is an error, never a guess."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ModelResponseError(f"no recording at {path}")
        self._answers: dict[str, dict[str, object]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                self._answers[record["key"]] = record
        first = next(iter(self._answers.values()), {})
        self._model = f"replay:{first.get('model', 'unknown')}"
        self._indicative = bool(first.get("indicative_only", False))

    @property
    def model_id(self) -> str:
        """``replay:<recorded model>``."""
        return self._model

    @property
    def endpoint_kind(self) -> EndpointKind:
        """Replays are fakes."""
        return "fake"

    @property
    def indicative_only(self) -> bool:
        """As the recorded model."""
        return self._indicative

    async def complete(self, request: CompletionRequest) -> Completion:
        """The recorded answer."""
        record = self._answers.get(request_key(request))
        if record is None:
            raise ModelResponseError("this request is not in the recording; record it again with --record")
        usage = record.get("usage") or {}
        assert isinstance(usage, dict)
        return Completion(
            text=str(record["text"]),
            finish_reason="stop",
            usage=TokenUsage(**usage),
            model=self._model,
        )
