"""Published ports: Compose's short syntax parsed into PortMapping values; pure.

`[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|udp]`; an IPv6 HOST_IP is written
bracketed or not (`[::1]:8080:80`, `::1:8080:80`), as Docker reads it. Unlike Docker, a host port
must always be given: a declarative spec cannot publish on a port picked at random,
and a host range maps one to one onto a container range of the same length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Union

IPAddress = Union[IPv4Address, IPv6Address]
PROTOCOLS = ("tcp", "udp")
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
        return f"{host_ip_prefix(self.host_ip)}{self.host_ports}:{self.container_ports}/{self.protocol}"


def host_ip_prefix(host_ip: IPAddress | None) -> str:
    """'' without a host IP, '198.51.100.7:' or '[2001:db8::5]:' (bracketed: the port follows)."""
    if host_ip is None:
        return ""
    return f"[{host_ip}]:" if host_ip.version == 6 else f"{host_ip}:"


def port_range(first: int, last: int) -> str:
    return f"{first}" if first == last else f"{first}-{last}"


def parse_port(value: str | int) -> PortMapping:
    """One entry of a container's `ports` list; raises PortError."""
    text = str(value).strip()
    body, slash, protocol = text.partition("/")
    protocol = protocol.lower() if slash else "tcp"
    if protocol not in PROTOCOLS:
        raise PortError(f"unknown protocol {protocol!r} in {text!r}: use tcp or udp")
    host_ip_text, ports = _split_host_ip(body, text)
    if len(ports) > 2:
        raise PortError(f"{text!r} has too many ':' for {SYNTAX} (write an IPv6 host IP in brackets: [::1]:8080:80)")
    if len(ports) != 2 or not ports[0]:
        raise PortError(
            f"{text!r} gives no host port: write {SYNTAX} (netreconcile does not pick random host ports)"
        )
    host_ip = None if host_ip_text is None else _host_ip(host_ip_text, text)
    host, container = ports
    host_first, host_last = _port_range(host, text, "host")
    container_first, container_last = _port_range(container, text, "container")
    if host_last - host_first != container_last - container_first:
        raise PortError(
            f"{text!r}: the host range has {host_last - host_first + 1} ports and the container range "
            f"{container_last - container_first + 1}; they must be the same length"
        )
    return PortMapping(host_ip, host_first, host_last, container_first, protocol)


def _split_host_ip(body: str, entry: str) -> tuple[str | None, list[str]]:
    """The host IP as written (None without one) and the port fields after it."""
    if body.startswith("["):
        close = body.find("]") + 1
        if not close or not body[close:].startswith(":"):
            raise PortError(f"{entry!r}: write a bracketed host IP as [ADDRESS]:HOST_PORT:CONTAINER_PORT")
        return body[:close], body[close + 1:].split(":")
    # Docker splits from the right, so an unbracketed IPv6 host IP keeps its colons
    parts = body.rsplit(":", 2)
    return (parts[0], parts[1:]) if len(parts) == 3 else (None, parts)


def _host_ip(text: str, entry: str) -> IPAddress:
    """The host IP as written: IPv4 or IPv6 (bracketed or not); 0.0.0.0 and :: stay
    themselves (every address of that family only); an IPv4-mapped IPv6 address is the
    IPv4 address it maps (Docker)."""
    bracketed = text.startswith("[") and text.endswith("]")
    address_text = text[1:-1] if bracketed else text
    if "%" in address_text:
        raise PortError(f"{text!r} in {entry!r} has a zone: publish on an address of the host, without '%'")
    try:
        address = ip_address(address_text)
    except ValueError:
        raise PortError(f"{text!r} in {entry!r} is not an IP address") from None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


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
