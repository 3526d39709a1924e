"""Batch-completion webhooks: URL policy, HMAC signatures, delivery with backoff."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

from service.errors import CallerError
from service.netpolicy import address_allowed

Resolver = Callable[[str, int], Awaitable[list[str]]]

log = logging.getLogger("draftmark.webhooks")
SIGNATURE_HEADER = "X-Draftmark-Signature"
TIMESTAMP_HEADER = "X-Draftmark-Timestamp"


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _port(parts: Any) -> int:
    return int(parts.port or (443 if parts.scheme == "https" else 80))


async def check_webhook_url(url: str, *, allow_private: bool, resolver: Resolver = resolve_host) -> list[str]:
    """The addresses ``url`` may be delivered to.

    ``CallerError`` for a URL that is not http(s), or whose host resolves to any address that is
    not globally routable (unless private networks are allowed).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallerError(f"webhook_url must be an absolute http(s) URL, got {url!r}")
    try:
        addresses = await resolver(parts.hostname, _port(parts))
    except OSError as exc:
        raise CallerError(f"webhook_url host {parts.hostname!r} does not resolve") from exc
    if not addresses:
        raise CallerError(f"webhook_url host {parts.hostname!r} does not resolve")
    if not allow_private and not all(address_allowed(a) for a in addresses):
        raise CallerError(
            f"webhook_url host {parts.hostname!r} is on a private or loopback network, or another that is not public; "
            "the server refuses those unless DRAFTMARK_WEBHOOK_ALLOW_PRIVATE=1"
        )
    return addresses


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL naming ``address``, Host header, httpx extensions) for a request to ``url``.

    The connection goes to the address that was checked, while Host, TLS SNI and the
    certificate check still use the URL's host name.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = f"{host}:{parts.port}" if parts.port else host
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return pinned, {"host": host_header}, extensions


def owner_secret(server_secret: str, owner: str) -> str:
    """The secret that signs ``owner``'s webhooks: ``HMAC-SHA256(server secret, "draftmark-webhook:" + owner)`` in hex.

    Each API key gets its own, so one receiver can never forge another owner's deliveries; none of
    them is stored, and changing ``DRAFTMARK_WEBHOOK_SECRET`` changes them all. A receiver gets its
    key's from ``GET /v1/webhooks/secret`` (or ``draftmark keys create`` on the server).
    """
    return hmac.new(server_secret.encode(), b"draftmark-webhook:" + owner.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Constant-time check of a signature (what a receiver does)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class _DeliveryFailed(Exception):
    pass


async def deliver(
    url: str,
    payload: dict[str, Any],
    *,
    secret: str,
    attempts: int,
    base_delay_s: float = 0.5,
    allow_private: bool = True,
    resolver: Resolver = resolve_host,
) -> bool:
    """POST the signed payload, retrying non-2xx and transport errors with exponential backoff.

    Each attempt resolves the host once and connects to that address (no second lookup by httpx,
    so DNS cannot rebind between check and connection). Pass the server's policy as
    ``allow_private=False`` to re-check the address at delivery; the URL was checked when accepted.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    try:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=wait_exponential(multiplier=base_delay_s, max=60),
                retry=retry_if_exception_type((_DeliveryFailed, httpx.TransportError)),
            ):
                with attempt:
                    try:
                        addresses = await check_webhook_url(url, allow_private=allow_private, resolver=resolver)
                    except CallerError as exc:
                        raise _DeliveryFailed(exc.message) from exc
                    pinned, host, extensions = pinned_request(url, addresses[0])
                    timestamp = str(int(time.time()))
                    response = await client.post(
                        pinned,
                        content=body,
                        headers={
                            **host,
                            "content-type": "application/json",
                            SIGNATURE_HEADER: sign(secret, timestamp, body),
                            TIMESTAMP_HEADER: timestamp,
                        },
                        extensions=extensions,
                    )
                    if not 200 <= response.status_code < 300:
                        raise _DeliveryFailed(f"HTTP {response.status_code}")
        return True
    except RetryError as exc:
        log.warning("webhook delivery failed after %d attempts: %s", attempts, exc.last_attempt.exception())
        return False
