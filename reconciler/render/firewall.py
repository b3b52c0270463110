"""The firewall: netreconcile's own nftables tables, rendered whole from the spec; pure.

`render` writes the tables in the form `nft list table` prints them, so the live
tables can be compared with the rendered ones after `normalize` (which drops handles,
counters, indentation and blank lines). Table `inet netreconcile` does NAT and
filtering for both IP families; table `bridge netreconcile` exists only for
`icc: false`. What the rules do, per network with bridge B, subnet S and (dual stack)
subnet6 S6:

- forward: traffic into B is accepted when it answers a connection, comes from B
  itself, or was sent there by a published port (DNAT); anything else going into B is
  dropped, which keeps networks apart and the outside out. An `internal` network also
  drops everything leaving B. These rules name interfaces only, so they hold for
  IPv4 and IPv6 alike.
- postrouting: `masquerade` rewrites traffic from S (and from S6 unless `masquerade6:
  false`, Docker's routed IPv6 mode) leaving through another interface to the host's
  address there. For each family a network has published ports on, traffic DNATed back
  into B from inside its subnet (hairpin) is masqueraded too, and so is IPv4 from the
  host's loopback, so replies come back through the host whether or not br_netfilter
  sees bridged frames.
- prerouting/output: packets to any local address (or the given host IP) on a
  published port are DNATed to the container, from outside and from the host itself.
  A single published port is one element of a named map (`published_ip_tcp`: port ->
  container address . port, for entries on every address of the family;
  `published_ip_daddr_tcp`: host address . port -> ..., for entries on one address),
  looked up by one rule per map, so publishing a port or moving one is one element
  update (`load_script`), not a reload of the tables. A range is one rule per
  `ports` entry and family, so a range costs what a single port does (except a range
  moved to other container ports: one anonymous-map element per port, see
  _dnat_target). An entry without one host address matches only its family (`meta
  nfproto`): a `Publication` is one container's ports of one family, DNATed to its
  address of that family.
- guard (raw prerouting): bridges with IPv4 published ports get route_localnet=1 so
  that the host's own 127.0.0.1 traffic can be DNATed into them; nothing arriving from
  such a bridge may address 127.0.0.0/8. IPv4 only: IPv6 has no route_localnet, and the
  kernel never delivers a reply addressed to ::1 that arrives from a bridge, so ports
  are not published on ::1 (the spec refuses it).

`icc: false` drops, in the bridge family's forward hook, every frame a container's
port sends to another port of the bridge, so containers still reach the gateway (the
bridge itself) and, through it, the outside. A rule rather than the kernel's bridge
port isolation flag, because with br_netfilter loaded the kernel delivers DNATed
hairpin traffic (a container reaching a neighbour's published port through the host's
address) port to port; only a rule can let exactly that through: frames to and from
the published container ports, per publication and so per family. These kernels have
neither bridge-family conntrack nor `meta ibrname`, so the rules name ports and
published addresses.

Rules that match a network's or a container's addresses take the family from the
address (`ip` or `ip6` match, `dnat ip`/`dnat ip6`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Union

from reconciler.spec.ports import PROTOCOLS, PortMapping
from reconciler.spec.types import NetworkSpec

FAMILY = "inet"
BRIDGE_FAMILY = "bridge"
TABLE = "netreconcile"
FAMILIES = (FAMILY, BRIDGE_FAMILY)
COMMENT = "managed by netreconcile: edits are overwritten"
LOOPBACK = "127.0.0.0/8"
NFPROTO = {4: "ipv4", 6: "ipv6"}  # `meta nfproto` names of the IP versions

IPAddress = Union[IPv4Address, IPv6Address]

_HANDLE_RE = re.compile(r"\s*# handle \d+$")
_COUNTER_RE = re.compile(r"\bcounter packets \d+ bytes \d+")


@dataclass(frozen=True)
class Publication:
    """One container's published ports of one IP family, DNATed to its address of that
    family on `network`, where its bridge port is `port`: the entries whose families
    include the address's."""

    network: NetworkSpec
    address: IPAddress
    mappings: tuple[PortMapping, ...]
    port: str

    @property
    def family(self) -> int:
        return self.address.version


@dataclass(frozen=True)
class Port:
    """A container's bridge port (host-side veth) on `network`."""

    network: NetworkSpec
    ifname: str


def render(networks: list[NetworkSpec], publications: list[Publication], ports: list[Port]) -> str:
    """Both tables as `nft -f` input (and as `nft list table` prints them)."""
    inet = render_inet_table(networks, publications)
    bridge = render_bridge_table(publications, [p for p in ports if not p.network.icc])
    return inet + bridge


