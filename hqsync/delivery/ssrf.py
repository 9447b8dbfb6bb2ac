"""The SSRF guard: vet every address the runner connects to.

The runner resolves host names itself (:class:`GuardedResolver` inside
aiohttp's connector) and hands the connector only addresses that passed
:meth:`AddressPolicy.check`, so the address vetted is the address connected to
and a DNS answer that changes between check and connect (DNS rebinding) cannot
slip through. IP literals never reach a resolver, so :func:`check_url_host`
vets them, and legacy numeric forms such as ``2130706433`` or ``0x7f.1``,
before a request starts.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Named because they are the targets an SSRF attack aims at first; every one
# also fails the generic checks below (link-local, unique local or shared).
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
    )
)
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # CGNAT, RFC 6598
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddressError(OSError):
    """A target address is refused by the SSRF guard."""


@dataclass(frozen=True)
class AddressPolicy:
    """The addresses the runner may connect to: public ones plus exceptions."""

    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> AddressPolicy:
        """Build a policy from CIDR strings such as ``127.0.0.0/8``."""
        parsed = tuple(ipaddress.ip_network(net, strict=False) for net in networks)
        return cls(allow_networks=parsed)

    def check(self, address: IPAddress) -> None:
        """Raise :class:`BlockedAddressError` unless the address may be connected to."""
        # An IPv6 form that carries an IPv4 address is judged by that address.
        candidates = [*_embedded_ipv4(address), address]
        if any(self._allowed(candidate) for candidate in candidates):
            return
        for candidate in candidates:
            reason = blocked_reason(candidate)
            if reason is None:
                continue
            shown = str(address) if candidate == address else f"{address} ({candidate})"
            raise BlockedAddressError(
                f"address {shown} is {reason}; the SSRF guard rejects it "
                "(add its network to the instance's allow_networks to permit it)"
            )

    def _allowed(self, address: IPAddress) -> bool:
        return any(
            address.version == network.version and address in network
            for network in self.allow_networks
        )


def blocked_reason(address: IPAddress) -> str | None:
    """Return why an address is not a public unicast address, or None if it is."""
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (
            address.version == 4 and address in _SHARED_ADDRESS_SPACE,
            "in the shared (CGNAT) range 100.64.0.0/10",
        ),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routable"),
    )
    for failed, reason in checks:
        if failed:
            return reason
    return None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    # IPv6 forms that carry an IPv4 address a connection may end up at.
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.append(address.teredo[1])
    if address in _NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def parse_numeric_host(host: str) -> IPAddress | None:
    """Parse a host that is an IP address in any form the C resolver accepts."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    # inet_aton takes the legacy forms: 127.1, 0x7f000001, 017700000001, 2130706433.
    if all(char in "0123456789abcdefxABCDEFX." for char in bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def check_url_host(host: str, policy: AddressPolicy) -> None:
    """Vet a URL's host when it is a numeric address, which skips the resolver."""
    address = parse_numeric_host(host)
    if address is not None:
        policy.check(address)


class GuardedResolver(AbstractResolver):
    """Resolve with the system resolver and keep only addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve a host name; raise BlockedAddressError if no address is allowed."""
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refusal: BlockedAddressError | None = None
        for result in results:
            try:
                self._policy.check(ipaddress.ip_address(result["host"]))
            except BlockedAddressError as exc:
                refusal = exc
                continue
            allowed.append(result)
        if not allowed:
            raise refusal or BlockedAddressError(f"host {host} resolved to no address")
        return allowed

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()
