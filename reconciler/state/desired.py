"""From a validated Spec (and the live state, for sticky addresses) to the desired State.

Pure: no I/O. Names of derived kernel objects (veth names, MACs) are decided here;
interface names and addresses come from `reconciler.state.ipam`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from reconciler import drivers
from reconciler.drivers.bridge import mac_for, uplink_refusals
from reconciler.drivers.overlay import OVERLAY, overlay_objects
from reconciler.render import firewall, hostsfile, resolvconf
from reconciler.spec.ports import PortMapping
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.state.discovery import discovers, names_in_scope
from reconciler.state.ipam import assign_addresses, assign_host_ends, assign_interfaces
from reconciler.state.model import (
    FORWARDING, HOST_NS, Address, File, Firewall, KernelObject, Netns, NetnsAlias, Route, State, Sysctl, Text,
    Veth,
)
from reconciler.state.subnets import with_chosen_subnets


def route_localnet(bridge: str) -> str:
    """The sysctl that lets the host's 127.0.0.1 traffic be DNATed out of `bridge`."""
    return f"net/ipv4/conf/{bridge}/route_localnet"


@dataclass(frozen=True)
class HostFiles:
    """What the files of containers derive from on the host, read by the caller."""

    resolv_conf: str = ""  # text of the host's resolv.conf (after the systemd stub choice)
    resolv_conf_path: str = "/etc/resolv.conf"  # the file it was read from
    hosts: str = ""  # the host's /etc/hosts, which network_mode host containers get a copy of
    hostname: str = "localhost"  # the host's hostname, which is theirs too


NO_HOST_FILES = HostFiles()


def build_desired(spec: Spec, live: State, host_files: HostFiles = NO_HOST_FILES) -> State:
    spec = with_chosen_subnets(spec, live)  # the same choice as the caller's, if it made one
    interfaces = assign_interfaces(spec, live)
    addresses = assign_addresses(spec, live, interfaces)
    addresses6 = assign_addresses(spec, live, interfaces, family=6)
    host_ends = assign_host_ends(spec, live)
    host_resolv = resolvconf.parse(host_files.resolv_conf, host_files.resolv_conf_path)
    sections = discovery_sections(spec, addresses, addresses6)
    objects: list[KernelObject] = list(host_objects(spec, live).values())
    for container in spec.local_containers:
        if container.mode in ("bridge", "none"):
            objects += container_objects(spec, container, addresses, interfaces, addresses6, host_ends)
        else:
            owner = spec.joined(container)
            objects.append(NetnsAlias(container.name, HOST_NS if owner.mode == "host" else owner.name,
                                      source=str(container.location)))
        objects += container_files(spec, container, addresses, host_resolv, host_files, addresses6,
                                   discovery=sections[container.name], live=live)
    objects += [obj for network in spec.networks if network.driver == OVERLAY.name
                for obj in overlay_objects(spec, network, addresses, addresses6)]
    objects += firewall_objects(spec, addresses, addresses6, host_ends)
    for family, setting in FORWARDING.items():
        if forwarding_needed(spec, family):
            objects.append(Sysctl(HOST_NS, setting, "1", source=str(spec.host.location)))
    refusals = [why for network in spec.networks if network.uplink is not None
                for why in uplink_refusals(network, live.used_interfaces.get(network.uplink))]
    return dataclasses.replace(State.of(objects), refusals=tuple(refusals))


def uplinks(spec: Spec) -> frozenset[str]:
    """The networks' uplinks: the host interfaces the spec makes ports of its bridges."""
    return frozenset(network.uplink for network in spec.networks if network.uplink is not None)


def used_not_owned(spec: Spec) -> dict[str, str]:
    """The host interfaces the spec uses but netreconcile does not own (never creates or
    deletes: uplinks, macvlan parents), each with what uses it, by the networks' drivers."""
    used: dict[str, str] = {}
    for network in spec.networks:
        for ifname, use in drivers.driver_for(network.driver).used_interfaces(network).items():
            used[ifname] = f"{used[ifname]}, {use}" if ifname in used else use
    return used


