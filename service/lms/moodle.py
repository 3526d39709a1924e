"""Moodle: ``mod_assign_save_grades`` parameters and the gradebook CSV.

Read from moodle/moodle:
- ``mod/assign/externallib.php`` (``save_grades_parameters``): ``assignmentid`` (int), ``applytoall``
  (bool), ``grades[]`` of ``userid`` (int), ``grade`` (float), ``attemptnumber`` (int, -1 = latest),
  ``addattempt`` (bool), ``workflowstate`` (alpha), ``plugindata`` and ``advancedgradingdata``; all
  required but the last two; ``validate_parameters`` refuses any other key ("Unexpected keys").
- ``mod/assign/feedback/comments/locallib.php`` (``get_external_parameters``):
  ``plugindata.assignfeedbackcomments_editor = {text, format}``; format 2 is FORMAT_PLAIN (1 is HTML).
- ``grade/grading/form/guide/lib.php`` (``get_external_instance_filling_details``): a marking guide
  filling is ``{criterionid (int), levelid?, remark?, remarkformat?, score (float)}``, sent as
  ``advancedgradingdata.guide.criteria[] = {criterionid, fillings: [filling]}``; criterion ids are
  integers from ``core_grading_get_definitions``.
- ``mod/assign/locallib.php``: marking workflow states ``notmarked, inmarking, readyforreview, inreview,
  readyforrelease, released``; a grade is held back from students until ``released`` (with workflow on).
- ``grade/import/csv``: users matched by a column mapped to username / id number / email; a
  non-numeric grade aborts the import; ids must arrive unaltered.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, Literal

from service.lms.common import Criterion, MappingError, Script, check_criteria

FORMAT_PLAIN = 2
WORKFLOW_STATES = ("notmarked", "inmarking", "readyforreview", "inreview", "readyforrelease", "released")
DRAFT_STATE = "inmarking"
Identifier = Literal["username", "idnumber", "email"]


def _user_id(script: Script) -> int:
    if not script.key.isdigit():
        raise MappingError(
            f"{script.key!r} is not a Moodle user id: pass user={script.key}=<Moodle user id> "
            "(or use the gradebook CSV, which matches usernames)"
        )
    return int(script.key)


def grade_entry(script: Script, criteria: dict[str, Criterion] | None, *, released_state: str) -> dict[str, Any]:
    """One ``grades[]`` entry; an unapproved script is held back (``workflowstate: inmarking``)."""
    view = script.view
    entry: dict[str, Any] = {
        "userid": _user_id(script),
        "grade": float(view.total),
        "attemptnumber": -1,
        "addattempt": False,
        "workflowstate": released_state if script.released else DRAFT_STATE,
        "plugindata": {"assignfeedbackcomments_editor": {"text": view.comment(), "format": FORMAT_PLAIN}},
    }
    if criteria is not None:
        check_criteria(criteria, view, platform="Moodle")
        entry["advancedgradingdata"] = {
            "guide": {
                "criteria": [
                    {
                        "criterionid": int(criteria[m.ao_id].id),
                        "fillings": [
                            {
                                "criterionid": int(criteria[m.ao_id].id),
                                "remark": m.comment,
                                "remarkformat": FORMAT_PLAIN,
                                "score": float(m.mark),
                            }
                        ],
                    }
                    for m in view.marks
                ]
            }
        }
    return entry


def save_grades(
    scripts: Sequence[Script],
    *,
    assignment_id: int,
    criteria: dict[str, Criterion] | None,
    released_state: str = "released",
) -> dict[str, Any]:
    """``mod_assign_save_grades`` parameters for a class (or one script)."""
    if released_state not in WORKFLOW_STATES or released_state == DRAFT_STATE:
        raise MappingError(f"workflow must be one of readyforrelease, released (got {released_state!r})")
    return {
        "assignmentid": assignment_id,
        "applytoall": False,
        "grades": [grade_entry(s, criteria, released_state=released_state) for s in scripts],
    }


def gradebook_csv(scripts: Sequence[Script], *, identifier: Identifier) -> str:
    """``<identifier>,grade,feedback``: map the first column to the user field, the others to the item."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([identifier, "grade", "feedback"])
    for script in scripts:
        writer.writerow([script.key, script.view.total, script.view.comment()])
    return out.getvalue()
