"""Checks of single spec values: names, interface names, DNS values, subnets, addresses,
MAC addresses, and published host ports that clash. Each check returns a message or None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from ipaddress import AddressValueError, IPv4Address, IPv4Network, IPv6Address, IPv6Network, NetmaskValueError

from reconciler.render.resolvconf import validate_nameserver
from reconciler.spec.document import PathKey, show
from reconciler.spec.ports import IPAddress, PortMapping, host_ip_prefix
from reconciler.spec.types import NetworkSpec

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_MAX = 63
IFNAMSIZ = 16  # including the terminating NUL: 15 usable characters
VETH_PREFIX = "veth"  # netreconcile names its host-side veth ends veth<7 hex>
MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def name_issue(name: str) -> str | None:
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        return f"use 1 to {NAME_MAX} letters, digits, '_', '.' or '-', starting with a letter or digit"
    return None


# names the kernel's per-interface sysctls give to every interface, not to one
SYSCTL_WILDCARDS = frozenset({"all", "default"})


def ifname_issue(name: str) -> str | None:
    """What makes `name` unusable as a Linux interface name, if anything."""
    if not NAME_RE.fullmatch(name):
        return "use letters, digits, '_', '.' or '-', starting with a letter or digit"
    if len(name) >= IFNAMSIZ:
        return f"at most {IFNAMSIZ - 1} characters"
    if name in SYSCTL_WILDCARDS:
        return f"{name!r} names every interface in the kernel's per-interface settings (/proc/sys/net/*/conf/{name})"
    return None


def interface_name_issue(name: str) -> str | None:
    """A host-side name (a bridge): also not one of netreconcile's veth names."""
    if name.startswith(VETH_PREFIX) and not ifname_issue(name):
        return f"names starting with {VETH_PREFIX!r} are reserved for netreconcile's veth pairs"
    return ifname_issue(name)


def container_ifname_issue(name: str) -> str | None:
    """A name inside a container: also not its loopback."""
    if name == "lo":
        return "'lo' is the namespace's loopback interface"
    return ifname_issue(name)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    import difflib  # only a spec with a mistake needs it: no import on the way of every run

    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# A resolv.conf option token: printable ASCII without whitespace, and no '#': no
# option has one, and to people and some parsers reading the file it starts a comment.
_DNS_OPTION_RE = re.compile(r"[!-\"$-~]+")


def dns_option_issue(option: str) -> str | None:
    if _DNS_OPTION_RE.fullmatch(option):
        return None
    return (f"{show(option)} is not a resolver option: write one word of printable ASCII without whitespace "
            "or '#', such as 'ndots:2'")


def nameserver_issue(text: str) -> str | None:
    """Docker's rule (an IP address, an IPv6 zone allowed), and a zone that is an
    interface name or index: Docker takes any text after '%' into resolv.conf."""
    issue = validate_nameserver(text)
    _, percent, zone = text.partition("%")
    if issue or not percent or NAME_RE.fullmatch(zone):
        return issue
    return f"{show(text)}: the zone after '%' must be an interface name or index"


def absolute_path_issue(text: str) -> str | None:
    if not text.startswith("/"):
        return f"{show(text)} is not an absolute path"
    if "\0" in text:
        return f"{show(text)} contains a NUL character"
    return None


# blocks a subnet6 must not touch: their addresses are not unicast addresses a bridge can route
_NOT_FOR_SUBNET6 = (
    ("the unspecified address", IPv6Network("::/128")),
    ("the loopback address", IPv6Network("::1/128")),
    ("the IPv4-mapped block", IPv6Network("::ffff:0:0/96")),
    ("the link-local block", IPv6Network("fe80::/10")),
    ("the multicast block", IPv6Network("ff00::/8")),
)
# the longest prefix of a subnet, by IP version: room for the gateway and a few containers
MAX_PREFIX = {4: 30, 6: 124}


def parse_subnet(text: str, version: int = 4) -> tuple[IPv4Network | IPv6Network | None, str | None]:
    """The subnet of IP version `version` (4 or 6), or None and why not."""
    network_type = IPv4Network if version == 4 else IPv6Network
    if "%" in text:  # Python reads an IPv6 zone into a network; no subnet has one
        return None, f"{text!r} is not an IPv{version} network: a subnet has no zone"
    try:
        subnet = network_type(text, strict=True)
    except (AddressValueError, NetmaskValueError):
        return None, f"{text!r} is not an IPv{version} network"
    except ValueError:
        # Valid apart from host bits: name the network the user probably meant.
        meant = network_type(text, strict=False)
        return None, f"{text!r} is not an IPv{version} network: host bits must be zero (did you mean '{meant}'?)"
    if subnet.prefixlen > MAX_PREFIX[version]:
        return None, f"{text!r} is too small: the prefix length must be at most {MAX_PREFIX[version]}"
    for what, block in _NOT_FOR_SUBNET6 if version == 6 else ():
        if subnet.overlaps(block):
            return None, f"{text!r} overlaps {what} {block}: use a global or unique-local block"
    return subnet, None


def parse_address(text: str, version: int = 4) -> IPAddress | None:
    """The address of IP version `version` (4 or 6) that `text` writes, or None (an
    IPv6 zone is no address of a network's)."""
    try:
        return IPv4Address(text) if version == 4 else None if "%" in text else IPv6Address(text)
    except AddressValueError:
        return None