def discovery_sections(
    spec: Spec, addresses: Mapping[tuple[str, str], IPv4Address], addresses6: Mapping[tuple[str, str], IPv6Address],
) -> dict[str, str]:
    """Per container, the discovery section of its /etc/hosts ("" for none). Containers
    that see the same names share one scope object, and each is rendered once: 1000
    containers on one network cost one section of 1000 lines, not a million lines."""
    rendered: dict[tuple[int, bool], str] = {}
    sections = {}
    for name, records in names_in_scope(spec, addresses, addresses6).items():
        key = (id(records), has_ipv6(spec, spec.joined(spec.container(name))))
        if key not in rendered:
            rendered[key] = hostsfile.render_discovery(records, key[1])
        sections[name] = rendered[key]
    return sections


def forwarding_needed(spec: Spec, family: int = 4) -> bool:
    """Whether the host forwards IP version `family`: for IPv4 host.ip_forward as given,
    else whether some network reaches beyond its bridge through the host (a macvlan
    network's traffic does not cross it); for IPv6 whether some IPv6 network does, unless host.ip_forward is false (which, like Docker's
    --ip-forward=false, covers both)."""
    if family == 4 and spec.host.ip_forward is not None:
        return spec.host.ip_forward
    if spec.host.ip_forward is False:
        return False
    return any(routed(network) and family in network.families for network in spec.networks)


def routed(network: NetworkSpec) -> bool:
    """Whether the host routes the network's traffic beyond it: not for an internal
    network (nothing leaves), nor with gateway_on_host false (the LAN's router does), nor
    for a driver whose traffic never crosses the host's IP stack (macvlan)."""
    return not network.internal and network.gateway_on_host and drivers.through_host(network.driver)


def gateway_attachment(spec: Spec, container: ContainerSpec, family: int = 4,
                       through_host: bool = False) -> Attachment | None:
    """The network that gives the container its default route of IP version `family`:
    of its networks with that version, the one with the highest gw_priority, the first
    listed on a tie; never an internal one (no way out). Its IPv4 network, when it has
    IPv6, is therefore its IPv6 one too. `through_host`: of the networks whose traffic
    goes through the host only (where ports can be published)."""
    candidates = [
        a for a in container.networks
        if not spec.network(a.network).internal and family in spec.network(a.network).families
        and (not through_host or drivers.through_host(spec.network(a.network).driver))
    ]
    return max(candidates, key=lambda a: a.gw_priority, default=None)  # max keeps the first of equals


PublishedFamily = tuple[int, Attachment, tuple[PortMapping, ...]]


def published_attachments(spec: Spec, container: ContainerSpec) -> list[PublishedFamily]:
    """Per IP family the container publishes ports of: the family, its gateway network of
    that family among those whose traffic goes through the host, and those ports (the
    entries whose families include it). A family without such a network publishes nothing:
    an IPv4-only container gets no IPv6 binding (Docker without its userland proxy)."""
    found = []
    for family in (4, 6):
        mappings = tuple(m for m in container.ports if family in m.families)
        attachment = gateway_attachment(spec, container, family, through_host=True) if mappings else None
        if attachment is not None:
            found.append((family, attachment, mappings))
    return found


def hairpin_attachments(spec: Spec, container: ContainerSpec) -> set[str]:
    """The networks on which the container's veth is in hairpin mode: where its published
    ports are DNATed to, since reaching them from inside itself sends frames back out of
    the port they came in by."""
    return {attachment.network for _, attachment, _ in published_attachments(spec, container)}


HostEnds = Mapping[tuple[str, str], str]  # host-side veth name per (container, network): ipam.assign_host_ends


