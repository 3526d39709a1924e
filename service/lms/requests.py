"""The exact HTTP requests that push a class's approved grades with a teacher's own LMS token.

Canvas: ``POST {base}/api/v1/courses/{course}/assignments/{assignment}/submissions/update_grades``
with ``Authorization: Bearer <token>`` and the JSON body of ``canvas.bulk_body`` (Canvas answers with
a Progress object). Moodle: ``POST {base}/webservice/rest/server.php`` with ``wstoken``,
``wsfunction=mod_assign_save_grades`` and ``moodlewsrestformat=json`` and the parameters
form-encoded the way Moodle's REST server reads nested arrays (``grades[0][userid]=42``);
Moodle answers 200 even for an error, with ``{"exception", "errorcode", "message"}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REDACTED = "***"


@dataclass(frozen=True)
class LmsRequest:
    """One request to an LMS; ``shown()`` is what a dry run prints (the token redacted)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: list[tuple[str, str]] | None = None
    secret_fields: tuple[str, ...] = ()

    def shown(self) -> dict[str, Any]:
        """The request as a dry run shows it: every token replaced by ``***``."""
        headers = {k: (f"Bearer {REDACTED}" if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        out: dict[str, Any] = {"method": self.method, "url": self.url, "headers": headers}
        if self.json is not None:
            out["json"] = self.json
        if self.form is not None:
            out["form"] = [[k, REDACTED if k in self.secret_fields else v] for k, v in self.form]
        return out


def form_pairs(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Moodle's REST encoding of nested parameters: ``a[0][b]=1``; booleans as 1/0."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in form_pairs(v, f"{prefix}[{k}]" if prefix else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in form_pairs(v, f"{prefix}[{i}]")]
    if isinstance(value, bool):
        return [(prefix, "1" if value else "0")]
    if isinstance(value, float) and value.is_integer():
        return [(prefix, str(int(value)))]
    return [(prefix, str(value))]


def canvas_push(base_url: str, token: str, *, course_id: str, assignment_id: str, body: dict[str, Any]) -> LmsRequest:
    """The Canvas bulk grade update for a class."""
    return LmsRequest(
        "POST",
        f"{base_url.rstrip('/')}/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions/update_grades",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        json=body,
    )


def moodle_push(base_url: str, token: str, params: dict[str, Any]) -> LmsRequest:
    """``mod_assign_save_grades`` through Moodle's REST server."""
    form = [("wstoken", token), ("wsfunction", "mod_assign_save_grades"), ("moodlewsrestformat", "json")]
    return LmsRequest(
        "POST",
        f"{base_url.rstrip('/')}/webservice/rest/server.php",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        form=form + form_pairs(params),
        secret_fields=("wstoken",),
    )
