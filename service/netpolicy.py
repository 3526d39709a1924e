"""Which network addresses the server may call out to (webhooks, LMS platforms): globally routable only."""

from __future__ import annotations

import ipaddress

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.0.0/24", "100.64.0.0/10", "198.18.0.0/15", "0.0.0.0/8", "240.0.0.0/4", "2001:db8::/32")
)
"""Special-purpose blocks that some Python releases still call global (IETF protocol assignments: 192.0.0.0/24)."""


def address_allowed(address: str) -> bool:
    """Only globally routable unicast addresses (``is_global``).

    An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64) must carry a global
    one too: ``[2002:7f00:1::]`` is 127.0.0.1 and ``100.100.100.200`` is a cloud metadata service.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not address_allowed(str(embedded)):
            return False
    special = any(ip in net for net in _NOT_PUBLIC if net.version == ip.version)
    return ip.is_global and not ip.is_multicast and not special
