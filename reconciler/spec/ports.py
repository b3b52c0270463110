"""Published ports: Compose's short syntax parsed into PortMapping values; pure.

`[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|udp]`. Unlike Docker, a host port
must always be given: a declarative spec cannot publish on a port picked at random,
and a host range maps one to one onto a container range of the same length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Union

IPAddress = Union[IPv4Address, IPv6Address]
PROTOCOLS = ("tcp", "udp")
WILDCARD = IPv4Address("0.0.0.0")
_RANGE_RE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")
SYNTAX = "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]"


class PortError(ValueError):
    """A published-port entry that cannot be used; the message says why."""


@dataclass(frozen=True)
class PortMapping:
    """Host ports [host_first, host_last] to container ports from container_first on."""

    # None: every address of the host, of both families; 0.0.0.0 or ::: every address of that family only
    host_ip: IPAddress | None
    host_first: int
    host_last: int
    container_first: int
    protocol: str = "tcp"

    @property
    def host_family(self) -> int | None:
        """The IP version (4 or 6) of `host_ip`; None when published on every host address."""
        return None if self.host_ip is None else self.host_ip.version

    @property
    def families(self) -> tuple[int, ...]:
        """The IP versions (4, 6) the entry publishes on: both without a host IP."""
        return (4, 6) if self.host_ip is None else (self.host_ip.version,)

    @property
    def host_address(self) -> IPAddress | None:
        """The one host address the entry is published on; None for every address (of its families)."""
        return None if self.host_ip is None or self.host_ip.is_unspecified else self.host_ip

    @property
    def container_last(self) -> int:
        return self.container_first + self.host_last - self.host_first

    @property
    def offset(self) -> int:
        """What is added to a host port to get its container port (0: the same ports)."""
        return self.container_first - self.host_first

    @property
    def host_ports(self) -> str:
        """'8080' or '8000-8010', as nft and Compose write ranges."""
        return port_range(self.host_first, self.host_last)

    @property
    def container_ports(self) -> str:
        return port_range(self.container_first, self.container_last)

    def __str__(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip is not None else ""
        return f"{host}{self.host_ports}:{self.container_ports}/{self.protocol}"


def port_range(first: int, last: int) -> str:
    return f"{first}" if first == last else f"{first}-{last}"


def parse_port(value: str | int) -> PortMapping:
    """One entry of a container's `ports` list; raises PortError."""
    text = str(value).strip()
    body, slash, protocol = text.partition("/")
    protocol = protocol.lower() if slash else "tcp"
    if protocol not in PROTOCOLS:
        raise PortError(f"unknown protocol {protocol!r} in {text!r}: use tcp or udp")
    if body.startswith("["):
        raise PortError(f"{text!r} publishes on an IPv6 address; netreconcile networks are IPv4 only")
    parts = body.rsplit(":", 2)
    if len(parts) == 1:
        raise PortError(
            f"{text!r} gives no host port: write {SYNTAX} (netreconcile does not pick random host ports)"
        )
    host_ip = None
    if len(parts) == 3:
        host_ip = _host_ip(parts[0], text)
    host, container = parts[-2], parts[-1]
    if not host:
        raise PortError(
            f"{text!r} gives no host port: write {SYNTAX} (netreconcile does not pick random host ports)"
        )
    host_first, host_last = _port_range(host, text, "host")
    container_first, container_last = _port_range(container, text, "container")
    if host_last - host_first != container_last - container_first:
        raise PortError(
            f"{text!r}: the host range has {host_last - host_first + 1} ports and the container range "
            f"{container_last - container_first + 1}; they must be the same length"
        )
    return PortMapping(host_ip, host_first, host_last, container_first, protocol)


def _host_ip(text: str, entry: str) -> IPv4Address | None:
    if ":" in text:
        raise PortError(f"{entry!r} publishes on an IPv6 address; netreconcile networks are IPv4 only")
    try:
        address = IPv4Address(text)
    except ValueError:
        raise PortError(f"{text!r} in {entry!r} is not an IPv4 address") from None
    return None if address == WILDCARD else address


def _port_range(text: str, entry: str, side: str) -> tuple[int, int]:
    match = _RANGE_RE.fullmatch(text)
    if match is None:
        raise PortError(f"{text!r} in {entry!r} is not a {side} port or port range (e.g. 8080 or 8000-8010)")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise PortError(f"{side} port {port} in {entry!r} is out of range (1-65535)")
    if last < first:
        raise PortError(f"{side} port range {text!r} in {entry!r} ends before it starts")
    return first, last
