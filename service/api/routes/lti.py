"""LTI 1.3: the tool's JWKS, OIDC login and launch (browser-facing), platform registrations and grade passback.

``/lti/*`` are what a platform is configured with (docs/LMS.md); ``/v1/lti/*`` are API calls
with a key, like the rest of ``/v1``.
"""

from __future__ import annotations

import asyncio
import html
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from schemas.lti import Registration
from service.api.deps import AppState, OwnedBatch, Principal, State
from service.errors import NotFoundError
from service.lti.http import shared_client
from service.lti.tool import SCORE_SCOPE, LaunchRefusedError, PlatformKeys
from service.persistence.stores import Link
from service.workflows import lti

router = APIRouter(tags=["lti"])


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _client(state: AppState) -> tuple[httpx.Client, PlatformKeys]:
    return shared_client(allow_private=state.settings.lti_allow_private)


@router.get("/lti/jwks")
async def tool_jwks(state: State) -> dict[str, Any]:
    """The tool's public keys (paste this URL into the platform's registration)."""
    return await asyncio.to_thread(lti.jwks, state.store)


async def _login(request: Request, state: State) -> RedirectResponse:
    params = await _params(request)
    redirect_uri = str(request.url_for("lti_launch"))
    url = await asyncio.to_thread(lti.start_login, state.store, params, redirect_uri=redirect_uri)
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


_MAX_FORM = 64 * 1024


async def _params(request: Request) -> dict[str, str]:
    """The login/launch parameters: the query (GET) or an urlencoded form (POST), first value of each."""
    if request.method != "POST":
        return dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise LaunchRefusedError("LTI messages are posted as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise LaunchRefusedError("the LTI message is larger than 64 KB")
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise LaunchRefusedError("the LTI message is not a valid form") from exc
    return {k: v[0] for k, v in pairs.items()}


@router.get("/lti/login", include_in_schema=False)
async def login_get(request: Request, state: State) -> RedirectResponse:
    """OIDC third-party initiated login (GET form)."""
    return await _login(request, state)


@router.post("/lti/login", include_in_schema=False)
async def login_post(request: Request, state: State) -> RedirectResponse:
    """OIDC third-party initiated login (POST form)."""
    return await _login(request, state)


@router.post("/lti/launch", name="lti_launch", include_in_schema=False, response_class=HTMLResponse)
async def launch(request: Request, state: State) -> HTMLResponse:
    """Verify the launch; an instructor is signed in to the teacher page, a learner sees their released feedback."""
    form = await _params(request)
    if not form.get("id_token") or not form.get("state"):
        raise LaunchRefusedError("the launch has no id_token or no state")
    done = await asyncio.to_thread(
        lti.complete_launch, state.store, _client(state)[1], id_token=form["id_token"], state=form["state"]
    )
    if done.launch.message_type == "LtiDeepLinkingRequest":
        ticket = await asyncio.to_thread(lti.deep_link_ticket, state.store, done)
        schemes = await asyncio.to_thread(state.store.list_schemes, owner=done.platform.owner)
        return HTMLResponse(_picker_page(ticket, [r.scheme for r in schemes]), headers=_NO_STORE)
    if done.session_key is not None:
        link_id = done.link.id if done.link else ""
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Signing in to draftmark</title>"
            "<script type='module' src='/teacher/static/lti-signin.js'></script></head>"
            f"<body data-key='{html.escape(done.session_key)}' data-link='{html.escape(link_id)}'"
            " data-next='/teacher#/batches'>"
            "<p>Signing you in to draftmark…</p></body></html>"
        )
        return HTMLResponse(page, headers=_NO_STORE)
    views = await asyncio.to_thread(
        lti.released_for, state.store, done.platform.owner, done.launch.sub, label=state.settings.student_label
    )
    return HTMLResponse(_learner_page(done.launch.name, views), headers=_NO_STORE)


