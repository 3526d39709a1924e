"""POST /v1/essays/extract-set: the essays of a class set sent as one .zip or one CSV.

The teacher page sends single .txt/.docx files to /v1/essays/extract one by one; a .zip (of .txt
and .docx files) or a CSV with ``student`` and ``essay`` columns comes here, is unpacked with the
standard library under size caps, and goes back as text, so the page can queue it as a batch.
"""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
import zlib
from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from pydantic import BaseModel

from schemas.text import unstorable_problem
from service.api.deps import Principal, State
from service.api.docx import docx_text
from service.api.uploads import read_capped
from service.errors import CallerError, UploadTooLargeError

router = APIRouter(prefix="/v1/essays", tags=["markings"])
_ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
_CSV_TYPES = ("text/csv", "application/csv", "application/vnd.ms-excel")
_ID_COLUMNS = ("student", "id", "external_id", "name")
MAX_EXPANDED_BYTES = 256 * 1024 * 1024
"""All members of one zip together, decompressed: a small zip must not take minutes of CPU to refuse."""


class ExtractedEssay(BaseModel):
    """One essay of the set: its reference (file name or ``student`` cell) and its text."""

    external_id: str
    text: str


class SkippedFile(BaseModel):
    """A member of the set that holds no essay, and why."""

    name: str
    reason: str


class ExtractedSet(BaseModel):
    """The essays of a class set, in the order they were sent."""

    essays: list[ExtractedEssay]
    skipped: list[SkippedFile]


def _member_text(name: str, data: bytes) -> str:
    if name.lower().endswith(".docx"):
        return docx_text(data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CallerError("not UTF-8 text; save it as UTF-8 or as .docx") from None


def _unique(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 2
    while name in taken:
        name, n = f"{wanted} ({n})", n + 1
    taken.add(name)
    return name


def from_zip(data: bytes, *, max_files: int, max_file_bytes: int, max_chars: int) -> ExtractedSet:
    """The .txt and .docx files of a zip; anything else is listed as skipped.

    Sizes are capped while reading, never taken from the zip headers (the uploader writes those).
    """
    essays: list[ExtractedEssay] = []
    skipped: list[SkippedFile] = []
    taken: set[str] = set()
    budget = MAX_EXPANDED_BYTES
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            for info in members:
                path = PurePosixPath(info.filename)
                if path.name.startswith(".") or "__MACOSX" in path.parts:
                    continue
                if path.suffix.lower() not in (".txt", ".docx"):
                    skipped.append(SkippedFile(name=info.filename, reason="not a .txt or .docx file"))
                    continue
                if len(essays) >= max_files:
                    raise CallerError(f"the zip holds more than {max_files} essays (DRAFTMARK_MAX_BATCH_ITEMS)")
                with archive.open(info) as member:
                    raw = member.read(min(max_file_bytes, budget) + 1)
                budget -= len(raw)
                if budget < 0:
                    raise UploadTooLargeError(f"the zip expands to more than {MAX_EXPANDED_BYTES:,} bytes")
                if len(raw) > max_file_bytes:
                    raise UploadTooLargeError(
                        f"{info.filename} expands to more than {max_file_bytes:,} bytes (DRAFTMARK_MAX_UPLOAD_BYTES)"
                    )
                try:
                    text = _member_text(path.name, raw)
                except CallerError as exc:
                    skipped.append(SkippedFile(name=info.filename, reason=exc.message))
                    continue
                _keep(essays, skipped, taken, info.filename, path.stem, text, max_chars)
    # RuntimeError: an encrypted member, or an unsupported compression method (NotImplementedError).
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError) as exc:
        raise CallerError("the file is not a readable .zip archive") from exc
    return ExtractedSet(essays=essays, skipped=skipped)


def from_csv(data: bytes, *, max_files: int, max_chars: int) -> ExtractedSet:
    """One essay a row from a CSV with an ``essay`` column and a ``student`` (or ``id``) column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CallerError("the CSV is not UTF-8; save it as 'CSV UTF-8'") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "essay" not in columns:
        raise CallerError(f"the CSV needs an 'essay' column and a 'student' column; its columns are {columns}")
    id_column = next((c for c in _ID_COLUMNS if c in columns), None)
    essays: list[ExtractedEssay] = []
    skipped: list[SkippedFile] = []
    taken: set[str] = set()
    try:
        for number, row in enumerate(reader, start=2):
            cells = {(k or "").strip().lower(): (v or "") for k, v in row.items() if isinstance(v, str)}
            label = cells.get(id_column or "", "").strip() or f"row {number}"
            if len(essays) >= max_files:
                raise CallerError(f"the CSV holds more than {max_files} essays (DRAFTMARK_MAX_BATCH_ITEMS)")
            _keep(essays, skipped, taken, f"row {number}", label, cells.get("essay", ""), max_chars)
    except csv.Error as exc:
        raise CallerError(f"the CSV cannot be read: {exc}") from exc
    return ExtractedSet(essays=essays, skipped=skipped)


def _keep(
    essays: list[ExtractedEssay],
    skipped: list[SkippedFile],
    taken: set[str],
    where: str,
    label: str,
    text: str,
    max_chars: int,
) -> None:
    if not text.strip():
        skipped.append(SkippedFile(name=where, reason="no text"))
        return
    if len(text) > max_chars:
        skipped.append(
            SkippedFile(name=where, reason=f"longer than {max_chars:,} characters (DRAFTMARK_MAX_ESSAY_CHARS)")
        )
        return
    problem = unstorable_problem(text)
    if problem is not None:
        skipped.append(SkippedFile(name=where, reason=problem))
        return
    essays.append(ExtractedEssay(external_id=_unique(label[:200], taken), text=text))


@router.post("/extract-set", response_model=ExtractedSet)
async def extract_set(request: Request, state: State, principal: Principal) -> ExtractedSet:
    """The essays of a class set sent as a .zip of .txt/.docx files or a CSV (``student``, ``essay``)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _ZIP_TYPES + _CSV_TYPES:
        raise CallerError(f"send a .zip (application/zip) or a CSV (text/csv), not {content_type!r}")
    settings = state.settings
    data = await read_capped(request, settings.max_body_bytes, what="a class set", setting="DRAFTMARK_MAX_BODY_BYTES")
    if content_type in _ZIP_TYPES:
        return await asyncio.to_thread(
            from_zip,
            data,
            max_files=settings.max_batch_items,
            max_file_bytes=settings.max_upload_bytes,
            max_chars=settings.max_essay_chars,
        )
    return await asyncio.to_thread(
        from_csv, data, max_files=settings.max_batch_items, max_chars=settings.max_essay_chars
    )
