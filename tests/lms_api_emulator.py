"""Canvas's and Moodle's grade APIs on 127.0.0.1, refusing what the real ones refuse (tests/lms_rules.py).

- Canvas ``POST /api/v1/courses/:course/assignments/:assignment/submissions/update_grades``
  (submissions_api_controller.rb#bulk_update): a Bearer token, a JSON body of ``grade_data``; answers
  a Progress object; 401 for a bad token; 400 for what the rules refuse.
- Moodle ``POST /webservice/rest/server.php`` (webservice/rest/locallib.php): ``wstoken``,
  ``wsfunction``, ``moodlewsrestformat=json`` and the function's parameters form-encoded as nested
  arrays; every answer is 200, an error is ``{"exception", "errorcode", "message"}``; success of
  mod_assign_save_grades is ``null``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.api_support import free_port
from tests.lms_rules import canvas_bulk_errors, moodle_errors


def _number(text: str) -> Any:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return text


def decode_moodle_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``grades[0][userid]=42`` back into nested dicts and lists (what Moodle's REST server does)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = _number(value)
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


@dataclass
class LmsApis:
    """Both APIs; ``canvas_grades`` and ``moodle_grades`` record what was accepted."""

    canvas_token: str = "canvas-secret-token"
    moodle_token: str = "moodle-secret-token"
    rubric: dict[str, int] | None = None
    port: int = field(default_factory=free_port)
    canvas_grades: dict[str, Any] = field(default_factory=dict)
    moodle_grades: list[dict[str, Any]] = field(default_factory=list)
    seen_tokens: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/api/v1/courses/{course}/assignments/{assignment}/submissions/update_grades")
        async def canvas_bulk(course: str, assignment: str, request: Request) -> Any:
            auth = request.headers.get("authorization", "")
            self.seen_tokens.append(auth)
            if auth != f"Bearer {self.canvas_token}":
                return JSONResponse({"errors": [{"message": "Invalid access token."}]}, status_code=401)
            body = await request.json()
            errors = canvas_bulk_errors(body, self.rubric)
            if errors:
                return JSONResponse({"errors": errors}, status_code=400)
            self.canvas_grades.update(body["grade_data"])
            return {"id": 1, "workflow_state": "queued", "url": f"{self.url}/api/v1/progress/1"}

        @app.post("/webservice/rest/server.php")
        async def moodle_rest(request: Request) -> Any:
            pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
            form = dict(pairs)
            if form.get("wstoken") != self.moodle_token:
                return {"exception": "moodle_exception", "errorcode": "invalidtoken", "message": "Invalid token"}
            if form.get("wsfunction") != "mod_assign_save_grades" or form.get("moodlewsrestformat") != "json":
                return {"exception": "moodle_exception", "errorcode": "invalidrecord", "message": "unknown function"}
            params = decode_moodle_form(
                [(k, v) for k, v in pairs if k not in ("wstoken", "wsfunction", "moodlewsrestformat")]
            )
            errors = moodle_errors(params)
            if errors:
                return {
                    "exception": "invalid_parameter_exception",
                    "errorcode": "invalidparameter",
                    "message": errors[0],
                }
            self.moodle_grades.extend(params["grades"])
            return None

        return app


class LmsApiServer:
    """The emulator served by uvicorn in a thread."""

    def __init__(self, apis: LmsApis) -> None:
        self.apis = apis
        self.server = uvicorn.Server(uvicorn.Config(apis.app(), host="127.0.0.1", port=apis.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LmsApis:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("LMS API emulator did not start")
            time.sleep(0.02)
        return self.apis

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