def _picker_page(ticket: str, schemes: list[Any]) -> str:
    options = "".join(
        f"<option value='{html.escape(f'{x.id}@{x.version}')}'>{html.escape(x.title)} ({x.total_marks} marks)</option>"
        for x in schemes
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Add a draftmark assignment</title></head>"
        "<body><h1>Add a draftmark assignment</h1>"
        "<form method='post' action='/lti/deep-link'>"
        f"<input type='hidden' name='ticket' value='{html.escape(ticket)}'>"
        f"<label for='scheme'>Mark scheme</label> <select id='scheme' name='scheme'>{options}</select> "
        "<label for='title'>Title in the course</label> <input id='title' name='title' maxlength='200'> "
        "<button type='submit' id='create'>Create the assignment</button></form></body></html>"
    )


@router.post("/lti/deep-link", include_in_schema=False, response_class=HTMLResponse)
async def deep_link(request: Request, state: State) -> HTMLResponse:
    """The picker's answer: post a signed LtiDeepLinkingResponse back to the platform."""
    form = await _params(request)
    if not form.get("ticket") or not form.get("scheme"):
        raise LaunchRefusedError("the deep linking form has no ticket or no scheme")
    answer = await asyncio.to_thread(
        lti.finish_deep_link,
        state.store,
        form["ticket"],
        scheme_ref=form["scheme"],
        title=form.get("title", "")[:200],
        launch_url=str(request.url_for("lti_launch")),
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Returning to the course</title>"
        "<script type='module' src='/teacher/static/lti-autopost.js'></script></head><body>"
        f"<form method='post' action='{html.escape(answer.return_url)}'>"
        f"<input type='hidden' name='JWT' value='{html.escape(answer.jwt)}'>"
        "<button type='submit'>Return to the course</button></form></body></html>"
    )
    return HTMLResponse(page, headers=_NO_STORE)


def _learner_page(name: str, views: list[Any]) -> str:
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Your feedback</title></head><body>"]
    parts.append(f"<h1>Your feedback{', ' + html.escape(name) if name else ''}</h1>")
    if not views:
        parts.append("<p id='none'>Your teacher has not released any feedback yet.</p>")
    for view in views:
        parts.append(f"<section class='released'><h2>{view.total} / {view.max_total}</h2><ul>")
        for m in view.marks:
            comment = f": {html.escape(m.comment)}" if m.comment else ""
            parts.append(f"<li>{html.escape(m.ao_name)}: {m.mark} / {m.max_marks}{comment}</li>")
        parts.append("</ul>")
        parts.append(f"<p class='comment'>{html.escape(view.comment()).replace(chr(10), '<br>')}</p></section>")
    parts.append("</body></html>")
    return "".join(parts)


class PlatformCreate(BaseModel):
    """An LTI 1.3 platform registration (the values the LMS shows when you add the tool)."""

    issuer: str = Field(min_length=1, max_length=500)
    client_id: str = Field(min_length=1, max_length=255)
    auth_url: str = Field(min_length=1, max_length=1000, description="OIDC authentication request URL")
    token_url: str = Field(min_length=1, max_length=1000, description="OAuth2 access token URL")
    jwks_url: str = Field(min_length=1, max_length=1000, description="The platform's public keyset URL")
    deployment_ids: list[str] = Field(min_length=1, max_length=50)


class PlatformPublic(PlatformCreate):
    """A registration as stored."""

    id: str


@router.post("/v1/lti/platforms", status_code=201)
async def register_platform(body: PlatformCreate, state: State, principal: Principal) -> PlatformPublic:
    """Register an LMS for the caller: its launches sign teachers in as the caller."""
    reg = Registration(**body.model_dump())
    p = await asyncio.to_thread(
        lti.register, state.store, principal, reg, allow_private=state.settings.lti_allow_private
    )
    return PlatformPublic(id=p.id, **body.model_dump() | {"deployment_ids": p.deployment_ids})


class LinkPublic(BaseModel):
    """An LMS assignment draftmark was launched from: where its grades go."""

    id: str
    platform_id: str
    title: str
    context_id: str
    resource_link_id: str
    lineitem: str | None
    scheme_ref: str | None
    can_send_scores: bool


