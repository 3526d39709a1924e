"""Marked scripts from files: JSONL (the eval dataset format) or CSV; every error names its line."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from pydantic import ValidationError

from evals.dataset import EvalItem
from schemas.scheme import MarkScheme
from service.errors import CallerError
from service.validation import format_validation_error

MAX_ROWS = 5000
_ID_COLUMNS = ("id", "external_id", "student")


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
    if "\x00" in text:
        raise CallerError(f"{where}: the essay contains a NUL character; remove it")
    if not text.strip():
        raise CallerError(f"{where}: the essay is empty")
    return text


def parse_jsonl(data: str, scheme: MarkScheme) -> list[MarkedScript]:
    """Eval-dataset lines (``id``, ``essay``, ``scheme_id``, ``human``); the first human's marks are used."""
    scripts: list[MarkedScript] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            item = EvalItem.model_validate(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise CallerError(f"{where}: not a JSON object ({getattr(exc, 'msg', 'nested too deeply')})") from None
        except ValidationError as exc:
            raise CallerError(f"{where}: " + "; ".join(format_validation_error(exc))) from None
        if item.scheme_id != scheme.id:
            raise CallerError(f"{where}: scheme_id is {item.scheme_id!r}; this import is for {scheme.id!r}")
        _check_marks(item.human, scheme, where)
        scripts.append(MarkedScript(_check_essay(item.essay, where), dict(item.human), item.id))
        if len(scripts) > MAX_ROWS:
            raise CallerError(f"an import may hold at most {MAX_ROWS} scripts; split the file")
    return scripts


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
    scripts: list[MarkedScript] = []
    try:
        for row in reader:
            where = f"line {reader.line_num}"
            values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            marks: dict[str, int] = {}
            for ao_id in ids:
                raw = values.get("mark" if single else ao_id, "")
                if not raw.lstrip("-").isdigit() or len(raw) > 4:
                    raise CallerError(f"{where}: {ao_id} mark {raw!r} is not a whole number")
                marks[ao_id] = int(raw)
            _check_marks(marks, scheme, where)
            external = values.get(id_column, "") if id_column else ""
            scripts.append(MarkedScript(_check_essay(row.get("essay") or "", where), marks, external or None))
            if len(scripts) > MAX_ROWS:
                raise CallerError(f"an import may hold at most {MAX_ROWS} scripts; split the file")
    except csv.Error as exc:
        raise CallerError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    return scripts


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
