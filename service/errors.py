"""One error tree, split by audience.

``CallerError``: the request is wrong; the message says how to fix it (HTTP 4xx).
``ModelError``: the model or its endpoint let us down; retrying may help (HTTP 502/503/504).
"""

from __future__ import annotations

from schemas.result import TokenUsage


class DraftmarkError(Exception):
    """Root of every error draftmark raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def retry_hint(self) -> float | None:
        """Seconds a client should wait before sending the same request again (``Retry-After``), if that helps."""
        return None


class CallerError(DraftmarkError):
    """The caller's input is wrong; fixing it is the caller's job."""

    status_code = 422
    code = "invalid_input"


class EssayError(CallerError):
    """The essay cannot be marked as sent (empty, too long, not text)."""

    code = "invalid_essay"


class SchemeError(CallerError):
    """A mark scheme is invalid, or could not be read."""

    code = "invalid_scheme"


class TooLargeError(CallerError):
    """An upload or the prompt it would build is over a configured size limit (the message names it)."""

    status_code = 413
    code = "too_large"


class UploadTooLargeError(TooLargeError):
    """A file sent to an upload route is larger than that route accepts."""

    code = "upload_too_large"


class PromptTooLargeError(TooLargeError):
    """Scheme plus essay would render a prompt longer than ``DRAFTMARK_MAX_PROMPT_CHARS``."""

    code = "prompt_too_large"


class UnsupportedMediaError(CallerError):
    """The upload is neither text nor .docx."""

    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(CallerError):
    """A collection is larger than the configured limit."""

    status_code = 413
    code = "too_many_items"


class NotFoundError(CallerError):
    """A named thing (scheme, marking, batch) does not exist."""

    status_code = 404
    code = "not_found"


class ConflictError(CallerError):
    """The request conflicts with stored state."""

    status_code = 409
    code = "conflict"


class IdempotencyInProgressError(ConflictError):
    """The first request with this Idempotency-Key is still running; ``retry_after``: until its lease ends."""

    code = "idempotency_in_progress"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def retry_hint(self) -> float | None:
        """By then the first request has finished (and is replayed) or its lease has run out (and yours runs)."""
        return self.retry_after


class ConfigurationError(DraftmarkError):
    """Settings or the local installation are wrong; the operator must fix them."""

    status_code = 503
    code = "misconfigured"


class ModelError(DraftmarkError):
    """The model or its endpoint failed. ``retry_after`` is the endpoint's hint in seconds, if any.

    ``default_retry_after`` is what the API tells a client when there is no hint, so every
    transient model failure says when to come back; failures that the same request would only
    repeat (truncation, the content filter) have none.
    """

    status_code = 502
    code = "model_error"
    default_retry_after: float | None = 10.0

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def retry_hint(self) -> float | None:
        """Seconds a client should wait before retrying, or None when retrying as-is will not help."""
        return self.retry_after if self.retry_after is not None else self.default_retry_after


class ModelUnavailableError(ModelError):
    """The endpoint could not be reached, is rate limiting, or is overloaded."""

    status_code = 503
    code = "model_unavailable"


class ModelRateLimitedError(ModelUnavailableError):
    """The endpoint answered 429; ``retry_after`` is its ``Retry-After`` (or a default)."""


class ModelTimeoutError(ModelError):
    """The endpoint did not answer in time."""

    status_code = 504
    code = "model_timeout"


class ModelResponseError(ModelError):
    """The endpoint answered with an error or something that is not a completion."""

    code = "model_bad_response"


class OutputTruncatedError(ModelError):
    """The model stopped at the token limit (``finish_reason == "length"``)."""

    code = "model_output_truncated"
    default_retry_after = None


class ContentFilteredError(ModelError):
    """The endpoint's content filter withheld the answer."""

    code = "model_content_filtered"
    default_retry_after = None


class MarkingFailedError(ModelError):
    """Every re-ask produced invalid output. Carries the evidence needed to debug it."""

    code = "marking_failed"

    def __init__(
        self,
        message: str,
        *,
        last_output: str,
        problems: list[str],
        attempts: int,
        usage: TokenUsage,
    ) -> None:
        super().__init__(message)
        self.last_output = last_output
        self.problems = problems
        self.attempts = attempts
        self.usage = usage
