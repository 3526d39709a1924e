"""Uploads read with a size cap before anything parses them (scheme files, essay files)."""

from __future__ import annotations

from fastapi import Request

from service.errors import UploadTooLargeError


async def read_capped(request: Request, limit: int, *, what: str, setting: str) -> bytes:
    """The raw body, or ``UploadTooLargeError`` as soon as it passes ``limit`` bytes (chunked or not)."""
    message = f"{what} may be at most {limit:,} bytes ({setting})"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLargeError(message)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(message)
        chunks.append(chunk)
    return b"".join(chunks)
