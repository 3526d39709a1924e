"""POST /v1/essays/extract-set: the essays of a class set sent as one .zip or one CSV.

The teacher page sends single .txt/.docx files to /v1/essays/extract one by one; a .zip (of .txt
and .docx files) or a CSV with ``student`` and ``essay`` columns comes here, is unpacked with the
standard library under size caps, and goes back as text, so the page can queue it as a batch.
"""

from __future__ import annotations

import asyncio
import csv
import io
import struct
import zipfile
import zlib
from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from schemas.class_set import MAX_SKIPPED_NAME_CHARS, MAX_SKIPPED_REASON_CHARS, SkippedFile
from schemas.text import plain_label, unstorable_problem
from service.api.deps import Principal, State
from service.api.uploads import read_capped
from service.errors import CallerError, PayloadTooLargeError, UploadTooLargeError
from service.workflows.docx import docx_text

router = APIRouter(prefix="/v1/essays", tags=["markings"])
_ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
_CSV_TYPES = ("text/csv", "application/csv", "application/vnd.ms-excel")
_ID_COLUMNS = ("student", "id", "external_id", "name")
MAX_EXPANDED_BYTES = 256 * 1024 * 1024
"""All members of one zip together, decompressed: a small zip must not take minutes of CPU to refuse."""
MAX_OTHER_ENTRIES = 1000
"""Rows or files without an essay (empty rows, images, unreadable files) a set may hold beside its essays.

Without a bound, 15 MB of empty CSV rows (5 million) took 3 GB of memory and two minutes, and the
answer listed every one. A set may hold ``DRAFTMARK_MAX_BATCH_ITEMS`` essays and this many others;
past that the whole set is refused with 413 before more is read."""
SKIPPED_LISTED = 20
"""Skipped entries named in the answer; the rest are counted (``skipped_count``)."""


class ExtractedEssay(BaseModel):
    """One essay of the set: its reference (file name or ``student`` cell) and its text."""

    external_id: str
    text: str


class ExtractedSet(BaseModel):
    """The essays of a class set, in the order they were sent."""

    essays: list[ExtractedEssay]
    skipped: list[SkippedFile] = Field(description=f"The first {SKIPPED_LISTED} entries that hold no essay, and why.")
    skipped_count: int = Field(description="How many entries hold no essay (``skipped`` lists the first few).")


class _Collector:
    """Essays and skips as they are read, within the set's bounds."""

    def __init__(self, *, max_files: int, max_chars: int, what: str) -> None:
        self.essays: list[ExtractedEssay] = []
        self.skipped: list[SkippedFile] = []
        self.skipped_count = 0
        self._taken: set[str] = set()
        self._max_files, self._max_chars, self._what = max_files, max_chars, what

    def skip(self, where: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < SKIPPED_LISTED:
            # Member names come from the uploader's zip: made printable, so the page can store them with the set.
            self.skipped.append(
                SkippedFile(
                    name=plain_label(where, max_length=MAX_SKIPPED_NAME_CHARS) or "(no name)",
                    reason=plain_label(reason, max_length=MAX_SKIPPED_REASON_CHARS) or "unreadable",
                )
            )
        if self.skipped_count > MAX_OTHER_ENTRIES:
            raise PayloadTooLargeError(
                f"the {self._what} holds more than {MAX_OTHER_ENTRIES:,} entries without an essay "
                f"(the first: {self.skipped[0].name}: {self.skipped[0].reason}); remove empty rows or other files "
                "and send it again"
            )

    def keep(self, where: str, label: str, text: str) -> None:
        if not text.strip():
            self.skip(where, "no text")
            return
        if len(text) > self._max_chars:
            self.skip(where, f"longer than {self._max_chars:,} characters (DRAFTMARK_MAX_ESSAY_CHARS)")
            return
        problem = unstorable_problem(text)
        if problem is not None:
            self.skip(where, problem)
            return
        if len(self.essays) >= self._max_files:
            raise CallerError(f"the {self._what} holds more than {self._max_files} essays (DRAFTMARK_MAX_BATCH_ITEMS)")
        # Labels come from file names and cells: made printable here, so the set can be queued as returned.
        name = plain_label(label) or where
        self.essays.append(ExtractedEssay(external_id=_unique(name[:190], self._taken), text=text))

    def result(self) -> ExtractedSet:
        return ExtractedSet(essays=self.essays, skipped=self.skipped, skipped_count=self.skipped_count)


def _zip_entry_count(data: bytes) -> int | None:
    """Entries the zip's end-of-central-directory record declares (None: no record, or a zip64 marker).

    Read before ``zipfile`` parses the directory, so a zip of a million empty files is refused
    without building a million ``ZipInfo`` objects.
    """
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    (total,) = struct.unpack_from("<H", data, at + 10)
    return None if total == 0xFFFF else int(total)  # zip64 keeps the real count elsewhere: counted after parsing


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
    """The .txt and .docx files of a zip; anything else is counted as skipped.

    Sizes are capped while reading, never taken from the zip headers (the uploader writes those);
    the number of entries is bounded before any is read.
    """
    found = _Collector(max_files=max_files, max_chars=max_chars, what="zip")
    limit = max_files + MAX_OTHER_ENTRIES
    declared = _zip_entry_count(data)
    if declared is not None and declared > limit:
        raise PayloadTooLargeError(
            f"the zip holds {declared:,} entries; a class set may hold at most {limit:,} "
            f"({max_files:,} essays, DRAFTMARK_MAX_BATCH_ITEMS, and {MAX_OTHER_ENTRIES:,} other files)"
        )
    budget = MAX_EXPANDED_BYTES
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if len(members) > limit:
                raise PayloadTooLargeError(
                    f"the zip holds {len(members):,} files; a class set may hold at most {limit:,}"
                )
            for info in members:
                path = PurePosixPath(info.filename)
                if path.name.startswith(".") or "__MACOSX" in path.parts:
                    continue
                if path.suffix.lower() not in (".txt", ".docx"):
                    found.skip(info.filename, "not a .txt or .docx file")
                    continue
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
                    found.skip(info.filename, exc.message)
                    continue
                found.keep(info.filename, path.stem, text)
    # RuntimeError: an encrypted member, or an unsupported compression method (NotImplementedError).
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError) as exc:
        raise CallerError("the file is not a readable .zip archive") from exc
    return found.result()


def from_csv(data: bytes, *, max_files: int, max_chars: int) -> ExtractedSet:
    """One essay a row from a CSV with an ``essay`` column and a ``student`` (or ``id``) column.

    Read a row at a time (decoded as it goes), and refused with 413 as soon as it holds more rows
    without an essay than ``MAX_OTHER_ENTRIES``.
    """
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    found = _Collector(max_files=max_files, max_chars=max_chars, what="CSV")
    number = 1
    try:
        reader = csv.DictReader(stream)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "essay" not in columns:
            raise CallerError(f"the CSV needs an 'essay' column and a 'student' column; its columns are {columns}")
        id_column = next((c for c in _ID_COLUMNS if c in columns), None)
        for number, row in enumerate(reader, start=2):
            cells = {(k or "").strip().lower(): (v or "") for k, v in row.items() if isinstance(v, str)}
            label = cells.get(id_column or "", "").strip() or f"row {number}"
            found.keep(f"row {number}", label, cells.get("essay", ""))
    except csv.Error as exc:
        raise CallerError(f"the CSV cannot be read: {exc}") from exc
    except UnicodeDecodeError:
        raise CallerError(f"the CSV is not UTF-8 (after row {number}); save it as 'CSV UTF-8'") from None
    return found.result()


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
