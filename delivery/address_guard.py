"""Where a delivery may go. A URL a tenant gives us must not reach the service's own network:
loopback, private, link-local (the cloud metadata address among them), multicast, reserved and
unspecified addresses are refused unless the operator allows them in settings
(``AUTOPILOT_DELIVERY_ALLOWED_ADDRESSES``: addresses or networks, such as ``127.0.0.1/32``).

The check runs on the addresses the host resolves to, at connect time (``GuardedResolver``), not
only on the URL: a name that resolves to a private address is refused too, and so is a name
whose answer changes between the check and the connection (DNS rebinding), because the
connection uses the very addresses checked."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The destination is an address deliveries may not reach."""


def networks(allowed: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed)


def refusal(address: str, allowed: tuple[Network, ...]) -> str | None:
    """Why ``address`` may not be reached, or ``None`` if it may."""
    ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return None
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing every answer the guard refuses."""

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self._allowed = allowed
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            if (why := refusal(answer["host"], self._allowed)) is not None:
                raise AddressRefused(f"{host} resolves to {why}; allow it in delivery_allowed_addresses to send there")
        return answers

    async def close(self) -> None:
        await self._inner.close()


def literal_refusal(host: str, allowed: tuple[Network, ...]) -> str | None:
    """For a URL whose host is an IP literal, its refusal; ``None`` for a name or an allowed
    address. aiohttp connects to a literal without asking the resolver, so the sender checks
    literals itself, and the API checks them when an endpoint is created."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return refusal(host.strip("[]"), allowed)