@router.get("/v1/lti/links")
async def list_links(state: State, principal: Principal) -> list[LinkPublic]:
    """The LMS assignments launched from the caller's platforms (most recent first)."""
    links = await asyncio.to_thread(state.store.links_for, principal)
    return [
        LinkPublic(
            id=k.id,
            platform_id=k.platform_id,
            title=k.title,
            context_id=k.context_id,
            resource_link_id=k.resource_link_id,
            lineitem=k.lineitem,
            scheme_ref=k.scheme_ref,
            can_send_scores=bool(k.lineitem) and SCORE_SCOPE in k.ags_scopes,
        )
        for k in links
    ]


class MemberPublic(BaseModel):
    """A learner on the course roster: their LMS user id is the id their script needs in a class set."""

    user_id: str
    name: str


async def _owned_link(state: State, principal: str, link_id: str) -> Link:
    link = await asyncio.to_thread(state.store.link, link_id)
    platform = await asyncio.to_thread(state.store.platform, link.platform_id)
    if not state.settings.auth_disabled and platform.owner != principal:
        raise NotFoundError(f"no LTI link with id {link_id!r}")
    return link


@router.get("/v1/lti/links/{link_id}/members")
async def list_members(link_id: str, state: State, principal: Principal) -> list[MemberPublic]:
    """The course's active learners, from the LMS roster (NRPS): name each script's student."""
    link = await _owned_link(state, principal, link_id)
    members = await asyncio.to_thread(lti.roster, state.store, _client(state)[0], link)
    return [MemberPublic(user_id=m.user_id, name=m.name) for m in members]


class RosterMatchPublic(BaseModel):
    """A script and its learner: matched by LMS user id, by name (rename it to use the id), or not found."""

    external_id: str
    user_id: str | None
    name: str | None
    matched_by: Literal["id", "name"] | None


@router.get("/v1/lti/links/{link_id}/roster-match")
async def roster_match(
    link_id: str,
    batch: OwnedBatch,
    state: State,
    principal: Principal,
    batch_id: Annotated[str, Query(description="The class set to match against the course roster")],
) -> list[RosterMatchPublic]:
    """Which learner each script of a class set belongs to (by LMS user id, or by its name)."""
    link = await _owned_link(state, principal, link_id)
    members = await asyncio.to_thread(lti.roster, state.store, _client(state)[0], link)
    matches = lti.match_roster([i.external_id for i in batch.items], members)
    return [RosterMatchPublic(**vars(m)) for m in matches]


class SentPublic(BaseModel):
    """One student's score: queued, sending, sent, already there (the platform holds it), held back, failed."""

    user_id: str
    outcome: str
    detail: str = ""


def _sent(sent: list[lti.Sent]) -> list[SentPublic]:
    return [SentPublic(user_id=s.user_id, outcome=s.outcome, detail=s.detail) for s in sent]


@router.post("/v1/lti/links/{link_id}/scores", status_code=202)
async def send_scores(
    link_id: str,
    batch: OwnedBatch,
    state: State,
    principal: Principal,
    batch_id: Annotated[str, Query(description="The class set whose approved marks are sent")],
) -> list[SentPublic]:
    """Queue a class set's approved marks for the LMS line item of ``link_id`` (drafts are held back).

    Delivery runs in the background with backoff; ``GET`` the same URL for each student's state.
    """
    link = await _owned_link(state, principal, link_id)
    sent = await asyncio.to_thread(lti.queue_scores, state.store, link, batch, label=state.settings.student_label)
    state.lti_sender.kick(state.store, _client(state)[0])
    return _sent(sent)


@router.get("/v1/lti/links/{link_id}/scores")
async def score_status(
    link_id: str,
    batch: OwnedBatch,
    state: State,
    principal: Principal,
    batch_id: Annotated[str, Query(description="The class set")],
) -> list[SentPublic]:
    """Each student's score: queued, sending, sent, already in the LMS, held back, or failed (with why)."""
    link = await _owned_link(state, principal, link_id)
    return _sent(
        await asyncio.to_thread(lti.score_status, state.store, link, batch, label=state.settings.student_label)
    )
