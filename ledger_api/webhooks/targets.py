"""Where a webhook may be sent (server-side request forgery).

A URL is http(s) only (https outside development), has a host and no credentials, and
every address its host resolves to must be a public one: loopback, private (RFC 1918,
fc00::/7), link-local (169.254/16 with the cloud metadata address, fe80::/10), shared
(100.64/10), multicast, unspecified and reserved addresses are refused, as is an IPv6
address mapping or embedding a refused IPv4 one. The check runs at registration (422)
and again before every attempt, whose connection goes to the address just checked (the
Host header and TLS server name keep the URL's host), so a name that resolves to a
public address at registration and to 127.0.0.1 later (DNS rebinding) reaches nothing
private. `LEDGER_WEBHOOKS_ALLOW_PRIVATE` allows loopback and private addresses in
development only (tests run a receiver on 127.0.0.1; production refuses to start with it
set); link-local, multicast, unspecified and reserved addresses stay refused even then.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from ledger_api.core.config import Settings

MAX_URL_LENGTH = 2048

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedTarget(ValueError):
    """The URL may not be sent to; the message says why (never a resolved address)."""


@dataclass(frozen=True)
class Target:
    url: SplitResult
    host: str  # as in the URL, without brackets
    port: int
    address: str  # the checked address to connect to


def private_allowed(settings: Settings) -> bool:
    return settings.env == "development" and settings.webhooks_allow_private


def never(address: Address) -> bool:
    """What no setting allows: link-local (the cloud metadata address 169.254.169.254
    among them), multicast, unspecified and reserved addresses."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return never(address.ipv4_mapped)
    return address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved


def refused(address: Address) -> bool:
    """Whether an address is anything but a public unicast one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and refused(embedded):
            return True
        if address.teredo is not None and any(refused(a) for a in address.teredo):
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def parse(url: str, settings: Settings) -> SplitResult:
    """The URL's shape, without looking its host up."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedTarget(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise RefusedTarget("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedTarget(f"the URL cannot be read: {error}") from None
    schemes = ("https", "http") if settings.env == "development" else ("https",)
    if parts.scheme not in schemes:
        raise RefusedTarget(f"the URL must start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname:
        raise RefusedTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("the URL may not carry a user name or password")
    if parts.fragment:
        raise RefusedTarget("the URL may not have a #fragment")
    if port == 0:
        raise RefusedTarget("the URL's port is 0")
    return parts


def resolve(url: str, settings: Settings) -> Target:
    """The URL checked and its host resolved; every address checked (RefusedTarget)."""
    parts = parse(url, settings)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    except (OSError, UnicodeError, ValueError):
        raise RefusedTarget(f"the host {host[:100]!r} cannot be resolved") from None
    if not addresses:
        raise RefusedTarget(f"the host {host[:100]!r} cannot be resolved")
    if any(never(address) for address in addresses) or (
        not private_allowed(settings) and any(refused(address) for address in addresses)
    ):
        raise RefusedTarget(
            "the URL's host is or resolves to a loopback, private, link-local, multicast or reserved"
            " address; webhooks go to public addresses only"
        )
    return Target(parts, host, port, str(addresses[0]))
