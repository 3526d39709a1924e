"""draftmark: LLM-assisted essay marking against levels-of-response mark schemes."""

from service.errors import (
    CallerError,
    ConfigurationError,
    DraftmarkError,
    EssayError,
    MarkingFailedError,
    ModelError,
    NotFoundError,
    SchemeError,
)
from service.pipeline import mark_essay
from service.schemes import SchemeLibrary, load_scheme_file
from service.settings import Settings
from service.version import __version__

__all__ = [
    "CallerError",
    "ConfigurationError",
    "DraftmarkError",
    "EssayError",
    "MarkingFailedError",
    "ModelError",
    "NotFoundError",
    "SchemeError",
    "SchemeLibrary",
    "Settings",
    "__version__",
    "load_scheme_file",
    "mark_essay",
]
