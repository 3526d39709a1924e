"""A platform emulator for tests: a real HTTP server on 127.0.0.1 that plays an LTI 1.3 LMS.

It enforces what the platforms' own code enforces, so a passing test means a real platform would
accept the tool's requests:
- OIDC authorize (1EdTech Security Framework 5.1.1): scope ``openid``, ``response_type=id_token``,
  ``response_mode=form_post``, ``prompt=none``, the registered ``client_id`` and ``redirect_uri``, a
  ``login_hint``, a nonce; answers with an auto-submitting form carrying a signed id_token and the state.
- JWKS of the platform's own key.
- OAuth2 token (Security Framework 4.1): ``client_credentials`` with a ``jwt-bearer`` client assertion
  verified against the *tool's* JWKS (fetched from its ``/lti/jwks``): ``iss == sub == client_id``,
  ``aud`` = this token URL, unexpired, ``jti`` never reused; only the AGS score scope is granted.
- Scores (AGS 2.0; moodle mod/lti/service/gradebookservices/classes/local/resources/scores.php;
  canvas-lms app/controllers/lti/ims/scores_controller.rb): bearer token with the score scope,
  ``Content-Type: application/vnd.ims.lis.v1.score+json``, the Score keys (tests/lms_rules.py), a
  timestamp newer than the stored one (Moodle answers 409 otherwise); a given score is written to
  the gradebook when ``gradingProgress`` is ``FullyGraded`` or ``PendingManual`` (Canvas's
  ACCEPT_GIVEN_SCORE_TYPES) - so a draft sent with a score would show up in ``gradebook``.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.api_support import free_port
from tests.lms_rules import CANVAS_RECORDS_SCORE, ags_errors

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@dataclass
class Platform:
    """The emulated LMS; ``gradebook`` holds what a teacher would see in the LMS."""

    client_id: str = "dm-client-1"
    deployment_id: str = "dep-1"
    tool_url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "plat-1", "alg": "RS256"}))
    port: int = field(default_factory=free_port)
    gradebook: dict[str, dict[str, Any]] = field(default_factory=dict)
    score_log: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    jtis: set[str] = field(default_factory=set)
    token_fail: int = 0
    score_fail: int = 0
    created: list[dict[str, Any]] = field(default_factory=list)
    roster: list[dict[str, Any]] = field(default_factory=list)
    token_scopes: dict[str, set[str]] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def lineitem(self) -> str:
        return f"{self.url}/api/lti/courses/7/line_items/11"

    def registration(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "client_id": self.client_id,
            "auth_url": f"{self.url}/authorize",
            "token_url": f"{self.url}/token",
            "jwks_url": f"{self.url}/jwks",
            "deployment_ids": [self.deployment_id],
        }

    def id_token(self, nonce: str, *, sub: str, roles: list[str], key: RSAKey | None = None, **override: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": self.client_id,
            "sub": sub,
            "name": f"User {sub}",
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "roles": roles,
            CLAIM + "resource_link": {"id": "rl-1", "title": "Stalin essay"},
            CLAIM + "context": {"id": "course-7", "title": "History 10B"},
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": [SCORE_SCOPE, "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"],
                "lineitem": self.lineitem,
                "lineitems": f"{self.url}/api/lti/courses/7/line_items",
            },
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.url}/api/lti/courses/7/names_and_roles",
                "service_versions": ["2.0"],
            },
        }
        if self.custom:
            claims[CLAIM + "custom"] = self.custom
        claims.update(override)
        signer = key or self.key
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize", response_class=HTMLResponse)
        def authorize(request: Request) -> Any:
            q = request.query_params
            problems = [
                name
                for name, ok in (
                    ("scope", q.get("scope") == "openid"),
                    ("response_type", q.get("response_type") == "id_token"),
                    ("response_mode", q.get("response_mode") == "form_post"),
                    ("prompt", q.get("prompt") == "none"),
                    ("client_id", q.get("client_id") == self.client_id),
                    ("redirect_uri", q.get("redirect_uri") == f"{self.tool_url}/lti/launch"),
                    ("login_hint", bool(q.get("login_hint"))),
                    ("nonce", bool(q.get("nonce"))),
                    ("state", bool(q.get("state"))),
                )
                if not ok
            ]
            if problems:
                return JSONResponse({"error": "invalid_request", "fields": problems}, status_code=400)
            sub, role, kind = ([*str(q["login_hint"]).split(":"), ""])[:3]
            roles = [INSTRUCTOR if role == "instructor" else LEARNER]
            extra: dict[str, Any] = {}
            if kind == "deeplink":
                extra = {
                    CLAIM + "message_type": "LtiDeepLinkingRequest",
                    CLAIM + "resource_link": None,
                    DL_CLAIM: {
                        "deep_link_return_url": f"{self.url}/deep-link-return",
                        "accept_types": ["ltiResourceLink"],
                        "accept_presentation_document_targets": ["window"],
                        "data": "opaque-123",
                    },
                }
            token = self.id_token(str(q["nonce"]), sub=sub, roles=roles, **extra)
            return HTMLResponse(
                f"<form method='post' action='{q['redirect_uri']}'><input name='id_token' value='{token}'>"
                f"<input name='state' value='{q['state']}'></form><script>document.forms[0].submit()</script>"
            )

        @app.post("/deep-link-return")
        async def deep_link_return(request: Request) -> Any:
            # LTI Deep Linking 2.0, 4.2: a JWT signed by the tool (its JWKS), iss = client_id, aud = platform,
            # LtiDeepLinkingResponse 1.3.0, the deployment, a nonce, the request's data echoed, the items.
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            tool_keys = KeySet.import_key_set((await _get(f"{self.tool_url}/lti/jwks")).json())
            try:
                claims = jwt.decode(form.get("JWT", ""), tool_keys, algorithms=["RS256"]).claims
            except Exception:
                return JSONResponse({"error": "the response does not verify"}, status_code=400)
            problems = [
                name
                for name, ok in (
                    ("iss", claims.get("iss") == self.client_id),
                    ("aud", claims.get("aud") in (self.url, [self.url])),
                    ("exp", claims.get("exp", 0) > time.time()),
                    ("nonce", bool(claims.get("nonce"))),
                    ("message_type", claims.get(CLAIM + "message_type") == "LtiDeepLinkingResponse"),
                    ("version", claims.get(CLAIM + "version") == "1.3.0"),
                    ("deployment_id", claims.get(CLAIM + "deployment_id") == self.deployment_id),
                    ("data", claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/data") == "opaque-123"),
                )
                if not ok
            ]
            items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
            for item in items:
                if item.get("type") != "ltiResourceLink" or not isinstance(
                    item.get("lineItem", {}).get("scoreMaximum"), int | float
                ):
                    problems.append("content item")
            if problems or not items:
                return JSONResponse({"error": "invalid deep linking response", "fields": problems}, status_code=400)
            self.created.extend(items)
            self.custom = dict(items[0].get("custom", {}))
            return HTMLResponse("<p>Assignment created.</p>")

        @app.post("/token")
        async def token(request: Request) -> Any:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            grant_type, client_assertion_type = form.get("grant_type", ""), form.get("client_assertion_type", "")
            client_assertion, scope = form.get("client_assertion", ""), form.get("scope", "")
            if self.token_fail:
                self.token_fail -= 1
                return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
            if grant_type != "client_credentials" or not client_assertion_type.endswith("jwt-bearer"):
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            tool_keys = KeySet.import_key_set((await _get(f"{self.tool_url}/lti/jwks")).json())
            try:
                claims = jwt.decode(client_assertion, tool_keys, algorithms=["RS256"]).claims
            except Exception:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            now = time.time()
            valid = (
                claims.get("iss") == claims.get("sub") == self.client_id
                and claims.get("aud") in (f"{self.url}/token", [f"{self.url}/token"])
                and claims.get("exp", 0) > now
                and claims.get("jti") not in self.jtis
            )
            if not valid:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            self.jtis.add(claims["jti"])
            if not scope or set(scope.split()) - {SCORE_SCOPE, NRPS_SCOPE}:
                return JSONResponse({"error": "invalid_scope"}, status_code=400)
            access = secrets.token_urlsafe(16)
            self.tokens.add(access)
            self.token_scopes[access] = set(scope.split())
            return {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": scope}

        @app.get("/api/lti/courses/7/names_and_roles")
        def names_and_roles(request: Request, page: int = 1) -> Any:
            # NRPS 2.0: a bearer token with the membership scope, the container media type, pages linked by rel="next".
            auth = request.headers.get("authorization", "")
            if NRPS_SCOPE not in self.token_scopes.get(auth[7:], set()):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            if request.headers.get("accept") != "application/vnd.ims.lti-nrps.v2.membershipcontainer+json":
                return JSONResponse({"error": "not acceptable"}, status_code=406)
            size = 2
            chunk = self.roster[(page - 1) * size : page * size]
            headers = {"Content-Type": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"}
            if page * size < len(self.roster):
                headers["Link"] = f'<{self.url}/api/lti/courses/7/names_and_roles?page={page + 1}>; rel="next"'
            body = {"id": str(request.url), "context": {"id": "course-7"}, "members": chunk}
            return JSONResponse(body, headers=headers)

        @app.post("/api/lti/courses/7/line_items/11/scores")
        async def scores(request: Request) -> Any:
            if self.score_fail:
                self.score_fail -= 1
                return JSONResponse({"error": "busy"}, status_code=503)
            auth = request.headers.get("authorization", "")
            if SCORE_SCOPE not in self.token_scopes.get(auth[7:], set()):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            if request.headers.get("content-type", "").split(";")[0] != "application/vnd.ims.lis.v1.score+json":
                return JSONResponse({"error": "unsupported media type"}, status_code=415)
            score = await request.json()
            errors = ags_errors(score)
            if errors:
                self.score_log.append((400, score))
                return JSONResponse({"errors": errors}, status_code=400)
            stored = self.gradebook.get(score["userId"])
            stamp = datetime.fromisoformat(score["timestamp"].replace("Z", "+00:00"))
            if stored and stamp <= stored["_at"]:
                self.score_log.append((409, score))
                return JSONResponse({"error": "timestamp not newer than the stored one"}, status_code=409)
            if score["gradingProgress"] in CANVAS_RECORDS_SCORE and "scoreGiven" in score:
                self.gradebook[score["userId"]] = {
                    "_at": stamp,
                    "score": score["scoreGiven"],
                    "max": score["scoreMaximum"],
                    "comment": score.get("comment"),
                }
            self.score_log.append((200, score))
            return JSONResponse({}, status_code=200)

        return app


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


class PlatformServer:
    """The emulator served by uvicorn in a thread."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        config = uvicorn.Config(platform.app(), host="127.0.0.1", port=platform.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Platform:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("platform emulator did not start")
            time.sleep(0.02)
        return self.platform

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
