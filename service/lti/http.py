"""The HTTP client for LMS platforms: https to public addresses only, unless private networks are allowed.

A platform's URLs come from whoever registered it and from its id_tokens, so each request is
checked like a webhook (``service.netpolicy``): the host is resolved once, every address must be
globally routable, and the connection goes to that checked address (Host and TLS SNI keep the
name), so a second DNS answer cannot point it elsewhere. ``DRAFTMARK_LTI_ALLOW_PRIVATE=1`` allows
loopback and private networks and plain http (an on-premises Moodle, tests).
"""

from __future__ import annotations

import socket

import httpx

from service.lti.tool import PlatformError, PlatformKeys
from service.netpolicy import address_allowed


class GuardedTransport(httpx.HTTPTransport):
    """Refuses requests that leave the public internet (or are not https) unless ``allow_private``."""

    def __init__(self, *, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Check, pin and send."""
        if self.allow_private:
            return super().handle_request(request)
        url = request.url
        if url.scheme != "https":
            raise PlatformError(f"LMS services must be https ({url.host}); DRAFTMARK_LTI_ALLOW_PRIVATE=1 allows http")
        addresses = resolve(url.host, url.port or 443)
        if not addresses or not all(address_allowed(a) for a in addresses):
            raise PlatformError(
                f"{url.host} is not on a public network; the server refuses it unless DRAFTMARK_LTI_ALLOW_PRIVATE=1"
            )
        literal = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
        request.headers["Host"] = url.netloc.decode("ascii")
        request.extensions = {**request.extensions, "sni_hostname": url.host}
        request.url = url.copy_with(host=literal.strip("[]"))
        return super().handle_request(request)


def acceptable_url(url: str, *, allow_private: bool) -> bool:
    """An absolute http(s) URL with a host, https unless private networks (and plain http) are allowed."""
    parsed = httpx.URL(url) if url.startswith(("http://", "https://")) else None
    if parsed is None or not parsed.host:
        return False
    return parsed.scheme == "https" or allow_private


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (none if it does not)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def platform_client(*, allow_private: bool) -> httpx.Client:
    """A client for JWKS, token, roster and score requests."""
    return httpx.Client(transport=GuardedTransport(allow_private=allow_private), follow_redirects=False)


_SHARED: dict[bool, tuple[httpx.Client, PlatformKeys]] = {}


def shared_client(*, allow_private: bool) -> tuple[httpx.Client, PlatformKeys]:
    """The platform client of this process for a network policy, with its JWKS cache (made on first use)."""
    if allow_private not in _SHARED:
        http = platform_client(allow_private=allow_private)
        _SHARED[allow_private] = (http, PlatformKeys(http))
    return _SHARED[allow_private]
