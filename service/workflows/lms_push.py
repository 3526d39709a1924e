"""Push a class's approved grades straight into Canvas or Moodle with the owner's own token (or show the requests).

The payloads are the exports' (``service.lms``); this adds the owner's stored token, the request
(``service.lms.requests``), the network policy of every outbound call (``service.lti.http``) and
reading the platform's answer. A dry run returns the exact request with the token redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from service.errors import CallerError
from service.lms.requests import LmsRequest
from service.lti.http import acceptable_url
from service.lti.tool import PlatformError
from service.persistence.stores import Store

Kind = Literal["canvas", "moodle"]


class NotConnectedError(CallerError):
    """The owner has stored no token for this LMS."""

    status_code = 409
    code = "lms_not_connected"


def connect(store: Store, owner: str, kind: Kind, *, base_url: str, token: str, allow_private: bool) -> None:
    """Store the owner's token for ``kind`` (https base URL unless private networks are allowed)."""
    if not acceptable_url(base_url, allow_private=allow_private):
        raise CallerError(f"base_url must be the LMS's https address, got {base_url!r}")
    if not token.strip():
        raise CallerError("token is empty")
    store.save_connection(owner, kind, base_url.rstrip("/"), token.strip())


def credentials(store: Store, owner: str, kind: Kind) -> tuple[str, str]:
    """(base URL, token) or a 409 saying how to connect."""
    found = store.connection(owner, kind)
    if found is None:
        raise NotConnectedError(f"no {kind} token stored: PUT /v1/lms/connections/{kind} with base_url and token first")
    return found


@dataclass(frozen=True)
class Pushed:
    """What the LMS answered."""

    status: int
    answer: Any


def send(http: httpx.Client, request: LmsRequest, kind: Kind) -> Pushed:
    """Send and read the answer: Canvas by HTTP status; Moodle by its ``exception`` body (it answers 200)."""
    try:
        body = urlencode(request.form).encode() if request.form is not None else None
        response = http.request(request.method, request.url, headers=request.headers, json=request.json, content=body)
    except httpx.HTTPError as exc:
        raise PlatformError(f"the {kind} server did not answer ({exc.__class__.__name__})") from exc
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text[:500]
    if response.status_code >= 500:
        raise PlatformError(f"the {kind} server failed ({response.status_code})")
    if response.status_code >= 400:
        raise CallerError(f"{kind} refused the grades ({response.status_code}): {str(answer)[:300]}")
    if kind == "moodle" and isinstance(answer, dict) and "exception" in answer:
        raise CallerError(f"Moodle refused the grades ({answer.get('errorcode')}): {answer.get('message')}")
    return Pushed(response.status_code, answer)