def render_inet_table(networks: list[NetworkSpec], publications: list[Publication]) -> str:
    """NAT and filtering for routed traffic."""
    published = published_families(publications)
    maps = published_port_maps(publications)
    chains = [
        _chain("guard", "type filter hook prerouting priority raw; policy accept;", [
            f'iifname "{n.bridge}" ip daddr {LOOPBACK} drop' for n in networks if 4 in published.get(n.name, ())
        ]),
        _chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
               ["fib daddr type local jump published"] if published else []),
        _chain("output", "type nat hook output priority -100; policy accept;",
               ["fib daddr type local jump published"] if published else []),
        _chain("published", None, [_map_rule(name) for name in maps] + [
            _dnat_rule(p, m) for p in publications for m in p.mappings if not _is_map_element(m)
        ]),
        _chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;",
               [rule for n in networks for rule in _nat_rules(n, published.get(n.name, set()))]),
        _chain("forward", "type filter hook forward priority filter; policy accept;",
               [rule for n in networks for rule in _forward_rules(n, n.name in published)]),
    ]
    return _table(FAMILY, chains, [_map(name, elements) for name, elements in maps.items()])


def published_port_maps(publications: list[Publication]) -> dict[str, list[str]]:
    """The elements ('KEY : ADDRESS . PORT') of each map of single published ports that
    has any, by map name, in a fixed order of the maps."""
    found: dict[str, list[str]] = {name: [] for name in MAP_NAMES}
    for publication in publications:
        for mapping in publication.mappings:
            if _is_map_element(mapping):
                name, key = _map_key(mapping, publication.family)
                found[name].append(f"{key} : {publication.address} . {mapping.container_first}")
    return {name: elements for name, elements in found.items() if elements}


def _is_map_element(mapping: PortMapping) -> bool:
    return mapping.host_first == mapping.host_last


def _map_name(family: int, on_one_address: bool, protocol: str) -> str:
    ip = "ip6" if family == 6 else "ip"
    return f"published_{ip}_daddr_{protocol}" if on_one_address else f"published_{ip}_{protocol}"


MAP_NAMES = tuple(
    _map_name(family, on_one_address, protocol)
    for family in NFPROTO for on_one_address in (False, True) for protocol in PROTOCOLS
)


def _map_key(mapping: PortMapping, family: int) -> tuple[str, str]:
    """The map of a single published port and its key there."""
    host = mapping.host_address
    name = _map_name(family, host is not None, mapping.protocol)
    return name, str(mapping.host_first) if host is None else f"{host} . {mapping.host_first}"


def _map_parts(name: str) -> tuple[str, bool, str]:
    """(nft family keyword, whether keyed by host address too, protocol) of a map's name."""
    parts = name.split("_")
    return parts[1], parts[2] == "daddr", parts[-1]


def _map(name: str, elements: list[str]) -> str:
    ip, on_one_address, _ = _map_parts(name)
    address = "ipv6_addr" if ip == "ip6" else "ipv4_addr"
    key = f"{address} . inet_service" if on_one_address else "inet_service"
    return (f"\tmap {name} {{\n\t\ttype {key} : {address} . inet_service\n"
            f"\t\telements = {{ {', '.join(elements)} }}\n\t}}")


def _map_rule(name: str) -> str:
    """The rule that DNATs what the map `name` holds."""
    ip, on_one_address, protocol = _map_parts(name)
    if on_one_address:
        return f"dnat {ip} to {ip} daddr . {protocol} dport map @{name}"
    return f"meta nfproto {NFPROTO[6 if ip == 'ip6' else 4]} dnat {ip} to {protocol} dport map @{name}"


def render_bridge_table(publications: list[Publication], isolated: list[Port]) -> str:
    """`icc: false`: container ports may not send to each other, except to and from
    published container ports (which hairpin traffic is bridged to); '' if not needed."""
    if not isolated:
        return ""
    isolated_networks = {port.network.name for port in isolated}
    allowed = [
        rule for p in publications if p.network.name in isolated_networks for rule in _published_port_rules(p)
    ]
    dropped = [_isolation_rule(port) for port in isolated]
    return _table(BRIDGE_FAMILY, [
        _chain("forward", "type filter hook forward priority filter; policy accept;", allowed + dropped),
    ])


def _isolation_rule(port: Port) -> str:
    """Drop what a container's port sends to other ports of its bridge; with an uplink,
    except to the uplink: the LAN is the network's way out, as the gateway is otherwise."""
    if port.network.uplink is not None:
        return f'iifname "{port.ifname}" oifname != "{port.network.uplink}" drop'
    return f'iifname "{port.ifname}" drop'


def published_families(publications: list[Publication]) -> dict[str, set[int]]:
    """Per network name, the IP families it has published ports on."""
    found: dict[str, set[int]] = {}
    for publication in publications:
        if publication.mappings:
            found.setdefault(publication.network.name, set()).add(publication.family)
    return found