def host_address_issue(address: IPAddress, subnet: IPv4Network | IPv6Network) -> str | None:
    """Why `address` cannot be a host address in `subnet`, or None."""
    if address not in subnet:
        return f"{address} is outside the subnet {subnet}"
    if address == subnet.network_address:
        kind = "network" if address.version == 4 else "subnet-router anycast"
        return f"{address} is the {kind} address of {subnet}"
    if address.version == 4 and address == subnet.broadcast_address:
        return f"{address} is the broadcast address of {subnet}"
    return None


def reserved_issue(address: IPAddress, network: NetworkSpec) -> str | None:
    if address == network.gateway_of(address.version):
        return f"{address} is the gateway of network {network.name!r}"
    if address in network.aux_addresses:
        return f"{address} is reserved in aux_addresses of network {network.name!r}"
    if address == network.shim_address:
        return f"{address} is the host shim's address of network {network.name!r} (host_shim: the last of its subnet)"
    return None


def mac_issue(mac: str) -> str | None:
    if not MAC_RE.fullmatch(mac):
        return f"{mac!r} is not a MAC address (expected xx:xx:xx:xx:xx:xx)"
    if int(mac[:2], 16) & 1:
        return f"{mac} is a multicast MAC address; use a unicast one"
    if mac == "00:00:00:00:00:00":
        return f"{mac} is not a usable MAC address"
    return None


def free_addresses(network: NetworkSpec, version: int = 4) -> int:
    """Addresses the dynamic pool of the subnet of IP version `version` can hand out
    (static ones included), counted without enumerating the subnet: IPv6 has no
    broadcast address, and its network address is the subnet-router anycast address."""
    subnet = network.subnet_of(version)
    if subnet is None:
        return 0
    outside_pool = {subnet.network_address, subnet.broadcast_address if version == 4 else subnet.network_address}
    aux = (address for address in network.aux_addresses if address.version == version)
    reserved = {network.gateway_of(version), *aux} - outside_pool
    return subnet.num_addresses - len(outside_pool) - len(reserved)


# ports published through ranges moved to other container ports, in one spec (see
# _check_moved_range_budget): each is one firewall map element, so this bounds what a
# spec can make the firewall hold
MAX_MOVED_RANGE_PORTS = 4096


# keys of the clash index besides addresses: the wildcard claims of a version, and all its claims
_EVERY_ADDRESS = "every address"
_ANY_CLAIM = "any claim"


def port_clashes(
    published: list[tuple[PathKey, PortMapping]],
) -> Iterator[tuple[PathKey, PortMapping, PathKey]]:
    """(path, mapping, path of an earlier mapping it clashes with) for each mapping, in
    spec order, that overlaps one accepted before it (a clashing one is not accepted).

    A mapping claims its ports in each IP version it publishes on (both without a host
    IP), on one address or on every address of the version (0.0.0.0, ::, or no host IP):
    so 0.0.0.0:80 and [::]:80 do not clash, and [::1]:80 clashes with 80 and [::]:80.
    Each check costs O(log 65536), however many ports the spec publishes."""
    indexes: dict[tuple[str, int, IPAddress | str], PortIndex] = {}
    for path, mapping in published:
        address, protocol = mapping.host_address, mapping.protocol
        # a wildcard clashes with any claim of its version; one address with itself and wildcards
        others = [(protocol, version, other) for version in mapping.families
                  for other in ((_ANY_CLAIM,) if address is None else (_EVERY_ADDRESS, address))]
        earlier = None
        for other in others:
            index = indexes.get(other)
            earlier = index.overlapping(mapping.host_first, mapping.host_last) if index else None
            if earlier is not None:
                break
        if earlier is not None:
            yield path, mapping, earlier
            continue
        for version in mapping.families:
            for own in (_ANY_CLAIM, _EVERY_ADDRESS if address is None else address):
                index = indexes.setdefault((protocol, version, own), PortIndex())
                index.add(mapping.host_first, mapping.host_last, path)


class PortIndex:
    """Port ranges, asked whether any overlaps a given range: a Fenwick tree over the
    first port keeping the largest last port (and its owner) of the ranges starting
    at or below each point. Sparse: only the nodes a range touches exist."""

    SIZE = 65536

    def __init__(self) -> None:
        self.tree: dict[int, tuple[int, PathKey]] = {}

    def add(self, first: int, last: int, owner: PathKey) -> None:
        node = first
        while node <= self.SIZE:
            if self.tree.get(node, (0, ()))[0] < last:
                self.tree[node] = (last, owner)
            node += node & -node

    def overlapping(self, first: int, last: int) -> PathKey | None:
        """The owner of a range starting at or below `last` that ends at or after `first`."""
        best: tuple[int, PathKey] = (0, ())
        node = last
        while node > 0:
            candidate = self.tree.get(node)
            if candidate is not None and candidate[0] > best[0]:
                best = candidate
            node -= node & -node
        return best[1] if best[0] >= first else None


def port_claim(mapping: PortMapping) -> str:
    """The host ports an entry claims, for messages: '8080/tcp' on every address of both
    versions, '0.0.0.0:8080/tcp', '[::1]:8080/tcp'."""
    return f"{host_ip_prefix(mapping.host_ip)}{mapping.host_ports}/{mapping.protocol}"
