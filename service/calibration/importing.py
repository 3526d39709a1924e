"""Marked scripts from files: JSONL (the eval dataset format) or CSV; every error names its line."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.marked import EvalItem
from schemas.scheme import MarkScheme
from schemas.text import identifier_problem, unstorable_problem
from service.errors import CallerError
from service.validation import format_validation_error

MAX_ROWS = 5000
_ID_COLUMNS = ("id", "external_id", "student")
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,4}")
"""ASCII digits only: ``str.isdigit`` also accepts '²' and other digits ``int`` refuses."""


@dataclass(frozen=True)
class MarkedScript:
    """One script and the teacher's marks per objective."""

    essay: str
    marks: dict[str, int]
    external_id: str | None


def _check_marks(marks: dict[str, int], scheme: MarkScheme, where: str) -> None:
    expected = list(scheme.objective_ids)
    if sorted(marks) != sorted(expected):
        raise CallerError(f"{where}: give a mark for exactly these objectives: {expected}; got {sorted(marks)}")
    for ao_id, mark in marks.items():
        ao = scheme.objective(ao_id)
        if not ao.min_marks <= mark <= ao.max_marks:
            raise CallerError(f"{where}: {ao_id} mark {mark} is outside {ao.min_marks}-{ao.max_marks}")


def _check_essay(essay: str, where: str) -> str:
    text = essay.replace("\r\n", "\n").replace("\r", "\n")
    problem = unstorable_problem(text)
    if problem is not None:
        raise CallerError(f"{where}: the essay {problem}")
    if not text.strip():
        raise CallerError(f"{where}: the essay is empty")
    return text


def _check_id(value: str, where: str, column: str) -> str:
    problem = identifier_problem(value)
    if problem is not None:
        raise CallerError(f"{where}: the {column} {problem}")
    return value


def _no_duplicates(scripts: list[tuple[str, MarkedScript]]) -> list[MarkedScript]:
    """One script per text: a repeat with the same marks is dropped; with other marks it is an error naming both."""
    seen: dict[str, tuple[str, MarkedScript]] = {}
    kept: list[MarkedScript] = []
    for where, script in scripts:
        first = seen.get(script.essay)
        if first is None:
            seen[script.essay] = (where, script)
            kept.append(script)
        elif first[1].marks != script.marks:
            raise CallerError(
                f"{first[0]} and {where} hold the same essay with different marks "
                f"({first[1].marks} and {script.marks}); keep one of them"
            )
    return kept


def parse_jsonl(data: str, scheme: MarkScheme) -> list[MarkedScript]:
    """Eval-dataset lines (``id``, ``essay``, ``scheme_id``, ``human``); the first human's marks are used."""
    scripts: list[tuple[str, MarkedScript]] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            item = EvalItem.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CallerError(f"{where}: not a JSON object ({exc.msg})") from None
        except RecursionError:
            raise CallerError(f"{where}: not a JSON object (nested too deeply)") from None
        except ValueError as exc:  # an integer of more than 4,300 digits (Python's int limit)
            raise CallerError(f"{where}: not a JSON object ({exc})") from None
        except ValidationError as exc:
            raise CallerError(f"{where}: " + "; ".join(format_validation_error(exc))) from None
        if item.scheme_id != scheme.id:
            raise CallerError(f"{where}: scheme_id is {item.scheme_id!r}; this import is for {scheme.id!r}")
        _check_marks(item.human, scheme, where)
        external = _check_id(item.id, where, "id")
        scripts.append((where, MarkedScript(_check_essay(item.essay, where), dict(item.human), external)))
        if len(scripts) > MAX_ROWS:
            raise CallerError(f"an import may hold at most {MAX_ROWS} scripts; split the file")
    return _no_duplicates(scripts)


def parse_csv(data: str, scheme: MarkScheme) -> list[MarkedScript]:
    """A header row with ``essay``, one column per objective id (or ``mark`` for one objective), optional ``id``."""
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip() for h in reader.fieldnames or []]
    if "essay" not in header:
        raise CallerError(f"line 1: the CSV needs an 'essay' column; found {header}")
    ids = list(scheme.objective_ids)
    single = len(ids) == 1 and "mark" in header and ids[0] not in header
    missing = [] if single else [i for i in ids if i not in header]
    if missing:
        raise CallerError(f"line 1: the CSV needs a column for each objective {ids} (missing {missing})")
    id_column = next((c for c in _ID_COLUMNS if c in header), None)
    scripts: list[tuple[str, MarkedScript]] = []
    try:
        for row in reader:
            where = f"line {reader.line_num}"
            values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            marks: dict[str, int] = {}
            for ao_id in ids:
                raw = values.get("mark" if single else ao_id, "")
                if _WHOLE_NUMBER.fullmatch(raw) is None:
                    raise CallerError(f"{where}: {ao_id} mark {raw!r} is not a whole number")
                marks[ao_id] = int(raw)
            _check_marks(marks, scheme, where)
            external = values.get(id_column, "") if id_column else ""
            if external:
                _check_id(external, where, f"'{id_column}'")
            essay = _check_essay(row.get("essay") or "", where)
            scripts.append((where, MarkedScript(essay, marks, external or None)))
            if len(scripts) > MAX_ROWS:
                raise CallerError(f"an import may hold at most {MAX_ROWS} scripts; split the file")
    except csv.Error as exc:
        raise CallerError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    return _no_duplicates(scripts)


def parse_marked_scripts(data: bytes, content_type: str, scheme: MarkScheme) -> list[MarkedScript]:
    """Scripts from an upload: ``text/csv`` or JSONL (``application/x-ndjson``, ``application/jsonl``)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CallerError("the file is not UTF-8 text; save it as UTF-8") from None
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        scripts = parse_csv(text, scheme)
    elif kind in ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/x-jsonlines"):
        scripts = parse_jsonl(text, scheme)
    else:
        raise CallerError(f"send text/csv or application/x-ndjson (JSONL), not {kind or 'no content type'!r}")
    if not scripts:
        raise CallerError("the file holds no marked scripts")
    return scripts
