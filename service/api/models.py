"""Request and response shapes of the REST API (separate from the pipeline's result model)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.class_set import MAX_SET_NAME_CHARS, MAX_SKIPPED_FILES, SkippedFile, not_blank
from schemas.result import MarkingResult
from schemas.scheme import MarkScheme
from schemas.text import PlainText, StorableText
from service.workflows.review import ReviewPublic


class _SchemeChoice(BaseModel):
    """Either a library/registered scheme by id (and optional version) or an inline scheme."""

    model_config = ConfigDict(extra="forbid")

    scheme_id: str | None = Field(default=None, max_length=64, examples=["stalin-power-1929"])
    scheme_version: str | None = Field(default=None, max_length=32)
    scheme: MarkScheme | None = Field(default=None, description="An inline scheme; it is validated and registered.")

    @model_validator(mode="after")
    def _one_scheme(self) -> _SchemeChoice:
        if (self.scheme_id is None) == (self.scheme is None):
            raise ValueError("give exactly one of scheme_id (a registered scheme) or scheme (an inline scheme)")
        if self.scheme is not None and self.scheme_version is not None:
            raise ValueError("scheme_version goes with scheme_id; an inline scheme carries its own version")
        return self


class MarkingOptions(BaseModel):
    """Per-request options."""

    model_config = ConfigDict(extra="forbid")

    samples: int | None = Field(default=None, ge=1, le=9, description="Independent markings aggregated per AO.")
    redact: list[Annotated[PlainText, Field(max_length=200)]] = Field(
        default_factory=list,
        max_length=50,
        description="Extra terms (e.g. the student's name) to replace before the essay leaves the server.",
    )


class MarkingCreate(_SchemeChoice):
    """POST /v1/markings."""

    essay: StorableText = Field(min_length=1, description="The student's essay as plain text.")
    external_id: PlainText | None = Field(default=None, max_length=200, description="Your id for this submission.")
    options: MarkingOptions = MarkingOptions()


class MarkingPublic(BaseModel):
    """A stored marking: the model's draft and, once approved, the teacher's review beside it."""

    id: str
    external_id: str | None = None
    batch_id: str | None = None
    result: MarkingResult
    essay: str | None = Field(default=None, description="The essay as marked (evidence offsets index into it).")
    review: ReviewPublic | None = None


class BatchItemIn(BaseModel):
    """One essay of a batch."""

    model_config = ConfigDict(extra="forbid")

    external_id: PlainText = Field(min_length=1, max_length=200, description="Your id, e.g. a submission id.")
    essay: StorableText = Field(min_length=1)


class BatchRename(BaseModel):
    """POST /v1/batches/{id}/rename: new ids for scripts of a finished class set (e.g. the LMS's user ids)."""

    model_config = ConfigDict(extra="forbid")

    renames: dict[PlainText, PlainText] = Field(min_length=1, max_length=10000)

    @model_validator(mode="after")
    def _lengths(self) -> BatchRename:
        if any(not (0 < len(k) <= 200 and 0 < len(v) <= 200) for k, v in self.renames.items()):
            raise ValueError("ids must be 1 to 200 characters")
        return self


class BatchCreate(_SchemeChoice):
    """POST /v1/batches."""

    items: list[BatchItemIn] = Field(min_length=1)
    options: MarkingOptions = MarkingOptions()
    webhook_url: PlainText | None = Field(
        default=None, max_length=2000, description="POSTed (HMAC-signed) on completion."
    )
    name: PlainText | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SET_NAME_CHARS,
        description="Your name for the class set, shown where it is listed.",
        examples=["10B History – Stalin essay"],
    )
    skipped: list[SkippedFile] = Field(
        default_factory=list,
        max_length=MAX_SKIPPED_FILES,
        description="Files of the set that held no essay, and why: kept with the set until you dismiss them.",
    )

    _name_not_blank = field_validator("name")(not_blank)

    @model_validator(mode="after")
    def _unique_ids(self) -> BatchCreate:
        counts = Counter(i.external_id for i in self.items)
        dupes = sorted(k for k, n in counts.items() if n > 1)
        if dupes:
            raise ValueError(f"external_id values must be unique within a batch; repeated: {dupes[:10]}")
        return self


class ItemError(BaseModel):
    """Why an item could not be marked. It is never scored."""

    code: str
    message: str
    retryable: bool


class BatchItemPublic(BaseModel):
    """An item's state."""

    external_id: str
    status: Literal["queued", "running", "done", "failed"]
    marking_id: str | None = None
    attempts: int
    error: ItemError | None = None
    draft_total: int | None = None
    approved_total: int | None = None
    released: bool = Field(default=False, description="The latest approval is released to the student.")
    flags: list[str] = Field(default_factory=list)


class BatchPublic(BaseModel):
    """A batch and its progress."""

    id: str
    name: str | None = None
    status: Literal["queued", "running", "done", "done_with_failures"]
    scheme_id: str
    scheme_version: str
    created_at: datetime | None = None
    counts: dict[str, int]
    webhook_status: str
    items: list[BatchItemPublic]
    skipped: list[SkippedFile] = Field(
        default_factory=list, description="Files sent with the set that held no essay (kept after dismissal)."
    )
    skipped_dismissed_at: datetime | None = Field(
        default=None, description="When the skipped files were dismissed (POST /v1/batches/{id}/skipped/dismiss)."
    )


class BatchAccepted(BaseModel):
    """202 body for a new batch."""

    id: str
    status: str
    counts: dict[str, int]
    links: dict[str, str]


class SchemeRegistered(BaseModel):
    """Result of registering a scheme."""

    id: str
    version: str
    created: bool
