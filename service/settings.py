"""All configuration in one place, read from ``DRAFTMARK_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Backend = Literal["auto", "openai", "local"]
StructuredMode = Literal["json_schema", "json_mode"]


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "draftmark"


class Settings(BaseSettings):
    """Runtime settings; unsafe or contradictory values are refused at start-up."""

    model_config = SettingsConfigDict(env_prefix="DRAFTMARK_", extra="ignore", frozen=True)

    backend: Backend = Field(
        default="auto",
        description="auto: OpenAI-compatible when a base URL or API key is set, else the local model.",
    )
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DRAFTMARK_LLM_API_KEY", "OPENAI_API_KEY")
    )
    structured_output: StructuredMode = Field(
        default="json_schema",
        description="json_schema for OpenAI/llama-server/vLLM; json_mode for servers that only do JSON mode.",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = 0
    samples: int = Field(default=1, ge=1, le=9)
    max_reasks: int = Field(default=2, ge=0, le=5)
    max_output_tokens: int = Field(default=1500, ge=256, le=16384)
    request_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    transport_retries: int = Field(
        default=2, ge=0, le=10, description="SDK-level retries for 429/5xx/timeouts (honours Retry-After)."
    )
    review_spread: int = Field(
        default=2, ge=0, description="Flag needs_review when an AO's marks over samples differ by more."
    )
    evidence_mode: Literal["auto", "sentences", "free"] = Field(
        default="auto",
        description="sentences: the model cites the essay's numbered sentences (S12) and code turns each into "
        "the verbatim quote and its offsets (an enum in JSON-schema mode, checked in code in JSON mode); free: "
        "the model copies passages, checked against the essay; auto (default): sentences on every endpoint.",
    )
    student_label: str = Field(
        default="Feedback drafted with AI and reviewed by your teacher.",
        max_length=300,
        description="Shown to students with their feedback (sheets, LMS comments, exports); empty: no label.",
    )
    redact: bool = Field(
        default=False, description="Replace names, emails, phones and candidate numbers before text leaves the process."
    )
    max_essay_chars: int = Field(default=30_000, ge=100, le=500_000)
    max_prompt_chars: int = Field(
        default=150_000,
        ge=10_000,
        le=2_000_000,
        description="The rendered prompt (instructions + scheme + essay) as a whole; longer requests are refused "
        "with 413 before any model call.",
    )
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Essay files sent to POST /v1/essays/extract."
    )
    max_scheme_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Scheme files sent to POST /v1/schemes/import."
    )
    auth_failures_per_minute: int = Field(
        default=20,
        ge=0,
        description="Failed authentications per minute per client address before answering 429 (0: unlimited).",
    )

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite file in DRAFTMARK_DATA_DIR. Postgres: postgresql+psycopg://...",
    )
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "draftmark")
    auth_disabled: bool = Field(default=False, description="Serve without API keys (local use only).")
    ops_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics, /docs, /redoc and /openapi.json answer only 'Authorization: Bearer "
        "<this token>', and /readyz gives its status alone (no model name, worker or broker details) without "
        "it. Unset (the default), they answer anyone who can reach the port, as liveness probes and "
        "Prometheus scrapers on a private network expect; set it on any server reachable from outside.",
    )
    max_batch_items: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    batch_concurrency: int = Field(default=8, ge=1, le=256, description="Concurrent LLM calls for batch work.")
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per minute per API key (0: unlimited). Not applied without auth."
    )
    webhook_secret: SecretStr | None = None
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhook URLs on loopback/private networks (tests, on-prem)."
    )
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    lti_allow_private: bool = Field(
        default=False,
        description="Allow LMS platforms (LTI) on loopback/private networks and over plain http (on-prem, tests).",
    )
    batch_lease_s: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="How long a claimed batch item stays reserved without a renewal; a dead worker's items are "
        "taken over after this. Renewed every third of it while marking.",
    )
    idempotency_lease_s: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="How long an Idempotency-Key stays reserved for a request that stopped renewing it (its "
        "process died); after this a retry with the same key and body runs again. Renewed every third of it.",
    )
    batch_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Tries per batch item for retryable model errors before it fails."
    )
    batch_retry_backoff_s: float = Field(
        default=2.0, ge=0.0, le=600.0, description="First retry delay; doubles each try (capped at 5 minutes)."
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0: run batches on Celery workers ('draftmark worker') through this broker "
        "instead of inside the API process.",
    )
    broker_visibility_timeout_s: int = Field(
        default=3600,
        ge=10,
        description="Seconds before Redis redelivers an unacknowledged task; must exceed the longest marking.",
    )
    llm_requests_per_minute: int = Field(
        default=0, ge=0, description="Global limit on model requests across all workers, in Redis (0: none)."
    )
    llm_max_concurrency: int = Field(
        default=0, ge=0, description="Global limit on concurrent model calls across all workers, in Redis (0: none)."
    )

    local_model_path: Path | None = None
    model_cache_dir: Path = Field(default_factory=_default_cache_dir)
    local_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=256)
    local_context: int = Field(default=8192, ge=2048, le=131072)
    prefix_cache_mb: int = Field(
        default=2048,
        ge=0,
        description="Disk budget for the embedded model's saved prompt-prefix states (one per scheme, "
        "~30-60 MB each, in DRAFTMARK_MODEL_CACHE_DIR/prefix-states); 0 turns the cache off.",
    )

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        if self.ops_token is not None and len(self.ops_token.get_secret_value().strip()) < 16:
            raise ValueError(
                "DRAFTMARK_OPS_TOKEN must be at least 16 characters (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(24))'`)"
            )
        if self.max_prompt_chars < self.max_essay_chars:
            raise ValueError(
                f"DRAFTMARK_MAX_PROMPT_CHARS ({self.max_prompt_chars:,}) must be at least DRAFTMARK_MAX_ESSAY_CHARS "
                f"({self.max_essay_chars:,}): the essay is part of the prompt"
            )
        if self.llm_base_url is not None and not self.llm_base_url.startswith(("http://", "https://")):
            raise ValueError(f"DRAFTMARK_LLM_BASE_URL must start with http:// or https://, got {self.llm_base_url!r}")
        if self.backend == "openai" and self.llm_base_url is None and self.llm_api_key is None:
            raise ValueError(
                "DRAFTMARK_BACKEND=openai needs DRAFTMARK_LLM_BASE_URL or an API key "
                "(DRAFTMARK_LLM_API_KEY / OPENAI_API_KEY)"
            )
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"DRAFTMARK_REDIS_URL must start with redis://, rediss:// or unix://, got {self.redis_url!r}"
            )
        longest_call_s = self.request_timeout_s * (self.transport_retries + 1)
        if self.redis_url is not None and self.broker_visibility_timeout_s <= longest_call_s:
            raise ValueError(
                f"DRAFTMARK_BROKER_VISIBILITY_TIMEOUT_S ({self.broker_visibility_timeout_s}) must exceed the longest "
                f"model call ({longest_call_s:.0f} s), or Redis redelivers tasks that are still running"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'draftmark.db'}"

    @property
    def resolved_evidence_mode(self) -> Literal["sentences", "free"]:
        """The evidence mode ``auto`` resolves to: sentence references on every endpoint (issue 26)."""
        return "free" if self.evidence_mode == "free" else "sentences"

    @property
    def resolved_backend(self) -> Literal["openai", "local"]:
        """The backend ``auto`` resolves to."""
        if self.backend != "auto":
            return self.backend
        if self.llm_base_url is not None or self.llm_api_key is not None:
            return "openai"
        return "local"
