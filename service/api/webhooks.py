"""Batch-completion webhooks: URL policy, HMAC signatures, delivery with backoff."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

from service.errors import CallerError

log = logging.getLogger("draftmark.webhooks")
SIGNATURE_HEADER = "X-Draftmark-Signature"
TIMESTAMP_HEADER = "X-Draftmark-Timestamp"


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


async def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s) or that point into private networks (unless allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallerError(f"webhook_url must be an absolute http(s) URL, got {url!r}")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CallerError(f"webhook_url host {parts.hostname!r} does not resolve") from exc
    if any(_private(str(info[4][0])) for info in infos):
        raise CallerError(
            f"webhook_url host {parts.hostname!r} is on a private or loopback network; "
            "the server refuses those unless DRAFTMARK_WEBHOOK_ALLOW_PRIVATE=1"
        )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Constant-time check of a signature (what a receiver does)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class _DeliveryFailed(Exception):
    pass


async def deliver(url: str, payload: dict[str, Any], *, secret: str, attempts: int, base_delay_s: float = 0.5) -> bool:
    """POST the signed payload, retrying non-2xx and transport errors with exponential backoff."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    try:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=wait_exponential(multiplier=base_delay_s, max=60),
                retry=retry_if_exception_type((_DeliveryFailed, httpx.TransportError)),
            ):
                with attempt:
                    timestamp = str(int(time.time()))
                    response = await client.post(
                        url,
                        content=body,
                        headers={
                            "content-type": "application/json",
                            SIGNATURE_HEADER: sign(secret, timestamp, body),
                            TIMESTAMP_HEADER: timestamp,
                        },
                    )
                    if not 200 <= response.status_code < 300:
                        raise _DeliveryFailed(f"HTTP {response.status_code}")
        return True
    except RetryError as exc:
        log.warning("webhook delivery failed after %d attempts: %s", attempts, exc.last_attempt.exception())
        return False
