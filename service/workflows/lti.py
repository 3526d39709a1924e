"""LTI 1.3 use cases: the tool's keys, registering a platform, login and launch, sending approved marks (AGS).

The protocol is in ``service.lti.tool``; this module adds storage and the rules of this product:
an instructor's launch signs the teacher in as the owner of the registration (a session key, 8
hours); a learner's launch shows only their own *released* feedback; only released marks are
sent as scores (``FullyGraded``, stamped with the approval time, the comment exactly what the
student receives), retried with backoff, a platform's 409 for the same timestamp counted as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from schemas.lti import Registration
from schemas.student import StudentView
from service.errors import CallerError, DraftmarkError
from service.lms import ags
from service.lti import tool
from service.lti.http import acceptable_url, resolve
from service.lti.tool import LaunchRefusedError, PlatformError
from service.netpolicy import address_allowed
from service.persistence.db import as_utc
from service.persistence.stores import BatchView, Link, Platform, QueuedScore, Store
from service.workflows.exports import Selection, class_scripts
from service.workflows.student import student_view

SESSION_TTL = timedelta(hours=8)
KEY_OVERLAP = timedelta(days=2)
"""How long a retired key stays in the JWKS (platforms cache JWKS; tokens signed just before rotation still verify)."""


def signing_key(store: Store) -> RSAKey:
    """The tool's current key (made on first use)."""
    keys = store.signing_keys()
    current = next(((kid, pem) for kid, pem, retired in keys if retired is None), None)
    if current is None:
        store.add_signing_key(*tool.new_signing_key())
        return signing_key(store)
    return tool.load_key(*current)


def jwks(store: Store) -> dict[str, object]:
    """The public keys a platform verifies the tool's messages with (current and recently retired)."""
    signing_key(store)
    return tool.public_jwks([tool.load_key(kid, pem) for kid, pem, _ in store.signing_keys()])


def rotate_key(store: Store) -> str:
    """A new current key; the old one stays published for ``KEY_OVERLAP``, older retired ones are dropped."""
    from service.persistence.db import utcnow

    kid, pem = tool.new_signing_key()
    store.add_signing_key(kid, pem)
    store.drop_retired_keys(utcnow() - KEY_OVERLAP)
    return kid


def register(store: Store, owner: str, reg: Registration, *, allow_private: bool = False) -> Platform:
    """Register a platform for ``owner``: https URLs on public hosts (any http(s) URL when ``allow_private``)."""
    urls = {"issuer": reg.issuer, "auth_url": reg.auth_url, "token_url": reg.token_url, "jwks_url": reg.jwks_url}
    for name, url in urls.items():
        if not acceptable_url(url, allow_private=allow_private):
            raise CallerError(f"{name} must be an https URL (got {url!r})")
    for name, url in (("token_url", reg.token_url), ("jwks_url", reg.jwks_url)):
        host = httpx.URL(url).host
        if not allow_private and not all(address_allowed(a) for a in resolve(host, 443) or ["0.0.0.0"]):
            raise CallerError(
                f"{name} host {host!r} does not resolve to a public address; the server refuses private networks "
                "unless DRAFTMARK_LTI_ALLOW_PRIVATE=1"
            )
    if not reg.deployment_ids or any(not d.strip() for d in reg.deployment_ids):
        raise CallerError("give at least one deployment id (the platform shows it when the tool is deployed)")
    return store.register_platform(owner, replace(reg, deployment_ids=[d.strip() for d in reg.deployment_ids]))


def start_login(store: Store, params: dict[str, str], *, redirect_uri: str) -> str:
    """Where to send the browser for a third-party initiated login (``/lti/login``)."""
    platform = store.find_platform(params.get("iss", ""), params.get("client_id"))
    if platform is None:
        raise LaunchRefusedError("no registered platform for this issuer and client id")
    deployment = params.get("lti_deployment_id")
    if deployment and deployment not in platform.deployment_ids:
        raise LaunchRefusedError(f"deployment {deployment!r} is not registered for this platform")
    state, nonce = store.new_state(platform.id)
    return tool.login_redirect(platform, params, redirect_uri=redirect_uri, state=state, nonce=nonce)


@dataclass(frozen=True)
class Completed:
    """A verified launch, its platform and link; for an instructor, the sign-in key."""

    launch: tool.Launch
    platform: Platform
    link: Link | None
    session_key: str | None


