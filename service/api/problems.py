"""RFC 9457 problem+json responses, request ids and body-size limits."""

from __future__ import annotations

import logging
import traceback
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import DraftmarkError, MarkingFailedError, ModelError

log = logging.getLogger("draftmark.api")
PROBLEM_TYPE = "https://github.com/draftmark/draftmark/blob/main/docs/errors.md#"


def request_id(request: Request) -> str:
    """The id given to this request by the middleware."""
    return str(request.scope.get("state", {}).get("request_id", ""))


def problem(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "request_id": request_id(request),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    502: "Model error",
    503: "Model unavailable",
    504: "Model timeout",
}


def _where(exc: BaseException) -> str:
    """The innermost frames as file:line: enough to find a bug, with no values from the request in it."""
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    return " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames)) or "?"


def log_unexpected(exc: BaseException, path: str, rid: str) -> None:
    """Log a bug without its message: messages quote their input (SQL parameters, essay text, model output)."""
    log.error("unhandled %s on %s (request %s) at %s", type(exc).__name__, path, rid, _where(exc))


def _internal_error(request: Request) -> JSONResponse:
    return problem(
        request,
        500,
        "internal_error",
        "Internal error",
        "an unexpected error occurred; quote the request_id when reporting it",
    )


def install_handlers(app: FastAPI) -> None:
    """Map every error to problem+json; nothing escapes as a bare 500."""

    @app.exception_handler(DraftmarkError)
    async def _draftmark(request: Request, exc: DraftmarkError) -> Response:
        headers: dict[str, str] = {}
        hint = exc.retry_hint
        if hint is not None:
            headers["Retry-After"] = str(max(1, round(hint)))
        if isinstance(exc, ModelError):
            # The code only: a model error's message can quote the model's output (the essay's words).
            attempts = f" after {exc.attempts} attempt(s)" if isinstance(exc, MarkingFailedError) else ""
            log.warning(
                "model error %s on %s%s (request %s)", exc.code, request.url.path, attempts, request_id(request)
            )
        status = exc.status_code
        return problem(request, status, exc.code, _TITLES.get(status, "Error"), exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item.get("loc", ()))
            errors.append(f"{where}: {item.get('msg', '')}")
        return problem(request, 422, "invalid_request", "Invalid input", "; ".join(errors[:20]), errors=errors[:100])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
            429: "rate_limited",
        }.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        return problem(
            request, exc.status_code, code, _TITLES.get(exc.status_code, "Error"), str(exc.detail), headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log_unexpected(exc, request.url.path, request_id(request))
        return _internal_error(request)


__all__ = ["install_handlers", "problem"]


class RequestContextMiddleware:
    """Pure ASGI: assigns a request id (or keeps a sane X-Request-ID) and enforces the body limit.

    It also answers unhandled errors itself. Starlette's outer error middleware re-raises after
    its handler has answered, and the server then logs the exception with its message: SQL
    parameters, essay text, a 10,000-frame traceback. Nothing is re-raised from here.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await self._send(scope, send, rid, _nul_in_url(Request(scope)))
            return
        raw_length = dict(scope["headers"]).get(b"content-length")
        if raw_length is not None and raw_length.isdigit() and int(raw_length) > self.max_body:
            await self._too_large(scope, send, rid, int(raw_length))
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # An HTTPException, so that FastAPI's body parsing passes it on as a 413
                    # instead of wrapping it in a 400 "error parsing the body" (chunked uploads).
                    raise _BodyTooLarge(self._limit_message(None))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if not started:
                await self._too_large(scope, send, rid)
        except Exception as exc:  # the last line of defence: logged without its message, never re-raised
            log_unexpected(exc, scope["path"], rid)
            if not started:
                await self._send(scope, send, rid, _internal_error(Request(scope)))

    def _limit_message(self, size: int | None) -> str:
        said, limit = (in_words(size) if size is not None else None), in_words(self.max_body)
        if said == limit:  # just over: the rounded sizes would read the same
            said, limit = f"{size:,} bytes", f"{self.max_body:,} bytes"
        sent = f"the upload is {said}" if said is not None else "the upload is larger than the limit"
        return (
            f"{sent}; the limit is {limit} (DRAFTMARK_MAX_BODY_BYTES): split a class set into "
            "smaller files, or send the essays as text"
        )

    async def _too_large(self, scope: Scope, send: Send, rid: str, size: int | None = None) -> None:
        response = problem(Request(scope), 413, "body_too_large", "Content too large", self._limit_message(size))
        await self._send(scope, send, rid, response)

    @staticmethod
    async def _send(scope: Scope, send: Send, rid: str, response: Response) -> None:
        response.headers["x-request-id"] = rid
        await response(scope, _empty_receive, send)


def _nul_in_url(request: Request) -> JSONResponse:
    return problem(
        request,
        422,
        "invalid_request",
        "Invalid input",
        "the URL contains a NUL character (%00); remove it from the path and query",
    )


def in_words(size: int) -> str:
    """A byte count as a person says it: 41.2 MB, 10 MB, 512 KB, 900 bytes."""
    for unit, scale in (("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


class _BodyTooLarge(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
