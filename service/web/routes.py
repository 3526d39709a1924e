"""Serve the teacher page and its static files (no CDN: everything is local)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from service.version import __version__

_HERE = Path(__file__).parent
_templates = Jinja2Templates(directory=str(_HERE / "templates"))

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Everything the page loads is served from here, so nothing else may run, load, frame it or be posted to."""

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def mount_web(app: FastAPI, *, auth_disabled: bool) -> None:
    """Add ``/teacher`` (the page) and ``/teacher/static`` to ``app``."""
    app.mount("/teacher/static", StaticFiles(directory=str(_HERE / "static")), name="teacher-static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/teacher")

    @app.get("/teacher", response_class=HTMLResponse, include_in_schema=False)
    async def teacher(request: Request) -> HTMLResponse:
        return _templates.TemplateResponse(
            request, "teacher.html", {"version": __version__, "auth_disabled": auth_disabled}, headers=PAGE_HEADERS
        )
