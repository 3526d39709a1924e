"""A class set's own record beside its scripts: the teacher's name for it, and the files that held no essay."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from schemas.text import PlainText

MAX_SET_NAME_CHARS = 120
MAX_SKIPPED_FILES = 1000
"""Files a class set may record as not used (the server refuses a .zip or CSV with more entries without an essay)."""
MAX_SKIPPED_NAME_CHARS = 500
"""A file's name, with the .zip or CSV it came from and its path inside it."""
MAX_SKIPPED_REASON_CHARS = 1000


def not_blank(value: str | None) -> str | None:
    """``value`` unchanged, or ``ValueError`` when it is only spaces (a name that shows as nothing)."""
    if value is not None and not value.strip():
        raise ValueError("is only spaces; give some text or leave it out")
    return value


class SkippedFile(BaseModel):
    """A file (or a member of a .zip or CSV) of the class set that holds no essay, and why."""

    model_config = ConfigDict(extra="forbid")

    name: PlainText = Field(min_length=1, max_length=MAX_SKIPPED_NAME_CHARS)
    reason: PlainText = Field(min_length=1, max_length=MAX_SKIPPED_REASON_CHARS)

    _not_blank = field_validator("name", "reason")(not_blank)


SKIPPED_FILES = TypeAdapter(list[SkippedFile])
"""A set's skipped files as they are stored (one JSON list)."""
