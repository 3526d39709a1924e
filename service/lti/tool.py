"""The LTI 1.3 protocol as a tool sees it: OIDC login, id_token checks, the tool's keys, client credentials, AGS.

Built on ``joserfc`` (JWS/JWK/JWT, maintained, typed) rather than ``pylti1p3``: pylti1p3 wants
Flask/Django request, session and cookie adapters and PyJWT, its last release is from 2022, and
its HTTP calls would still have to be moved off FastAPI's event loop. The flow it implements is
small and written out here against the 1EdTech LTI 1.3 Core and Security Framework, so every
check is visible: signature by the platform's JWKS key (``kid``), ``iss``, ``aud``/``azp``,
``exp``/``iat``, ``nonce`` (bound to a one-time ``state``), deployment id, message type, version.
HTTP calls (JWKS, token, scores) are synchronous: callers run them in threads.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from schemas.lti import Registration
from service.errors import CallerError, ModelUnavailableError

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
NRPS_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_ROSTER_PAGES = 50
INSTRUCTOR_ROLES = {
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
}
LEARNER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
MESSAGE_TYPES = {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
CLOCK_SKEW_S = 60
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"


class LaunchRefusedError(CallerError):
    """An LTI login or launch failed a security check (the message says which); nothing was signed in."""

    status_code = 401
    code = "lti_launch_refused"


class PlatformError(ModelUnavailableError):
    """The LMS platform did not answer as LTI requires (JWKS, token or scores endpoint)."""

    code = "lti_platform_error"


@dataclass(frozen=True)
class Launch:
    """A verified launch: who, in which role, from which link, and the services the platform offers."""

    sub: str
    name: str
    roles: list[str]
    message_type: str
    deployment_id: str
    context_id: str
    resource_link_id: str
    title: str
    lineitem: str | None
    lineitems: str | None
    ags_scopes: list[str]
    memberships_url: str | None
    deep_link_return_url: str | None
    deep_link_data: str | None
    custom: dict[str, str] = field(default_factory=dict)

    @property
    def is_instructor(self) -> bool:
        """Instructors and administrators mark; everyone else sees only their own released feedback."""
        return bool(INSTRUCTOR_ROLES & set(self.roles))


def login_redirect(reg: Registration, params: dict[str, str], *, redirect_uri: str, state: str, nonce: str) -> str:
    """The OIDC authentication request (third-party initiated login, LTI 1.3 Core 5.1.1)."""
    if not params.get("login_hint"):
        raise LaunchRefusedError("the login has no login_hint")
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": reg.client_id,
        "redirect_uri": redirect_uri,
        "login_hint": params["login_hint"],
        "state": state,
        "nonce": nonce,
    }
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    return f"{reg.auth_url}{'&' if '?' in reg.auth_url else '?'}{urlencode(query)}"


def unverified_issuer(id_token: str) -> tuple[str, str | None]:
    """(iss, aud or azp) read before verification, only to find the registration whose keys verify it."""
    claims = _part(id_token, 1)
    aud = claims.get("aud")
    azp = claims.get("azp")
    return str(claims.get("iss", "")), aud if isinstance(aud, str) else (str(azp) if azp else None)


def _part(token: str, index: int) -> dict[str, Any]:
    """A JWT's header (0) or claims (1), unverified."""
    try:
        segment = token.split(".")[index]
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError) as exc:
        raise LaunchRefusedError("the id_token is not a JWT") from exc
    if not isinstance(value, dict):
        raise LaunchRefusedError("the id_token is not a JWT")
    return value


