"""What every LMS format shares: a script as it leaves, criterion and user mappings, the draft rule."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.student import StudentView
from service.errors import CallerError, ConflictError


class MappingError(CallerError):
    """An LMS mapping (criterion ids, user ids, assignment) is missing or does not fit the scheme."""

    code = "lms_mapping"


class NotReleasedError(ConflictError):
    """Scripts not approved and released were asked to leave as grades; the message names them."""

    code = "not_released"


@dataclass(frozen=True)
class Script:
    """One script on its way out: who it is for (``key``, the LMS user id or the class set's id) and what they get."""

    key: str
    marking_id: str
    view: StudentView

    @property
    def released(self) -> bool:
        """Whether a teacher approved it and released it to the student (only then does it carry a grade)."""
        return self.view.released

    @property
    def hold_reason(self) -> str:
        """Why it is held back: not approved, or approved but not released."""
        return "not approved" if self.view.source == "draft" else "approved, not released"


@dataclass(frozen=True)
class Criterion:
    """Where one objective goes in the LMS: its criterion id and, when given, the criterion's points."""

    id: str
    points: int | None = None


def iso(moment: datetime) -> str:
    """ISO 8601 with milliseconds and ``Z`` (what AGS timestamps and the wrappers use)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_CRITERION = re.compile(r"^(?P<ao>[^=]+)=(?P<id>[^:]+)(?::(?P<points>\d{1,4}))?$")


def parse_criteria(pairs: Sequence[str], *, integer_ids: bool = False) -> dict[str, Criterion]:
    """``["AO1=_123:6", "AO2=_456"]`` -> objective -> criterion (``:points`` optional, checked later)."""
    mapping: dict[str, Criterion] = {}
    for pair in pairs:
        found = _CRITERION.match(pair.strip())
        if not found:
            raise MappingError(f"criterion must look like AO1=_1234 or AO1=_1234:6 (criterion points), got {pair!r}")
        ao, target = found["ao"].strip(), found["id"].strip()
        if integer_ids and not target.isdigit():
            raise MappingError(
                f"Moodle criterion ids are integers (core_grading_get_definitions lists them), got {pair!r}"
            )
        if ao in mapping:
            raise MappingError(f"objective {ao} is mapped twice")
        mapping[ao] = Criterion(target, int(found["points"]) if found["points"] else None)
    return mapping


def check_criteria(mapping: dict[str, Criterion], view: StudentView, *, platform: str) -> None:
    """Every objective mapped, no unknown objective, and criterion points equal to the objective's maximum."""
    objectives = {m.ao_id: m.max_marks for m in view.marks}
    missing = [ao for ao in objectives if ao not in mapping]
    if missing:
        raise MappingError(
            f"no {platform} criterion for {', '.join(missing)}: pass criterion={missing[0]}=<criterion id> "
            "for every objective of the scheme"
        )
    unknown = sorted(set(mapping) - set(objectives))
    if unknown:
        raise MappingError(f"the scheme has no objective {', '.join(unknown)} (it has {', '.join(objectives)})")
    for ao, criterion in mapping.items():
        if criterion.points is not None and criterion.points != objectives[ao]:
            raise MappingError(
                f"{ao} is out of {objectives[ao]} but {platform} criterion {criterion.id} is out of "
                f"{criterion.points}: make them equal in the LMS or the scheme"
            )


def parse_users(pairs: Sequence[str]) -> dict[str, str]:
    """``["alice.docx=1234"]`` -> the class set's id -> the LMS user id."""
    users: dict[str, str] = {}
    for pair in pairs:
        key, sep, user = pair.partition("=")
        if not sep or not key.strip() or not user.strip():
            raise MappingError(f"user must look like <class set id>=<LMS user id>, got {pair!r}")
        users[key.strip()] = user.strip()
    return users


def refuse_drafts(scripts: Sequence[Script]) -> None:
    """A draft never leaves as a grade: name the scripts not approved and released (409)."""
    drafts = [s.key for s in scripts if not s.released]
    if drafts:
        shown = ", ".join(drafts[:10]) + (f" and {len(drafts) - 10} more" if len(drafts) > 10 else "")
        raise NotReleasedError(
            f"{len(drafts)} script(s) are not released: {shown}. Approve and release them first "
            "(a draft never leaves as a grade), or export the released ones with ?released_only=true"
        )