def publications(
    spec: Spec, addresses: Mapping[tuple[str, str], IPv4Address], addresses6: Mapping[tuple[str, str], IPv6Address],
    host_ends: HostEnds | None = None,
) -> list[firewall.Publication]:
    """Per container and IP family, its published ports DNATed to its address of that
    family on the family's gateway network (on the veth `host_ends` names, by default
    as named from the spec alone)."""
    host_ends = host_ends or assign_host_ends(spec, State())
    by_family = {4: addresses, 6: addresses6}
    found = []
    for container in spec.local_containers:
        for family, attachment, mappings in published_attachments(spec, container):
            key = (container.name, attachment.network)
            found.append(firewall.Publication(spec.network(attachment.network), by_family[family][key], mappings,
                                              host_ends[key]))
    return found


def bridge_ports(spec: Spec, host_ends: HostEnds | None = None) -> list[firewall.Port]:
    host_ends = host_ends or assign_host_ends(spec, State())
    return [
        firewall.Port(spec.network(a.network), host_ends[(container.name, a.network)])
        for container in spec.local_containers for a in container.networks
        if drivers.through_host(spec.network(a.network).driver)
    ]


def firewall_objects(
    spec: Spec, addresses: Mapping[tuple[str, str], IPv4Address], addresses6: Mapping[tuple[str, str], IPv6Address],
    host_ends: HostEnds | None = None,
) -> list[KernelObject]:
    """The nftables tables, and route_localnet on bridges that publish IPv4 ports; none
    without a network whose traffic goes through the host (macvlan networks have no rules)."""
    networks = [network for network in spec.networks if drivers.through_host(network.driver)]
    if not networks:
        return []
    host_ends = host_ends or assign_host_ends(spec, State())
    published = publications(spec, addresses, addresses6, host_ends)
    tables = firewall.render(networks, published, bridge_ports(spec, host_ends))
    source = str(networks[0].location)
    ruleset, elements = firewall.split_elements(firewall.normalize(tables))
    objects: list[KernelObject] = [Firewall(HOST_NS, ruleset, elements, source=source)]
    for name in dict.fromkeys(p.network.name for p in published if p.family == 4):
        network = spec.network(name)
        objects.append(Sysctl(HOST_NS, route_localnet(network.bridge), "1", source=str(network.location)))
    return objects


def network_objects(network: NetworkSpec) -> list[KernelObject]:
    return drivers.driver_for(network.driver).network_objects(network)


def host_objects(spec: Spec, live: State) -> dict[tuple, KernelObject]:
    """The networks' objects by key: one that several networks want (a VLAN link two
    macvlan networks share as parent) once, as the first wants it; one wanted only where
    the host lacks it (`made_if_absent`) not where the host has a link of its name that
    is not netreconcile's (it is used as it is)."""
    present = {("link", HOST_NS, name) for name in live.foreign_links}
    found: dict[tuple, KernelObject] = {}
    for network in spec.networks:
        for obj in network_objects(network):
            if not (obj.made_if_absent and obj.holds() & present):
                found.setdefault(obj.key, obj)
    return found


def has_ipv6(spec: Spec, container: ContainerSpec) -> bool:
    """Whether the container's own namespace has IPv6: one of its networks has it."""
    return any(spec.network(a.network).ipv6 for a in container.networks)


def container_objects(
    spec: Spec, container: ContainerSpec, addresses: Mapping[tuple[str, str], IPv4Address],
    interfaces: Mapping[tuple[str, str], str], addresses6: Mapping[tuple[str, str], IPv6Address],
    host_ends: HostEnds,
) -> list[KernelObject]:
    """The container's namespace, per network what its driver makes for the attachment
    (a veth's host end named as `host_ends` says: drivers name it by its hash alone),
    and what is the same for every driver: the interface's addresses (IPv6 on IPv6
    networks), and per IP version the default route through that version's gateway network.
    IPv6 is on in the namespace (lo gets ::1) exactly when one of its networks has IPv6."""
    by_family = {4: addresses, 6: addresses6}
    ipv6 = has_ipv6(spec, container)
    objects: list[KernelObject] = [Netns(container.name, ipv6=ipv6, source=str(container.location))]
    gateways = {family: gateway_attachment(spec, container, family) for family in (4, 6)}
    hairpin_on = hairpin_attachments(spec, container)
    for attachment in container.networks:
        network = spec.network(attachment.network)
        address = addresses[(container.name, network.name)]
        ifname = interfaces[(container.name, network.name)]
        source = str(attachment.location)
        host_end = host_ends[(container.name, network.name)]
        objects += (
            dataclasses.replace(obj, host_ifname=host_end) if isinstance(obj, Veth) and obj.host_ifname != host_end
            else obj
            for obj in drivers.driver_for(network.driver).attachment_objects(
                container, network, attachment, attachment.mac_address or mac_for(address), ifname,
                hairpin=attachment.network in hairpin_on, netns_ipv6=ipv6, address=address,
            )
        )
        for family in network.families:
            mine, subnet = by_family[family][(container.name, network.name)], network.subnet_of(family)
            objects.append(Address(container.name, ifname, f"{mine}/{subnet.prefixlen}", source=source))
            if attachment is gateways[family]:
                objects.append(Route(container.name, "default", str(network.gateway_of(family)), ifname,
                                     family=family, source=source))
    return objects


