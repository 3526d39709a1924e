"""Exports: what the teacher approved and released, in the shapes Canvas, Moodle and LTI platforms accept.

One script or a whole class set. Every export is a wrapper: draftmark's own metadata (which
scripts, approved by whom and when, which were held back and why) under ``draftmark``, the
platform's request body exactly as the platform validates it under ``payload`` - never mixed.

Drafts never leave as grades: only scripts a teacher approved *and released* to the student do.
By default an export that would carry any other is refused (409 naming them); ``released_only``
leaves them out (listed as held back, with why);
``include_drafts`` sends them only where the platform can hold a mark back from the student and
the gradebook (Moodle marking workflow ``inmarking``; LTI ``PendingManual`` with no score).

``report_csv`` is draftmark's own class report (draft and approved marks side by side), not a
gradebook import file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.result import MarkingResult
from schemas.review import ReviewPublic
from service.lms import ags, canvas, moodle
from service.lms.common import Criterion, MappingError, Script, iso, refuse_drafts
from service.persistence.stores import BatchView, Store
from service.workflows.student import student_view

Platform = Literal["canvas", "moodle", "lti"]
DraftPolicy = Literal["refuse", "released_only", "include"]


@dataclass(frozen=True)
class Selection:
    """The scripts of one export and those held back from it."""

    scripts: list[Script]
    held_back: list[dict[str, str]] = field(default_factory=list)


def script_for(marking_id: str, result: MarkingResult, review: ReviewPublic | None, *, key: str, label: str) -> Script:
    """One script as it leaves: ``student_view`` (the one definition of what a student receives)."""
    return Script(key=key, marking_id=marking_id, view=student_view(result, review, label=label))


def class_scripts(store: Store, batch: BatchView, *, users: dict[str, str], label: str) -> Selection:
    """Every marked script of a class set, keyed by LMS user id (``users`` maps the set's ids; else the id itself)."""
    ids = [i.marking_id for i in batch.items if i.marking_id]
    results, reviews = store.results_by_id(ids), store.latest_reviews(ids)
    unknown = sorted(set(users) - {i.external_id for i in batch.items})
    if unknown:
        raise MappingError(f"user mapping names scripts not in this class set: {', '.join(unknown[:5])}")
    scripts: list[Script] = []
    held: list[dict[str, str]] = []
    for item in batch.items:
        result = results.get(item.marking_id or "")
        if result is None or item.marking_id is None:
            held.append({"external_id": item.external_id, "reason": f"not marked ({item.status})"})
            continue
        key = users.get(item.external_id, item.external_id)
        scripts.append(script_for(item.marking_id, result, reviews.get(item.marking_id), key=key, label=label))
    return Selection(scripts, held)


def apply_policy(selection: Selection, policy: DraftPolicy, *, platform: Platform) -> Selection:
    """Refuse, leave out, or (where the platform can hold it back) include the unapproved scripts."""
    if policy == "refuse":
        refuse_drafts(selection.scripts)
        return selection
    if policy == "include":
        if platform == "canvas":
            raise MappingError(
                "Canvas has no held-back state for a grade sent by API or CSV, so drafts cannot be included: "
                "approve and release them, or pass released_only=true"
            )
        return selection
    drafts = [s for s in selection.scripts if not s.released]
    held = selection.held_back + [{"external_id": s.key, "reason": s.hold_reason} for s in drafts]
    return Selection([s for s in selection.scripts if s.released], held)


def wrap(platform: Platform, request: str, selection: Selection, payload: Any) -> dict[str, Any]:
    """The tool's metadata beside (never inside) the platform's payload."""
    return {
        "draftmark": {
            "platform": platform,
            "request": request,
            "scripts": [
                {
                    "user_id": s.key,
                    "marking_id": s.marking_id,
                    "source": s.view.source,
                    "approved_by": s.view.approved_by,
                    "approved_at": iso(s.view.approved_at) if s.view.approved_at else None,
                }
                for s in selection.scripts
            ],
            "held_back": selection.held_back,
        },
        "payload": payload,
    }


def canvas_export(selection: Selection, criteria: dict[str, Criterion] | None, *, bulk: bool) -> dict[str, Any]:
    """One ``PUT .../submissions/:user_id`` body, or the class's ``update_grades`` body."""
    if bulk:
        return wrap("canvas", canvas.BULK_PATH, selection, canvas.bulk_body(selection.scripts, criteria))
    (script,) = selection.scripts
    return wrap("canvas", canvas.SUBMISSION_PATH, selection, canvas.submission_body(script, criteria))


def moodle_export(
    selection: Selection, *, assignment_id: int, criteria: dict[str, Criterion] | None, released_state: str
) -> dict[str, Any]:
    """``mod_assign_save_grades`` parameters (POST to ``/webservice/rest/server.php``)."""
    payload = moodle.save_grades(
        selection.scripts, assignment_id=assignment_id, criteria=criteria, released_state=released_state
    )
    return wrap("moodle", "wsfunction=mod_assign_save_grades", selection, payload)


def lti_export(selection: Selection) -> dict[str, Any]:
    """The AGS scores, one per script (POST each to ``{lineitem}/scores``)."""
    return wrap(
        "lti",
        f"POST {{lineitem}}/scores (Content-Type: {ags.MEDIA_TYPE})",
        selection,
        [ags.score(s, s.key) for s in selection.scripts],
    )


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection advice)."""
    text = "" if value is None else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def report_csv(
    batch: BatchView,
    results: dict[str, MarkingResult],
    reviews: dict[str, ReviewPublic],
    ao_ids: Sequence[str],
    *,
    label: str = "",
) -> str:
    """The class report (draftmark's own): ids, status, draft and approved marks, flags, reviewer."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "external_id",
            "status",
            "marking_id",
            "source",
            "total",
            "max_total",
            "draft_total",
            "approved_total",
            *[f"{a}_draft" for a in ao_ids],
            *[f"{a}_approved" for a in ao_ids],
            "flags",
            "approved_by",
            "approved_at",
            "error_code",
            "error_message",
        ]
    )
    for item in batch.items:
        result = results.get(item.marking_id or "")
        review = reviews.get(item.marking_id or "")
        draft = {m.ao_id: m.mark for m in result.ao_marks} if result else {}
        approved = {m.ao_id: m.mark for m in review.marks} if review else {}
        shown = student_view(result, review, label=label) if result else None
        row: list[object] = [
            item.external_id,
            item.status,
            item.marking_id or "",
            shown.source if shown else "",
            shown.total if shown else "",
            shown.max_total if shown else "",
            result.total if result else "",
            review.total if review else "",
            *[draft.get(a, "") for a in ao_ids],
            *[approved.get(a, "") for a in ao_ids],
            ";".join(f.code.value for f in result.flags) if result else "",
            review.reviewer if review else "",
            iso(review.approved_at) if review else "",
            item.error_code or "",
            item.error_message or "",
        ]
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()
