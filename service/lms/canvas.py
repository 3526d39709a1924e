"""Canvas: the Submissions API bodies (one student, a class) and the gradebook CSV.

Read from instructure/canvas-lms:
- ``app/controllers/submissions_api_controller.rb`` (``update``): ``submission[posted_grade]``,
  ``comment[text_comment]``, ``rubric_assessment[<criterion id>][points|comments]``; ``bulk_update``
  (``POST .../submissions/update_grades``): ``grade_data[<student id>][posted_grade|text_comment|rubric_assessment]``.
- ``app/models/rubric_assessment.rb``: keys of ``rubric_assessment`` that match no criterion of the
  assignment's rubric are refused ("invalid rubric_assessment"), so every objective must be mapped.
- ``app/models/gradebook_importer.rb``: the header starts ``Student,ID`` (optionally ``SIS User ID,SIS
  Login ID``), the student block ends with ``Section``; later columns are matched as ``Title (assignment id)``
  and an unknown title creates a new assignment.

Canvas has no held-back state for a grade sent this way (``posted_grade`` is a grade), so a draft is
never sent to Canvas: a script not approved and released is refused or left out (``?released_only=true``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from service.lms.common import Criterion, MappingError, Script, check_criteria

SUBMISSION_PATH = "PUT /api/v1/courses/{course_id}/assignments/{assignment_id}/submissions/{user_id}"
BULK_PATH = "POST /api/v1/courses/{course_id}/assignments/{assignment_id}/submissions/update_grades"


def _grade_fields(script: Script, criteria: dict[str, Criterion] | None) -> dict[str, Any]:
    view = script.view
    fields: dict[str, Any] = {"posted_grade": str(view.total), "text_comment": view.comment()}
    if criteria is not None:
        check_criteria(criteria, view, platform="Canvas")
        fields["rubric_assessment"] = {
            criteria[m.ao_id].id: {"points": m.mark, "comments": m.comment} for m in view.marks
        }
    return fields


def submission_body(script: Script, criteria: dict[str, Criterion] | None) -> dict[str, Any]:
    """``PUT .../submissions/:user_id`` body for one approved script (``criteria=None``: no rubric)."""
    fields = _grade_fields(script, criteria)
    body: dict[str, Any] = {
        "submission": {"posted_grade": fields["posted_grade"]},
        "comment": {"text_comment": fields["text_comment"]},
    }
    if "rubric_assessment" in fields:
        body["rubric_assessment"] = fields["rubric_assessment"]
    return body


def bulk_body(scripts: Sequence[Script], criteria: dict[str, Criterion] | None) -> dict[str, Any]:
    """``POST .../submissions/update_grades`` body for a class: ``grade_data[<student id>]``."""
    grade_data: dict[str, Any] = {}
    for script in scripts:
        if not script.key.isdigit():
            raise MappingError(
                f"{script.key!r} is not a Canvas user id: pass user={script.key}=<Canvas user id> "
                "(ids from the course's People page or the roster)"
            )
        grade_data[script.key] = _grade_fields(script, criteria)
    return {"grade_data": grade_data}


def gradebook_csv(scripts: Sequence[Script], *, assignment: str, assignment_id: str) -> str:
    """The gradebook import file: ``Student,ID,SIS User ID,SIS Login ID,Section,<assignment> (<id>)``.

    ``Student`` is informational (Canvas matches on ``ID``); ids go out unaltered.
    """
    if not assignment_id.isdigit():
        raise MappingError(f"assignment_id must be the Canvas assignment's number, got {assignment_id!r}")
    title = assignment.strip() or "draftmark"
    if any(ch in title for ch in "()\r\n"):
        raise MappingError("the assignment title cannot hold brackets or line breaks (Canvas reads '(id)' from it)")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{title} ({assignment_id})"])
    for script in scripts:
        if not script.key.isdigit():
            raise MappingError(f"{script.key!r} is not a Canvas user id: pass user={script.key}=<Canvas user id>")
        writer.writerow(["", script.key, "", "", "", script.view.total])
    return out.getvalue()
