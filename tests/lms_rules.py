"""The platforms' acceptance rules, transcribed from their code, for contract tests and the LTI emulator.

Each rule names the file it was read from, so a reader can check it:
- Moodle: mod/assign/externallib.php (save_grades_parameters), mod/assign/feedback/comments/locallib.php
  (get_external_parameters), grade/grading/form/guide/lib.php (get_external_instance_filling_details),
  lib/external/classes/external_api.php (validate_parameters: "Unexpected keys", "Missing required key"),
  lib/moodlelib.php (clean_param: PARAM_INT, PARAM_FLOAT, PARAM_BOOL, PARAM_ALPHA), grade/import/csv.
- Canvas: app/controllers/submissions_api_controller.rb (update, bulk_update), app/models/rubric_assessment.rb,
  app/models/gradebook_importer.rb, app/controllers/lti/ims/scores_controller.rb.
- LTI AGS 2.0 (1EdTech) Score; moodle mod/lti/service/gradebookservices/classes/local/resources/scores.php.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any


# --- Moodle external API structures (external_value / external_single_structure / external_multiple_structure)
@dataclass(frozen=True)
class Value:
    param: str  # PARAM_INT | PARAM_FLOAT | PARAM_BOOL | PARAM_ALPHA | PARAM_RAW
    required: bool = True


@dataclass(frozen=True)
class Single:
    keys: dict[str, Any]
    required: bool = True


@dataclass(frozen=True)
class Multiple:
    of: Any
    required: bool = True


def _check_value(v: Value, value: Any, path: str) -> list[str]:
    # clean_param: PARAM_INT accepts integers (or their string form); PARAM_FLOAT numbers; PARAM_BOOL
    # booleans / 0 / 1; PARAM_ALPHA only a-z A-Z; PARAM_RAW any scalar text.
    if v.param == "PARAM_INT":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None
        )
    elif v.param == "PARAM_FLOAT":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif v.param == "PARAM_BOOL":
        ok = isinstance(value, bool) or value in (0, 1, "0", "1")
    elif v.param == "PARAM_ALPHA":
        ok = isinstance(value, str) and re.fullmatch(r"[a-zA-Z]*", value) is not None
    else:
        ok = isinstance(value, str | int | float)
    return [] if ok else [f"{path}: invalid {v.param} value {value!r}"]


def validate_moodle(spec: Any, value: Any, path: str = "") -> list[str]:
    """Moodle's validate_parameters: types, required keys, and no unexpected keys."""
    if isinstance(spec, Value):
        return _check_value(spec, value, path)
    if isinstance(spec, Multiple):
        if not isinstance(value, list):
            return [f"{path}: only arrays accepted"]
        return [e for i, item in enumerate(value) for e in validate_moodle(spec.of, item, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return [f"{path}: only arrays/objects accepted"]
    errors = [
        f"{path}: Missing required key in single structure: {k}"
        for k, s in spec.keys.items()
        if s.required and k not in value
    ]
    unexpected = sorted(set(value) - set(spec.keys))
    if unexpected:
        errors.append(f"{path}: Unexpected keys ({', '.join(unexpected)}) detected in parameter array.")
    for key, sub in spec.keys.items():
        if key in value:
            errors += validate_moodle(sub, value[key], f"{path}.{key}")
    return errors


# mod/assign/feedback/comments/locallib.php: get_external_parameters
_COMMENTS = Single({"text": Value("PARAM_RAW"), "format": Value("PARAM_INT")}, required=False)
# grade/grading/form/guide/lib.php: get_external_instance_filling_details ('id' unset by save_grades_parameters)
_GUIDE_FILLING = Single(
    {
        "criterionid": Value("PARAM_INT"),
        "levelid": Value("PARAM_INT", required=False),
        "remark": Value("PARAM_RAW", required=False),
        "remarkformat": Value("PARAM_INT", required=False),
        "score": Value("PARAM_FLOAT"),
    }
)
_GUIDE = Single(
    {
        "criteria": Multiple(
            Single({"criterionid": Value("PARAM_INT"), "fillings": Multiple(_GUIDE_FILLING, required=False)})
        )
    },
    required=False,
)
# mod/assign/externallib.php: save_grades_parameters
MOODLE_SAVE_GRADES = Single(
    {
        "assignmentid": Value("PARAM_INT"),
        "applytoall": Value("PARAM_BOOL"),
        "grades": Multiple(
            Single(
                {
                    "userid": Value("PARAM_INT"),
                    "grade": Value("PARAM_FLOAT"),
                    "attemptnumber": Value("PARAM_INT"),
                    "addattempt": Value("PARAM_BOOL"),
                    "workflowstate": Value("PARAM_ALPHA"),
                    "plugindata": Single({"assignfeedbackcomments_editor": _COMMENTS}, required=False),
                    "advancedgradingdata": Single({"guide": _GUIDE}, required=False),
                }
            )
        ),
    }
)
# mod/assign/locallib.php: ASSIGN_MARKING_WORKFLOW_STATE_*
MOODLE_WORKFLOW_STATES = {"", "notmarked", "inmarking", "readyforreview", "inreview", "readyforrelease", "released"}
FORMAT_PLAIN = 2  # lib/weblib.php: FORMAT_MOODLE 0, FORMAT_HTML 1, FORMAT_PLAIN 2, FORMAT_MARKDOWN 4


def moodle_errors(params: dict[str, Any], criteria: dict[int, float] | None = None) -> list[str]:
    """Everything Moodle would refuse in save_grades params (``criteria``: guide criterion id -> max score)."""
    errors = validate_moodle(MOODLE_SAVE_GRADES, params)
    for i, grade in enumerate(params.get("grades", [])):
        if grade.get("workflowstate") not in MOODLE_WORKFLOW_STATES:
            errors.append(f"grades[{i}]: unknown workflow state {grade.get('workflowstate')!r}")
        editor = grade.get("plugindata", {}).get("assignfeedbackcomments_editor")
        if editor and editor.get("format") != FORMAT_PLAIN and "<" not in editor.get("text", ""):
            errors.append(f"grades[{i}]: plain text declared as format {editor.get('format')}")
        for c in grade.get("advancedgradingdata", {}).get("guide", {}).get("criteria", []):
            for f in c.get("fillings", []):
                if criteria is not None and f.get("criterionid") not in criteria:
                    errors.append(f"grades[{i}]: no guide criterion {f.get('criterionid')}")
                elif criteria is not None and f.get("score", 0) > criteria[f["criterionid"]]:
                    errors.append(f"grades[{i}]: score above the criterion's maximum")
                if f.get("remarkformat", FORMAT_PLAIN) != FORMAT_PLAIN:
                    errors.append(f"grades[{i}]: remark declared as format {f.get('remarkformat')}")
    return errors


# --- Canvas
def canvas_submission_errors(body: dict[str, Any], rubric: dict[str, int] | None) -> list[str]:
    """submissions_api_controller#update params; rubric_assessment keys must be the rubric's criterion ids."""
    errors = []
    unexpected = set(body) - {"submission", "comment", "rubric_assessment"}
    if unexpected:
        errors.append(f"not Canvas parameters: {sorted(unexpected)}")
    grade = body.get("submission", {}).get("posted_grade")
    if not isinstance(grade, str) or not re.fullmatch(r"\d+(\.\d+)?", grade):
        errors.append(f"submission[posted_grade] must be a grade string, got {grade!r}")
    if not isinstance(body.get("comment", {}).get("text_comment", ""), str):
        errors.append("comment[text_comment] must be text")
    errors += _rubric_errors(body.get("rubric_assessment"), rubric)
    return errors


def _rubric_errors(assessment: Any, rubric: dict[str, int] | None) -> list[str]:
    if assessment is None:
        return []
    if rubric is None:
        return ["rubric_assessment sent for an assignment without a rubric"]
    errors = []
    if not any(k in rubric for k in assessment):  # rubric_assessment.rb: 400 "invalid rubric_assessment"
        errors.append("invalid rubric_assessment: no key matches a rubric criterion")
    for key, value in assessment.items():
        if key not in rubric:
            errors.append(f"rubric_assessment[{key}] is not a criterion of the rubric")
            continue
        if set(value) - {"points", "comments", "rating_id"}:
            errors.append(f"rubric_assessment[{key}] has unknown keys {sorted(set(value) - {'points', 'comments'})}")
        if not isinstance(value.get("points"), int | float) or value["points"] > rubric[key]:
            errors.append(f"rubric_assessment[{key}][points] must be a number up to {rubric[key]}")
    return errors


def canvas_bulk_errors(body: dict[str, Any], rubric: dict[str, int] | None) -> list[str]:
    """submissions_api_controller#bulk_update: grade_data[<student id>][posted_grade|text_comment|rubric_assessment]."""
    errors = [] if set(body) == {"grade_data"} else [f"unexpected top-level keys {sorted(body)}"]
    for student, data in body.get("grade_data", {}).items():
        if not str(student).isdigit():
            errors.append(f"grade_data key {student!r} is not a Canvas user id")
        unexpected = set(data) - {"posted_grade", "text_comment", "rubric_assessment", "excuse", "group_comment"}
        if unexpected:
            errors.append(f"grade_data[{student}] has unknown keys {sorted(unexpected)}")
        errors += _rubric_errors(data.get("rubric_assessment"), rubric)
    return errors


_CANVAS_ASSIGNMENT_COLUMN = re.compile(r"^(?P<title>.+) \((?P<id>\d+)\)$")


def canvas_csv_errors(text: str) -> list[str]:
    """gradebook_importer.rb: Student,ID[,SIS User ID,SIS Login ID],Section, then 'Title (id)' columns."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    errors = []
    if header[:2] != ["Student", "ID"]:
        errors.append(f"header must start Student,ID; got {header[:2]}")
    rest = header[2:]
    if rest[:2] == ["SIS User ID", "SIS Login ID"]:
        rest = rest[2:]
    if not rest or rest[0] != "Section":
        errors.append("the student block must end with Section")
    for col in rest[1:]:
        if not _CANVAS_ASSIGNMENT_COLUMN.match(col):
            errors.append(f"column {col!r} is not 'Title (assignment id)': Canvas would create a new assignment")
    for row in rows[1:]:
        if len(row) != len(header):
            errors.append(f"row {row[:2]} has {len(row)} cells for {len(header)} columns")
        elif not row[1].isdigit():
            errors.append(f"ID {row[1]!r} is not a Canvas user id")
    return errors


def moodle_csv_errors(text: str, users: set[str]) -> list[str]:
    """grade/import/csv: a user column that matches exactly; non-numeric grades abort the import."""
    rows = list(csv.reader(io.StringIO(text)))
    errors = []
    for row in rows[1:]:
        if row[0] not in users:
            errors.append(f"user {row[0]!r} matches nobody (ids must arrive unaltered)")
        try:
            float(row[1])
        except ValueError:
            errors.append(f"grade {row[1]!r} is not numeric: the import would abort")
    return errors


# --- LTI AGS Score
AGS_KEYS = {
    "userId",
    "scoreGiven",
    "scoreMaximum",
    "comment",
    "activityProgress",
    "gradingProgress",
    "timestamp",
    "submission",
}
ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
# canvas-lms app/controllers/lti/ims/scores_controller.rb: ACCEPT_GIVEN_SCORE_TYPES
CANVAS_RECORDS_SCORE = {"FullyGraded", "PendingManual"}


def ags_errors(score: dict[str, Any]) -> list[str]:
    """The Score object: required keys, enums, ISO timestamp, scoreGiven with scoreMaximum, no other keys."""
    errors = [f"missing {k}" for k in ("userId", "activityProgress", "gradingProgress", "timestamp") if k not in score]
    if set(score) - AGS_KEYS:
        errors.append(f"not Score keys: {sorted(set(score) - AGS_KEYS)}")
    if score.get("activityProgress") not in ACTIVITY:
        errors.append(f"activityProgress {score.get('activityProgress')!r}")
    if score.get("gradingProgress") not in GRADING:
        errors.append(f"gradingProgress {score.get('gradingProgress')!r}")
    if "scoreGiven" in score and "scoreMaximum" not in score:
        errors.append("scoreGiven without scoreMaximum")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", str(score.get("timestamp", ""))):
        errors.append(f"timestamp {score.get('timestamp')!r} is not ISO 8601")
    return errors
