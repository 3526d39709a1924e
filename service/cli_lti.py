"""``draftmark lti ...``: register an LMS as an LTI 1.3 platform, list registrations, rotate the tool's key.

Works on the database named by ``DRAFTMARK_DATABASE_URL``. A registration belongs to an owner:
the API key id whose data an instructor's launch signs into (``--owner``; the local owner by default).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from schemas.lti import Registration
from service.cli_common import fail, load_settings, open_store
from service.errors import CallerError, DraftmarkError
from service.persistence.db import LOCAL_OWNER
from service.workflows import lti

lti_app = typer.Typer(help="LTI 1.3: register LMS platforms, list them, rotate the tool's signing key.")
out = Console()


@lti_app.command("register")
def register(
    issuer: Annotated[str, typer.Option(help="The platform's issuer (iss), e.g. https://canvas.instructure.com")],
    client_id: Annotated[str, typer.Option(help="The client id the platform gave draftmark")],
    auth_url: Annotated[str, typer.Option(help="OIDC authentication request URL")],
    token_url: Annotated[str, typer.Option(help="OAuth2 access token URL")],
    jwks_url: Annotated[str, typer.Option(help="The platform's public keyset URL")],
    deployment_id: Annotated[list[str], typer.Option(help="Deployment id (repeat for several)")],
    owner: Annotated[str, typer.Option(help="API key id whose data launches sign into")] = LOCAL_OWNER,
) -> None:
    """Register a platform; prints its id and the URLs to paste into the LMS."""
    settings = load_settings()
    try:
        reg = Registration(issuer, client_id, auth_url, token_url, jwks_url, deployment_id)
        platform = lti.register(open_store(settings), owner, reg, allow_private=settings.lti_allow_private)
    except DraftmarkError as exc:
        raise fail(exc.message, 2 if isinstance(exc, CallerError) else 4) from exc
    out.print(f"registered {platform.id} ({platform.issuer}, client {platform.client_id}) for owner {owner}")
    out.print(
        "In the LMS: login URL <server>/lti/login, redirect/launch URL <server>/lti/launch, keyset <server>/lti/jwks"
    )


@lti_app.command("list")
def list_platforms(owner: Annotated[str, typer.Option(help="API key id")] = LOCAL_OWNER) -> None:
    """The owner's registrations as JSON lines."""
    for p in open_store(load_settings()).platforms(owner):
        sys.stdout.write(
            json.dumps({"id": p.id, "issuer": p.issuer, "client_id": p.client_id, "deployment_ids": p.deployment_ids})
            + "\n"
        )


@lti_app.command("rotate-key")
def rotate_key() -> None:
    """Make a new signing key; the previous one stays in /lti/jwks for two days, older ones are dropped."""
    kid = lti.rotate_key(open_store(load_settings()))
    out.print(f"new signing key {kid}; platforms pick it up from /lti/jwks")
