"""Turn pydantic validation errors into fix-it sentences (for callers and for re-asks)."""

from __future__ import annotations

from pydantic import ValidationError


def format_validation_error(error: ValidationError) -> list[str]:
    """One readable line per problem: where it is and what to fix."""
    lines: list[str] = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        for part in message.splitlines():
            lines.append(f"{where}: {part}" if where else part)
    return lines
