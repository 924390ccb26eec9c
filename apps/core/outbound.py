"""Requests Deskpilot makes to addresses that users give it (a sitemap to crawl, a webhook to
call) must not become a way to reach internal services: a URL is refused unless it is http(s)
and every address its host resolves to is public, or inside networks the operator allowed.
(The address is checked when the URL is resolved, not pinned for the connection: DNS
rebinding is not covered.)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit


class OutboundRefused(Exception):
    """The URL must not be fetched; the message says why (and which setting allows it)."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and so is any IPv4 address it carries (6to4, NAT64), which could reach e.g.
    169.254.169.254 through a translating gateway."""
    if not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        carried = ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None and not carried.is_global:
            return False
    return True


def outbound_url_check(url: str, *, allowed_networks: Sequence[str], setting: str) -> None:
    """Raise OutboundRefused for another scheme, no host, an unresolvable host, or a host with
    a non-public address outside `allowed_networks` (named by `setting` in the message)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise OutboundRefused(f"only http(s) URLs are allowed, not {url!r}")
    host = parts.hostname or ""
    if not host:
        raise OutboundRefused(f"no host in {url!r}")
    try:
        # Always a str at run time; typeshed allows an int for some address families.
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, parts.port or None)}
    except (socket.gaierror, UnicodeError, ValueError) as error:
        raise OutboundRefused(f"unreachable: {error}") from error
    allowed = [ipaddress.ip_network(net) for net in allowed_networks]
    for address in sorted(addresses):
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if not address_is_public(ip) and not any(ip in network for network in allowed):
            raise OutboundRefused(
                f"{host} resolves to a non-public address ({ip}); add its network to "
                f"{setting} to allow it"
            )