def verify_launch(id_token: str, reg: Registration, keys: KeySet, *, nonce: str, now: float | None = None) -> Launch:
    """Every check of LTI 1.3 Security Framework 5.1.3 on a launch's id_token."""
    try:
        token = jwt.decode(id_token, keys, algorithms=["RS256"])
    except (JoseError, ValueError) as exc:
        raise LaunchRefusedError(f"the id_token's signature does not verify ({exc.__class__.__name__})") from exc
    c = token.claims
    moment = time.time() if now is None else now
    if c.get("iss") != reg.issuer:
        raise LaunchRefusedError("the id_token's issuer is not the registered platform")
    aud = c.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    if reg.client_id not in audiences or (len(audiences) > 1 and c.get("azp") != reg.client_id):
        raise LaunchRefusedError("the id_token is not addressed to this tool's client id")
    if not isinstance(c.get("exp"), int | float) or c["exp"] < moment - CLOCK_SKEW_S:
        raise LaunchRefusedError("the id_token has expired")
    if not isinstance(c.get("iat"), int | float) or c["iat"] > moment + CLOCK_SKEW_S:
        raise LaunchRefusedError("the id_token was issued in the future")
    if not secrets.compare_digest(str(c.get("nonce", "")), nonce):
        raise LaunchRefusedError("the id_token's nonce is not the one this login sent (a replay?)")
    deployment = str(c.get(CLAIM + "deployment_id", ""))
    if deployment not in reg.deployment_ids:
        raise LaunchRefusedError(f"deployment {deployment!r} is not registered for this platform")
    if c.get(CLAIM + "version") != "1.3.0":
        raise LaunchRefusedError("not an LTI 1.3.0 launch")
    message_type = str(c.get(CLAIM + "message_type", ""))
    if message_type not in MESSAGE_TYPES:
        raise LaunchRefusedError(f"message type {message_type!r} is not supported")
    if not c.get("sub"):
        raise LaunchRefusedError("the launch names no user (sub)")
    link = c.get(CLAIM + "resource_link") or {}
    if message_type == "LtiResourceLinkRequest" and not link.get("id"):
        raise LaunchRefusedError("a resource link launch without a resource link id")
    dl_settings = c.get(DL_CLAIM) or {}
    if message_type == "LtiDeepLinkingRequest" and not dl_settings.get("deep_link_return_url"):
        raise LaunchRefusedError("a deep linking request without a deep_link_return_url")
    ags = c.get(AGS_CLAIM) or {}
    nrps = c.get(NRPS_CLAIM) or {}
    dl = c.get(DL_CLAIM) or {}
    context = c.get(CLAIM + "context") or {}
    return Launch(
        sub=str(c["sub"]),
        name=str(c.get("name") or c.get("given_name") or ""),
        roles=[str(r) for r in c.get(CLAIM + "roles", [])],
        message_type=message_type,
        deployment_id=deployment,
        context_id=str(context.get("id", "")),
        resource_link_id=str(link.get("id", "")),
        title=str(link.get("title") or context.get("title") or ""),
        lineitem=ags.get("lineitem"),
        lineitems=ags.get("lineitems"),
        ags_scopes=[str(s) for s in ags.get("scope", [])],
        memberships_url=nrps.get("context_memberships_url"),
        deep_link_return_url=dl.get("deep_link_return_url"),
        deep_link_data=dl.get("data"),
        custom={str(k): str(v) for k, v in (c.get(CLAIM + "custom") or {}).items()},
    )


@dataclass
class PlatformKeys:
    """Platforms' JWKS, fetched on first use and again when a token names a key not seen yet."""

    http: httpx.Client
    ttl_s: float = 300.0
    _cache: dict[str, tuple[KeySet, float]] = field(default_factory=dict)

    def for_token(self, jwks_url: str, id_token: str) -> KeySet:
        """The key set that should hold the token's ``kid`` (refetched once if it does not)."""
        kid = _kid(id_token)
        cached = self._cache.get(jwks_url)
        if cached and time.monotonic() - cached[1] < self.ttl_s and _has(cached[0], kid):
            return cached[0]
        keys = self._fetch(jwks_url)
        self._cache[jwks_url] = (keys, time.monotonic())
        return keys

    def _fetch(self, url: str) -> KeySet:
        try:
            response = self.http.get(url, timeout=10)
            response.raise_for_status()
            return KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            raise PlatformError(f"could not read the platform's keys at {url} ({exc.__class__.__name__})") from exc


def _kid(token: str) -> str | None:
    kid = _part(token, 0).get("kid")
    return str(kid) if kid else None