def complete_launch(store: Store, keys: tool.PlatformKeys, *, id_token: str, state: str) -> Completed:
    """Check state, nonce, signature and claims; record the link; sign an instructor in."""
    found = store.use_state(state)
    if found is None:
        raise LaunchRefusedError("unknown, used or expired login state: start the launch again from the LMS")
    platform_id, nonce = found
    platform = store.platform(platform_id)
    issuer, _ = tool.unverified_issuer(id_token)
    if issuer != platform.issuer:
        raise LaunchRefusedError("the id_token's issuer is not the platform this login started with")
    launch = tool.verify_launch(id_token, platform, keys.for_token(platform.jwks_url, id_token), nonce=nonce)
    link = None
    if launch.resource_link_id:
        link = store.save_link(
            platform.id,
            deployment_id=launch.deployment_id,
            resource_link_id=launch.resource_link_id,
            context_id=launch.context_id,
            title=launch.title,
            lineitem=launch.lineitem,
            lineitems=launch.lineitems,
            ags_scopes=launch.ags_scopes,
            memberships_url=launch.memberships_url,
            scheme_ref=launch.custom.get("scheme"),
        )
    session = None
    if launch.is_instructor:
        session = store.create_session_key(platform.owner, f"LTI {launch.name or launch.sub}", SESSION_TTL)
    return Completed(launch, platform, link, session)


TICKET_TTL_S = 600
_TICKET_AUDIENCE = "draftmark-deep-link"


def deep_link_ticket(store: Store, done: Completed) -> str:
    """A signed, 10-minute ticket that carries a deep linking request to the scheme picker's form."""
    if done.launch.message_type != "LtiDeepLinkingRequest" or not done.launch.is_instructor:
        raise LaunchRefusedError("only an instructor's deep linking request can create an assignment")
    now = int(time.time())
    claims = {
        "iss": "draftmark",
        "aud": _TICKET_AUDIENCE,
        "exp": now + TICKET_TTL_S,
        "platform": done.platform.id,
        "deployment": done.launch.deployment_id,
        "return_url": done.launch.deep_link_return_url,
        "data": done.launch.deep_link_data,
    }
    return tool.sign(claims, signing_key(store))


@dataclass(frozen=True)
class DeepLinkAnswer:
    """Where to post the signed response, and the response."""

    return_url: str
    jwt: str


def finish_deep_link(store: Store, ticket: str, *, scheme_ref: str, title: str, launch_url: str) -> DeepLinkAnswer:
    """An ``ltiResourceLink`` for the chosen scheme, with a line item out of the scheme's total."""
    keys = KeySet([tool.load_key(kid, pem) for kid, pem, _ in store.signing_keys()])
    try:
        claims = jwt.decode(ticket, keys, algorithms=["RS256"]).claims
    except (JoseError, ValueError) as exc:
        raise LaunchRefusedError("the deep linking ticket does not verify: start again from the LMS") from exc
    if claims.get("aud") != _TICKET_AUDIENCE or int(claims.get("exp", 0)) < time.time():
        raise LaunchRefusedError("the deep linking ticket has expired: start again from the LMS")
    platform = store.platform(str(claims["platform"]))
    scheme_id, _, version = scheme_ref.partition("@")
    scheme = store.get_scheme(scheme_id, version or None, owner=platform.owner)
    if scheme is None:
        raise CallerError(f"no scheme {scheme_ref!r} for this course's owner")
    label = title.strip() or scheme.title
    item = {
        "type": "ltiResourceLink",
        "title": label,
        "url": launch_url,
        "lineItem": {"scoreMaximum": scheme.total_marks, "label": label, "resourceId": f"{scheme.id}@{scheme.version}"},
        "custom": {"scheme": f"{scheme.id}@{scheme.version}"},
    }
    response = tool.deep_link_response(
        platform,
        signing_key(store),
        deployment_id=str(claims["deployment"]),
        data=claims.get("data"),
        items=[item],
    )
    return DeepLinkAnswer(str(claims["return_url"]), response)


def released_for(store: Store, owner: str, sub: str, *, label: str) -> list[StudentView]:
    """A learner's released feedback (never a draft, never an approval not yet released), newest last."""
    ids = store.marking_ids_for(owner, sub)
    reviews = store.latest_reviews(ids)
    released = [m for m in ids if m in reviews and reviews[m].released_at is not None]
    return [student_view(store.get_marking(m).result, reviews[m], label=label) for m in released]


def roster(store: Store, http: httpx.Client, link: Link) -> list[tool.Member]:
    """The learners of the link's course, from the platform (NRPS)."""
    if not link.memberships_url:
        raise CallerError("the platform did not offer the course roster (Names and Role Provisioning) for this link")
    platform = store.platform(link.platform_id)
    token = tool.access_token(http, platform, signing_key(store), [tool.NRPS_SCOPE])
    return [m for m in tool.members(http, link.memberships_url, token) if m.is_learner and m.status == "Active"]


@dataclass(frozen=True)
class RosterMatch:
    """A script of a class set and the learner it belongs to, if one is found."""

    external_id: str
    user_id: str | None
    name: str | None
    matched_by: Literal["id", "name"] | None


_EXTENSIONS = re.compile(r"\.(docx|txt|md|rtf|odt|pdf)$", re.IGNORECASE)


def _name_key(text: str) -> frozenset[str]:
    """The words of a name or file name, in any order ("Lovelace, Ada" = "ada_lovelace.docx")."""
    words = re.sub(r"[^\w]+|_", " ", _EXTENSIONS.sub("", text).casefold()).split()
    return frozenset(w for w in words if not w.isdigit())


