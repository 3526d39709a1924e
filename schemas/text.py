r"""Text every store and the model can take, checked at the edge with a message that names the field.

PostgreSQL refuses NUL (U+0000) in text, and no UTF-8 store can hold a lone surrogate (JSON lets a
client send ``"\\ud800"``). Both used to surface as a 500 after the paid model call. Essays may keep
other control characters: they are an injection signal that is flagged for review, not an error.
Identifiers and names are single lines of printable text, so every control character is refused.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_IDENTIFIER_CHARS = 200
"""Ids and names: the column width in every store (``varchar(200)``)."""


def _describe(char: str) -> str:
    if char == "\x00":
        return "a NUL character (U+0000)"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate (U+{ord(char):04X})"
    return f"the control character U+{ord(char):04X}"


def unstorable_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return f"contains {_describe(found.group())} at character {found.start()}; remove it and send the text again"


def require_storable(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` saying which character cannot be stored and where."""
    problem = unstorable_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _plain(value: str) -> str:
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"contains {_describe(found.group())} at character {found.start()}; "
            "use printable text without control characters"
        )
    return value


def identifier_problem(value: str, *, max_length: int = MAX_IDENTIFIER_CHARS) -> str | None:
    """Why ``value`` cannot be an id or a name (empty, too long, a control character), or None when it can.

    The one rule for every identifier that comes from outside (external ids, exemplar ids, student
    names) that arrives in a CSV cell or a JSON field read outside a pydantic model.
    """
    if not value.strip():
        return "is empty"
    if len(value) > max_length:
        return f"is {len(value):,} characters long; use at most {max_length}"
    found = _CONTROL.search(value)
    if found is not None:
        return f"contains {_describe(found.group())} at character {found.start()}; use printable text"
    return None


def plain_label(value: str, *, max_length: int = MAX_IDENTIFIER_CHARS) -> str:
    """``value`` as a storable one-line label: control characters become spaces, runs of space one, cut to length.

    For names the service makes up itself from what it was sent (a zip member's file name, a CSV
    cell used as a label), where refusing the whole set over one odd name would help nobody.
    """
    return " ".join(_CONTROL.sub(" ", value).split())[:max_length].strip()


StorableText = Annotated[str, AfterValidator(require_storable)]
"""Free text (essays, comments, scheme prose): no NUL, no lone surrogates."""

PlainText = Annotated[str, AfterValidator(_plain)]
"""Ids, names and terms: no control characters at all."""