def match_family(address: IPAddress | IPv4Network | IPv6Network) -> str:
    """The nft payload keyword that matches (and DNATs to) addresses of `address`'s family."""
    return "ip6" if address.version == 6 else "ip"


def _table(family: str, chains: list[str], maps: list[str] | None = None) -> str:
    body = "\n\n".join(block for block in [*(maps or []), *chains] if block)
    return f'table {family} {TABLE} {{\n\tcomment "{COMMENT}"\n{body}\n}}\n'


def _published_port_rules(publication: Publication) -> list[str]:
    rules = []
    ip = match_family(publication.address)
    for protocol, ports in dict.fromkeys((m.protocol, m.container_ports) for m in publication.mappings):
        rules.append(f'oifname "{publication.port}" {ip} daddr {publication.address} {protocol} dport {ports} accept')
        rules.append(f'iifname "{publication.port}" {ip} saddr {publication.address} {protocol} sport {ports} accept')
    return rules


def _chain(name: str, hook: str | None, rules: list[str]) -> str:
    if not rules:
        return ""
    lines = [f"\tchain {name} {{"]
    if hook:
        lines.append(f"\t\t{hook}")
    lines += [f"\t\t{rule}" for rule in rules]
    lines.append("\t}")
    return "\n".join(lines)


def _dnat_rules(publication: Publication) -> list[str]:
    """One rule per published entry (what the tables hold for a range; a single port is
    a map element instead), whatever the size of its port range."""
    return [_dnat_rule(publication, mapping) for mapping in publication.mappings]


def _dnat_rule(publication: Publication, mapping: PortMapping) -> str:
    ip = match_family(publication.address)
    host = mapping.host_address
    # without one host address the entry takes every address of the publication's
    # family, and says so rather than leave the kernel to skip a DNAT of the other one
    match = f"{match_family(host)} daddr {host}" if host is not None else f"meta nfproto {NFPROTO[publication.family]}"
    target = _dnat_target(mapping, publication.address)
    return f"{match} {mapping.protocol} dport {mapping.host_ports} dnat {ip} to {target}"


def _dnat_target(mapping: PortMapping, address: IPAddress) -> str:
    if mapping.offset == 0:
        # A DNAT that names no port never changes the destination port (the kernel
        # only picks a port from a range it is given), so the address alone serves a
        # range of any size: one rule for 1-65535:1-65535.
        return str(address)
    if mapping.host_first == mapping.host_last:
        host = f"[{address}]" if address.version == 6 else str(address)  # the port's colon is not the address's
        return f"{host}:{mapping.container_first}"
    # A range moved to other ports: 'dnat to IP:A-B' would send every port to the first
    # free one of A-B, and nft cannot ask for the kernel's port offset (iptables'
    # IP:A-B/BASE), so the rule looks each port up in one map: an element per port.
    elements = ", ".join(
        f"{port} : {address} . {port + mapping.offset}" for port in range(mapping.host_first, mapping.host_last + 1)
    )
    return f"{mapping.protocol} dport map {{ {elements} }}"


def _nat_rules(network: NetworkSpec, published: set[int]) -> list[str]:
    """Per family of the network: masquerade of its subnet, and of hairpin (and, IPv4
    only, loopback) traffic into it when it has published ports of that family."""
    bridge = network.bridge
    rules = []
    for family in network.families:
        subnet = network.subnet_of(family)
        ip = match_family(subnet)
        if masqueraded(network, family):
            rules.append(f'{ip} saddr {subnet} oifname != "{bridge}" masquerade')
        if family in published:
            rules.append(f'oifname "{bridge}" ct status dnat {ip} saddr {subnet} masquerade')
            if family == 4:
                rules.append(f'oifname "{bridge}" ip saddr {LOOPBACK} masquerade')
    return rules


def masqueraded(network: NetworkSpec, family: int) -> bool:
    """Whether traffic of `family` leaving the network gets the host's address; never
    for `internal` networks (nothing leaves) nor with `gateway_on_host: false` (the
    LAN's router routes it, not the host), IPv6 unless `masquerade6: false`."""
    if network.internal or not network.masquerade or not network.gateway_on_host:
        return False
    return family == 4 or network.masquerade6


def _forward_rules(network: NetworkSpec, published: bool) -> list[str]:
    bridge = network.bridge
    rules = [
        f'oifname "{bridge}" ct state established,related accept',
        f'oifname "{bridge}" iifname "{bridge}" accept',
    ]
    if published:
        rules.append(f'oifname "{bridge}" ct status dnat accept')
    rules.append(f'oifname "{bridge}" drop')
    if network.internal:
        rules.append(f'iifname "{bridge}" drop')
    return rules


