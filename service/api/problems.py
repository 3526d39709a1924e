"""RFC 9457 problem+json responses, request ids and body-size limits."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import DraftmarkError, ModelError

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


def install_handlers(app: FastAPI) -> None:
    """Map every error to problem+json; nothing escapes as a bare 500."""

    @app.exception_handler(DraftmarkError)
    async def _draftmark(request: Request, exc: DraftmarkError) -> Response:
        headers: dict[str, str] = {}
        if isinstance(exc, ModelError):
            if exc.retry_after is not None:
                headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            log.warning("model error %s on %s: %s", exc.code, request.url.path, exc.message)
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
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 429: "rate_limited"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(exc.headers or {})
        return problem(
            request, exc.status_code, code, _TITLES.get(exc.status_code, "Error"), str(exc.detail), headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s (request %s)", request.url.path, request_id(request), exc_info=exc)
        return problem(
            request,
            500,
            "internal_error",
            "Internal error",
            "an unexpected error occurred; quote the request_id when reporting it",
        )


__all__ = ["install_handlers", "problem"]


class RequestContextMiddleware:
    """Pure ASGI: assigns a request id (or keeps a sane X-Request-ID) and enforces the body limit."""

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
        raw_length = dict(scope["headers"]).get(b"content-length")
        if raw_length is not None and raw_length.isdigit() and int(raw_length) > self.max_body:
            await self._too_large(scope, send, rid)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            await self._too_large(scope, send, rid)

    async def _too_large(self, scope: Scope, send: Send, rid: str) -> None:
        request = Request(scope)
        response = problem(
            request,
            413,
            "body_too_large",
            "Content too large",
            f"request bodies are limited to {self.max_body:,} bytes (DRAFTMARK_MAX_BODY_BYTES)",
        )
        response.headers["x-request-id"] = rid
        await response(scope, _empty_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