def container_files(
    spec: Spec, container: ContainerSpec, addresses: Mapping[tuple[str, str], IPv4Address],
    host_resolv: resolvconf.HostResolvConf, host_files: HostFiles, addresses6: Mapping[tuple[str, str], IPv6Address],
    discovery: str = "", live: State | None = None,
) -> list[KernelObject]:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf as Docker writes them: on the
    default bridge (and with no network), in host mode, and for a container that joins
    another's namespace: the files of the one it joins. `discovery` is the container's
    discovery section (`discovery_sections`), written after Docker's lines of /etc/hosts
    (not in host mode, where the file is the host's).

    `addresses6` holds the IPv6 address of every attachment to a network with IPv6. A
    namespace with IPv6 (some network of it has IPv6) gets Docker's IPv6 lines in
    /etc/hosts; one without gets none, as Docker 26+ writes it for a container whose
    IPv6 is off.

    A file whose `live` text is the one rendered takes the live text (the same object):
    one copy of each unchanged file is held, not two (with 5000 containers that see 1000
    names each the hosts files are 100 MB).
    """
    source = str(container.location)
    origin = spec.joined(container)
    if origin.mode == "host":
        hostname = host_files.hostname
        hosts = host_files.hosts if not origin.extra_hosts else hostsfile.render_hosts(
            own_addresses=(), hostname=hostname, domainname=None, ipv6=True,
            extra_hosts=tuple(hostsfile.parse_extra_host(item) for item in origin.extra_hosts),
        )
    else:
        hostname = origin.hostname or origin.name
        own_addresses = (_addresses_of(spec, origin, a.network, addresses, addresses6) for a in origin.networks)
        hosts = hostsfile.render_hosts(
            own_addresses=tuple(str(address) for endpoint in own_addresses for address in endpoint),
            hostname=hostname,
            domainname=origin.domainname,
            extra_hosts=tuple(entry for item in origin.extra_hosts for entry in _extra_hosts(spec, origin, item)),
            links=tuple(entry for link in origin.links
                        for entry in _link_entries(spec, origin, link, addresses, addresses6)),
            ipv6=has_ipv6(spec, origin),
        )
        hosts = Text.joined(hosts, discovery)
    resolv = _resolv_conf(host_resolv, host_files.resolv_conf_path, origin.dns, origin.dns_search, origin.dns_opt,
                          legacy=origin.mode != "host", ipv6=_resolv_conf_ipv6(spec, origin),
                          internal_resolver=uses_resolver(spec, origin))
    texts = {"hostname": hostsfile.render_hostname(hostname), "hosts": hosts, "resolv.conf": resolv}
    return [File(container.name, filename, _live_text_if_same(live, container.name, filename, text), source=source)
            for filename, text in texts.items()]


def _live_text_if_same(live: State | None, netns: str, filename: str, content: str | Text) -> Text:
    text = content if isinstance(content, Text) else Text.of(content)
    found = live.objects.get(("file", netns, filename)) if live is not None else None
    return found.text if isinstance(found, File) and found.text == text else text


def uses_resolver(spec: Spec, container: ContainerSpec) -> bool:
    """Whether the container asks the embedded DNS server: with host.dns_resolver, when
    one of its networks has discovery (Docker: a sandbox on any user-defined network
    gets the internal-resolver file). A container joining another's namespace asks
    what that one asks."""
    origin = spec.joined(container)
    return spec.host.dns_resolver and origin.mode in ("bridge", "none") and any(
        discovers(spec.network(a.network)) for a in origin.networks)


def _addresses_of(
    spec: Spec, container: ContainerSpec, network_name: str, addresses: Mapping[tuple[str, str], IPv4Address],
    addresses6: Mapping[tuple[str, str], IPv6Address],
) -> tuple[IPv4Address | IPv6Address, ...]:
    """The container's addresses on one network: IPv4, then IPv6 if the network has it
    (Docker's order for an endpoint's /etc/hosts lines and for a link's lines)."""
    key = (container.name, network_name)
    return (addresses[key], addresses6[key]) if spec.network(network_name).ipv6 else (addresses[key],)


def _resolv_conf_ipv6(spec: Spec, container: ContainerSpec) -> bool:
    """The IPv6 flag of the legacy resolv.conf transform: the EnableIPv6 of the network
    the container joins last, its last one in the spec.

    Docker rewrites the file at every endpoint join with the joining network's flag, so
    the last join decides: moby `libnetwork/endpoint.go` `sbJoin` calls
    `sb.updateDNS(n.enableIPv6)`, and `libnetwork/sandbox_dns_unix.go` `updateDNS`
    regenerates the file from the host's and applies `TransformForLegacyNw(ipv6Enabled)`
    (both under `daemon/libnetwork/` in later trees). Docker joins the networks other
    than the default bridge in Go map order (`daemon/container_operations.go`
    `allocateNetwork`), which is random; netreconcile joins in spec order.
    """
    return bool(container.networks) and spec.network(container.networks[-1].network).ipv6


@functools.lru_cache(maxsize=256)
def _resolv_conf(host_resolv, resolv_path, dns, dns_search, dns_opt, legacy: bool = True, ipv6: bool = False,
                 internal_resolver: bool = False) -> str:
    # most containers share the host's file and overrides: render each combination once
    return resolvconf.render_file(host_resolv, origin_path=resolv_path, dns=dns, dns_search=dns_search,
                                  dns_opt=dns_opt, legacy=legacy, ipv6=ipv6, internal_resolver=internal_resolver)


def _extra_hosts(spec: Spec, container: ContainerSpec, item: str) -> tuple[hostsfile.HostEntry, ...]:
    """The lines of one extra_hosts item; `host-gateway` gives one per gateway address,
    as Docker writes one per host-gateway-ip (the default bridge's IPv4 gateway, then
    its IPv6 one if it has IPv6). Docker means the default bridge; here: the
    container's first network with a gateway (validation made sure it has one)."""
    entry = hostsfile.parse_extra_host(item)
    if entry.address != hostsfile.HOST_GATEWAY:
        return (entry,)
    network = drivers.host_gateway_network(container, {a.network: spec.network(a.network) for a in container.networks})
    return tuple(hostsfile.HostEntry(str(network.gateway_of(family)), entry.names) for family in network.families)


def _link_entries(
    spec: Spec, container: ContainerSpec, link: str, addresses: Mapping[tuple[str, str], IPv4Address],
    addresses6: Mapping[tuple[str, str], IPv6Address],
) -> tuple[hostsfile.HostEntry, ...]:
    """The lines of one legacy link: the target's IPv4 address on the network they
    share, and a second line for its IPv6 address there if that network has IPv6."""
    target_name, _, alias = link.partition(":")
    target = spec.container(target_name)
    mine = [a.network for a in container.networks]
    shared = next(a for a in target.networks if a.network in mine)
    return tuple(
        hostsfile.link_entry(str(address), alias or target.name, target.name, target.hostname or target.name,
                             shared.aliases)
        for address in _addresses_of(spec, target, shared.network, addresses, addresses6)
    )