def match_roster(external_ids: list[str], members: list[tool.Member]) -> list[RosterMatch]:
    """Each script's learner: by LMS user id, else by a unique name match of the script's id."""
    by_id = {m.user_id: m for m in members}
    by_name: dict[frozenset[str], list[tool.Member]] = {}
    for m in members:
        by_name.setdefault(_name_key(m.name), []).append(m)
    out = []
    for ext in external_ids:
        if ext in by_id:
            out.append(RosterMatch(ext, ext, by_id[ext].name, "id"))
            continue
        found = by_name.get(_name_key(ext), [])
        if len(found) == 1 and _name_key(ext):
            out.append(RosterMatch(ext, found[0].user_id, found[0].name, "name"))
        else:
            out.append(RosterMatch(ext, None, None, None))
    return out


Outcome = Literal["queued", "sending", "sent", "already", "held_back", "failed"]


@dataclass(frozen=True)
class Sent:
    """Where one student's score stands."""

    user_id: str
    outcome: Outcome
    detail: str = ""


def _check_link(link: Link) -> None:
    if not link.lineitem:
        raise CallerError("this LTI link has no line item: create the assignment with grading in the LMS")
    if tool.SCORE_SCOPE not in link.ags_scopes:
        raise CallerError("the platform did not grant the AGS score scope for this link")


def queue_scores(store: Store, link: Link, batch: BatchView, *, label: str) -> list[Sent]:
    """Queue the class set's approved marks for the link's line item; drafts and unmarked scripts are held back."""
    _check_link(link)
    selection = class_scripts(store, batch, users={}, label=label)
    released = [s for s in selection.scripts if s.released]
    store.enqueue_scores(link.id, batch.id, [(s.key, s.marking_id, ags.score(s, s.key)) for s in released])
    return _status(store, link, batch, selection)


def score_status(store: Store, link: Link, batch: BatchView, *, label: str) -> list[Sent]:
    """Each student of the class set: held back (and why), or their score's state in the queue."""
    return _status(store, link, batch, class_scripts(store, batch, users={}, label=label))


def _status(store: Store, link: Link, batch: BatchView, selection: Selection) -> list[Sent]:
    rows = {r.user_id: r for r in store.scores_for(link.id, batch.id)}
    out = [Sent(h["external_id"], "held_back", h["reason"]) for h in selection.held_back]
    for script in selection.scripts:
        row = rows.get(script.key)
        if not script.released:
            out.append(Sent(script.key, "held_back", script.hold_reason))
        elif row is None:
            out.append(Sent(script.key, "held_back", "released after the last send: send again"))
        else:
            status: Outcome = row.status  # type: ignore[assignment]
            out.append(Sent(script.key, status, row.detail))
    return out


MAX_ATTEMPTS = 8
RETRY_BASE_S = 0.5
RETRY_MAX_S = 300.0
SEND_LEASE = timedelta(minutes=2)


@dataclass
class ScoreSender:
    """Delivers queued scores in the background: one loop per process, backoff per score, durable across restarts."""

    _task: asyncio.Task[None] | None = None
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def kick(self, store: Store, http: httpx.Client) -> None:
        """Start delivering if not already (after a send request, and at start-up for what a restart left)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(store, http), name="lti-scores")

    async def drain(self) -> None:
        """Stop (shutdown, tests)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, store: Store, http: httpx.Client) -> None:
        while True:
            item = await asyncio.to_thread(store.claim_due_score, SEND_LEASE)
            if item is not None:
                await asyncio.to_thread(self._deliver, store, http, item)
                continue
            due = await asyncio.to_thread(store.next_score_due)
            if due is None:
                return
            wait = as_utc(due) - datetime.now(UTC)
            await asyncio.sleep(min(max(wait.total_seconds(), 0.05), RETRY_MAX_S))

    def _token(self, http: httpx.Client, store: Store, platform: Platform) -> str:
        cached = self._tokens.get(platform.id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        token = tool.access_token(http, platform, signing_key(store), [tool.SCORE_SCOPE])
        self._tokens[platform.id] = (token, time.monotonic() + 300)
        return token

    def _deliver(self, store: Store, http: httpx.Client, item: QueuedScore) -> None:
        try:
            link = store.link(item.link_id)
            token = self._token(http, store, store.platform(link.platform_id))
            assert link.lineitem is not None
            outcome = tool.post_score(http, link.lineitem, dict(item.score), token)
        except PlatformError as exc:
            self._tokens.clear()
            if item.attempts + 1 >= MAX_ATTEMPTS:
                store.finish_score(item.id, "failed", detail=f"{exc.message} (after {MAX_ATTEMPTS} attempts)")
                return
            delay = min(RETRY_BASE_S * 2**item.attempts, RETRY_MAX_S)
            store.finish_score(
                item.id, "queued", detail=exc.message, retry_at=datetime.now(UTC) + timedelta(seconds=delay)
            )
            return
        except DraftmarkError as exc:
            store.finish_score(item.id, "failed", detail=exc.message)
            return
        store.finish_score(item.id, outcome)