def normalize(listing: str) -> str:
    """A table listing without what the kernel adds or nft formats freely: handles,
    counter values, indentation and blank lines; one statement per line."""
    lines = []
    for raw in listing.splitlines():
        line = _COUNTER_RE.sub("counter", _HANDLE_RE.sub("", raw)).strip()
        if line:
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def delete_script() -> str:
    """`nft -f` input that deletes both tables, present or not: each is declared
    (a no-op when it exists) before it is deleted."""
    return "".join(f"table {family} {TABLE}\ndelete table {family} {TABLE}\n" for family in FAMILIES)


def replace_script(tables: str) -> str:
    """`nft -f` input that swaps the live tables for `tables` in one transaction."""
    return delete_script() + tables


def split_elements(ruleset: str) -> tuple[str, tuple[str, ...]]:
    """A normalized listing without the elements of its named maps, and those elements
    as 'MAP KEY : VALUE', sorted: what a one-port change changes, compared apart from the
    rest (nft wraps and orders a map's elements freely)."""
    lines, elements, current_map, collected = [], [], "", None
    for line in ruleset.splitlines():
        if collected is not None or line.startswith(_ELEMENTS_START):
            collected = (collected or []) + [line]
            if line.endswith("}"):
                body = " ".join(collected)[len(_ELEMENTS_START):-1]
                elements += [f"{current_map} {element.strip()}" for element in body.split(",") if element.strip()]
                collected = None
            continue
        if line.startswith("map ") and line.endswith("{"):
            current_map = line[len("map "):-1].strip()
        lines.append(line)
    return "".join(f"{line}\n" for line in lines), tuple(sorted(elements))


_ELEMENTS_START = "elements = {"


def load_script(ruleset: str, elements: tuple[str, ...], changes: tuple[tuple[str, object, object], ...] = ()) -> str:
    """`nft -f` input that makes the live tables `ruleset` with the map `elements`, one
    transaction: when `changes` (field, live, desired) are the elements alone, only the
    elements that differ are deleted and added; else the tables are replaced whole."""
    if changes and all(name == "elements" for name, _, _ in changes):
        (_, live, wanted), = changes
        added, removed = element_changes(live, wanted)
        return element_script("delete", removed) + element_script("add", added)
    return replace_script(ruleset) + element_script("add", elements)


def element_changes(live: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Map elements only in `wanted` (to add) and only in `live` (to delete), sorted."""
    live_set, wanted_set = set(live), set(wanted)
    return sorted(wanted_set - live_set), sorted(live_set - wanted_set)


def element_script(verb: str, elements: list[str] | tuple[str, ...]) -> str:
    """`add element` (KEY : VALUE) or `delete element` (KEY) lines, one per map."""
    by_map: dict[str, list[str]] = {}
    for element in elements:
        name, entry = element.split(" ", 1)
        by_map.setdefault(name, []).append(entry if verb == "add" else entry.split(" : ")[0])
    return "".join(f"{verb} element {FAMILY} {TABLE} {name} {{ {', '.join(entries)} }}\n"
                   for name, entries in by_map.items())


def rule_changes(old: str, new: str) -> tuple[list[str], list[str]]:
    """Statements only in `new` (added) and only in `old` (removed), each prefixed by
    its chain, in table order."""
    old_rules, new_rules = _rules(old), _rules(new)
    old_count, new_count = Counter(old_rules), Counter(new_rules)
    added = _only_in(new_rules, new_count - old_count)
    removed = _only_in(old_rules, old_count - new_count)
    return added, removed


def abbreviate(statement: str, shown: int = 3) -> str:
    """`statement` with its set or map cut to the first `shown` elements, so that a
    description of a range moved to other ports does not list every port."""
    start, end = statement.find("{ "), statement.rfind(" }")
    if start < 0 or end < start:
        return statement
    body = statement[start + 2:end]
    hidden = body.count(", ") + 1 - shown
    if hidden <= 0:
        return statement
    first = ", ".join(body.split(", ", shown)[:shown])
    return f"{statement[:start]}{{ {first}, ... ({hidden} more) }}{statement[end + 2:]}"


def _rules(tables: str) -> list[str]:
    """Each statement of the normalized `tables` as 'FAMILY CHAIN: statement'; a
    chain's type line counts as a statement of the chain."""
    rules, family, chain = [], "", ""
    for line in tables.splitlines():
        line = line.strip()
        if line.startswith("table ") and line.endswith("{"):
            family, chain = line.split()[1], ""
        elif line.startswith("chain ") and line.endswith("{"):
            chain = line[len("chain "):-1].strip()
        elif line and line != "}" and not line.startswith("comment "):
            rules.append(f"{family} {chain}: {line}")
    return rules


def _only_in(rules: list[str], extra: Counter) -> list[str]:
    found = []
    for rule in rules:
        if extra[rule] > 0:
            extra[rule] -= 1
            found.append(rule)
    return found