def _has(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(k.kid == kid for k in keys.keys)


def new_signing_key() -> tuple[str, str]:
    """(kid, private PEM) for a fresh 2048-bit RSA key."""
    kid = "dm-" + secrets.token_hex(8)
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
    return kid, key.as_pem(private=True).decode()


def load_key(kid: str, pem: str) -> RSAKey:
    """A stored key, ready to sign."""
    return RSAKey.import_key(pem, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def public_jwks(keys: Sequence[RSAKey]) -> dict[str, Any]:
    """The tool's JWKS document (public parts only)."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


def sign(claims: dict[str, Any], key: RSAKey) -> str:
    """An RS256 JWT signed by the tool's current key."""
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)


def client_assertion(reg: Registration, key: RSAKey, *, now: float | None = None) -> str:
    """The JWT a tool presents for a client-credentials token (1EdTech Security Framework 4.1)."""
    moment = int(time.time() if now is None else now)
    claims = {
        "iss": reg.client_id,
        "sub": reg.client_id,
        "aud": reg.token_url,
        "iat": moment,
        "exp": moment + 300,
        "jti": secrets.token_urlsafe(16),
    }
    return sign(claims, key)


def access_token(http: httpx.Client, reg: Registration, key: RSAKey, scopes: Sequence[str]) -> str:
    """A bearer token for the platform's services (client credentials with a signed JWT assertion)."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(reg, key),
        "scope": " ".join(scopes),
    }
    try:
        response = http.post(reg.token_url, data=form, timeout=15)
    except httpx.HTTPError as exc:
        raise PlatformError(f"the platform's token endpoint did not answer ({exc.__class__.__name__})") from exc
    if response.status_code != 200:
        raise PlatformError(f"the platform refused a token ({response.status_code}): {response.text[:200]}")
    token = response.json().get("access_token")
    if not isinstance(token, str) or not token:
        raise PlatformError("the platform's token answer has no access_token")
    return token


def deep_link_response(
    reg: Registration, key: RSAKey, *, deployment_id: str, data: str | None, items: list[dict[str, Any]]
) -> str:
    """The signed ``LtiDeepLinkingResponse`` a tool posts back to ``deep_link_return_url`` (LTI DL 2.0, 4.2)."""
    moment = int(time.time())
    claims: dict[str, Any] = {
        "iss": reg.client_id,
        "aud": reg.issuer,
        "iat": moment,
        "exp": moment + 600,
        "nonce": secrets.token_urlsafe(16),
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": deployment_id,
        "https://purl.imsglobal.org/spec/lti-dl/claim/content_items": items,
    }
    if data is not None:
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] = data
    return sign(claims, key)


@dataclass(frozen=True)
class Member:
    """One course member from the platform's roster (NRPS 2.0)."""

    user_id: str
    name: str
    roles: list[str]
    status: str

    @property
    def is_learner(self) -> bool:
        """A student of the course (the scripts of a class set are theirs)."""
        return LEARNER_ROLE in self.roles or "Learner" in self.roles


def members(http: httpx.Client, url: str, token: str) -> list[Member]:
    """The course roster, following ``Link: <...>; rel="next"`` pages (NRPS 2.0, 2.4)."""
    found: list[Member] = []
    next_url: str | None = url
    for _ in range(MAX_ROSTER_PAGES):
        if next_url is None:
            return found
        try:
            response = http.get(
                next_url, headers={"Authorization": f"Bearer {token}", "Accept": NRPS_MEDIA_TYPE}, timeout=15
            )
        except httpx.HTTPError as exc:
            raise PlatformError(f"the platform's roster did not answer ({exc.__class__.__name__})") from exc
        if response.status_code != 200:
            raise PlatformError(f"the platform refused the roster ({response.status_code})")
        for m in response.json().get("members", []):
            found.append(
                Member(
                    user_id=str(m.get("user_id", "")),
                    name=str(m.get("name") or " ".join(p for p in (m.get("given_name"), m.get("family_name")) if p)),
                    roles=[str(r) for r in m.get("roles", [])],
                    status=str(m.get("status", "Active")),
                )
            )
        next_url = response.links.get("next", {}).get("url")
    raise PlatformError(f"the roster has more than {MAX_ROSTER_PAGES} pages")


def scores_url(lineitem: str) -> str:
    """``{lineitem}/scores``, keeping the line item's query string where it belongs (AGS 2.0, 3.4)."""
    base, sep, query = lineitem.partition("?")
    return f"{base.rstrip('/')}/scores" + (f"?{query}" if sep else "")


def post_score(http: httpx.Client, lineitem: str, score: dict[str, Any], token: str) -> str:
    """POST one Score: ``"sent"``, or ``"already"`` when the platform holds this or a newer one (409)."""
    try:
        response = http.post(
            scores_url(lineitem),
            json=score,
            headers={"Authorization": f"Bearer {token}", "Content-Type": SCORE_MEDIA_TYPE},
            timeout=15,
        )
    except httpx.HTTPError as exc:
        raise PlatformError(f"the platform's scores endpoint did not answer ({exc.__class__.__name__})") from exc
    if response.status_code in (200, 201, 204):
        return "sent"
    if response.status_code == 409:  # Moodle: a timestamp not newer than the stored one - this approval is there
        return "already"
    if response.status_code >= 500 or response.status_code == 429:
        raise PlatformError(f"the platform's scores endpoint failed ({response.status_code})")
    raise CallerError(f"the platform refused the score ({response.status_code}): {response.text[:200]}")
