"""An LTI 1.3 platform registration: what the tool knows about an LMS (from ``draftmark lti register``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Registration:
    """The platform's issuer, the client id it gave the tool, its OIDC/token/JWKS URLs and deployments."""

    issuer: str
    client_id: str
    auth_url: str
    token_url: str
    jwks_url: str
    deployment_ids: Sequence[str]
