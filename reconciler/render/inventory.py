"""`netreconcile show`: the inventory of what the kernel holds for a spec, as a document (pure).

Like `docker network inspect`, but read from the kernel: per network its bridge (MAC,
MTU), subnets and the gateway addresses the bridge has, and the containers whose veths
are its ports; per container its namespace (or whose it shares), interfaces (MAC, MTU,
host end, network), addresses, routes, published ports and files. Every entry says where
in the spec it comes from (`source`, the location the desired object carries; null for
what the spec does not ask for: a managed object it dropped, a route added by hand).
Networks and containers of the spec the kernel lacks are listed with `in_kernel: false`.
`rows` gives the same inventory as table rows for the human output.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_interface

from reconciler.render import graph
from reconciler.spec.types import ContainerSpec, Spec
from reconciler.state.model import HOST_NS, Address, Bridge, File, Firewall, KernelObject, Macvlan, Netns, NetnsAlias, \
    Route, State, Veth


class _Kernel:
    """The live state grouped by where each object is, each group read once (a show of
    1000 containers must not scan the whole state per container)."""

    def __init__(self, live: State, desired: State):
        self.live, self.desired = live, desired
        self.addresses: dict[tuple[str, str], list[Address]] = {}
        self.in_netns: dict[str, list[KernelObject]] = {}  # routes and files, by namespace
        # a container's interfaces on networks: veths (bridge networks) and macvlans
        self.attachments_of_container: dict[str, list[Veth | Macvlan]] = {}
        self.attachments_of_network: dict[str, list[Veth | Macvlan]] = {}
        for obj in live.objects.values():
            if isinstance(obj, Address):
                self.addresses.setdefault((obj.netns, obj.ifname), []).append(obj)
            elif isinstance(obj, (Route, File)):
                self.in_netns.setdefault(obj.netns, []).append(obj)
            elif isinstance(obj, (Veth, Macvlan)):
                self.attachments_of_container.setdefault(obj.container, []).append(obj)
                self.attachments_of_network.setdefault(obj.network, []).append(obj)

    def source(self, obj: KernelObject) -> str | None:
        """The spec location of the desired object `obj` is; None when the spec lacks it."""
        wanted = self.desired.objects.get(obj.key)
        return (wanted.source or None) if wanted is not None else None

    def address_documents(self, netns: str, ifname: str) -> list[dict]:
        found = sorted(self.addresses.get((netns, ifname), ()), key=lambda a: (a.family, ip_interface(a.cidr)))
        return [{"address": a.cidr, "source": self.source(a)} for a in found]

    def of_netns(self, netns: str, kind: type) -> list:
        return [o for o in self.in_netns.get(netns, ()) if isinstance(o, kind)]


def inventory(spec: Spec, live: State, desired: State, host_netns: str, netns_dir: str, etc_netns: str) -> dict:
    """The document `show -o json` prints. `live` is what the kernel holds (observed),
    `desired` what the spec asks for (built from it, with the same sticky addresses)."""
    kernel = _Kernel(live, desired)
    return {
        "host_netns": host_netns,
        "networks": _networks(spec, kernel),
        "containers": _containers(spec, kernel, netns_dir, etc_netns),
    }


def _presence(name: str, in_spec, in_kernel) -> dict:
    """The fields every network and container has: its name, whether the spec and the
    kernel have it, and its spec location."""
    return {"name": name, "in_spec": in_spec is not None, "in_kernel": in_kernel is not None,
            "source": str(in_spec.location) if in_spec is not None else None}


def _networks(spec: Spec, kernel: _Kernel) -> list[dict]:
    bridges = {bridge.network: bridge for bridge in kernel.live.of_kind(Bridge)}
    in_spec = {n.name: n for n in spec.networks}
    documents = []
    macvlan_networks = {m.network for m in kernel.live.of_kind(Macvlan)}
    for name in sorted(set(in_spec) | set(bridges) | macvlan_networks):
        network = in_spec.get(name)
        bridge = bridges.get(name)
        attached = kernel.attachments_of_network.get(name, ())
        document = {
            **_presence(name, network, bridge or next(iter(attached), None)),
            "driver": network.driver if network is not None else bridge.kind if bridge is not None else "macvlan",
            "bridge": bridge.ifname if bridge is not None else (network.bridge or None) if network is not None else None,
            "subnets": [str(network.subnet_of(f)) for f in network.families] if network is not None else [],
            "gateways": kernel.address_documents(HOST_NS, bridge.ifname) if bridge is not None else [],
            "containers": sorted({a.container for a in attached}),
        }
        if network is not None and network.parent:
            document |= {"parent": network.parent, "macvlan_mode": network.macvlan_mode}
        if bridge is not None:
            document |= {"mac": bridge.mac, "mtu": bridge.mtu, "up": bridge.up}
        documents.append(document)
    return documents


def _containers(spec: Spec, kernel: _Kernel, netns_dir: str, etc_netns: str) -> list[dict]:
    namespaces = {o.netns: o for o in kernel.live.objects.values() if isinstance(o, (Netns, NetnsAlias))}
    in_spec = {c.name: c for c in spec.containers}
    firewall_matches = _firewall_matches(kernel.live, kernel.desired)
    documents = []
    for name in sorted(set(in_spec) | set(namespaces)):
        container = in_spec.get(name)
        namespace = namespaces.get(name)
        document = {
            **_presence(name, container, namespace),
            "network_mode": container.network_mode if container is not None else _mode_of(namespace),
            "namespace": f"{netns_dir}/{name}",
            "interfaces": _interfaces(kernel, name),
            "routes": [
                {"destination": r.dst, "gateway": r.gateway, "interface": r.ifname, "family": r.family,
                 "source": kernel.source(r)}
                for r in sorted(kernel.of_netns(name, Route), key=lambda r: (r.family, r.dst))
            ],
            "ports": _ports(container, firewall_matches),
            "files": [
                {"path": f"{etc_netns}/{name}/{f.filename}", "as_spec_says": f == kernel.desired.objects.get(f.key),
                 "source": kernel.source(f)}
                for f in sorted(kernel.of_netns(name, File), key=lambda f: f.filename)
            ],
        }
        if isinstance(namespace, NetnsAlias):
            document["shares"] = namespace.target or "host"
        documents.append(document)
    return documents


def _mode_of(namespace: Netns | NetnsAlias | None) -> str:
    if isinstance(namespace, NetnsAlias):
        return "host" if namespace.target == HOST_NS else f"container:{namespace.target}"
    return "bridge"


def _interfaces(kernel: _Kernel, name: str) -> list[dict]:
    documents = []
    for attachment in sorted(kernel.attachments_of_container.get(name, ()), key=lambda a: str(_ifname(a))):
        ifname = str(_ifname(attachment))
        document = {"name": ifname, "network": attachment.network, "mac": attachment.mac}
        if isinstance(attachment, Macvlan):
            document |= {"mtu": attachment.mtu, "up": attachment.up, "parent": str(attachment.parent),
                         "mode": str(attachment.mode)}
        else:
            document |= {"mtu": attachment.peer_mtu, "up": attachment.peer_up, "host_end": attachment.host_ifname,
                         "bridge": attachment.bridge}
        documents.append(document | {"addresses": kernel.address_documents(name, ifname),
                                     "source": kernel.source(attachment)})
    return documents


def _ifname(attachment: Veth | Macvlan) -> str:
    """The container's name of the interface: a veth's peer, a macvlan itself."""
    return attachment.peer_ifname if isinstance(attachment, Veth) else attachment.ifname


def _firewall_matches(live: State, desired: State) -> bool:
    """Whether netreconcile's tables in the kernel are those the spec asks for (and so
    carry its published ports)."""
    wanted = desired.of_kind(Firewall)
    return bool(wanted) and all(live.objects.get(f.key) == f for f in wanted)


def _ports(container: ContainerSpec | None, firewall_matches: bool) -> list[dict]:
    if container is None:
        return []
    return [
        {"published": graph.port_label(m), "host_ip": str(m.host_ip) if m.host_ip is not None else None,
         "host_ports": m.host_ports, "container_ports": m.container_ports, "protocol": m.protocol,
         "in_kernel": firewall_matches, "source": str(container.location)}
        for m in container.ports
    ]


# --- the human tables -----------------------------------------------------------------------------
NETWORK_COLUMNS = ("network", "bridge", "subnets", "gateways", "containers", "source")
CONTAINER_COLUMNS = ("container", "namespace", "interface", "MAC", "addresses", "routes", "source")
DETAIL_COLUMNS = ("container", "what", "detail", "source")


def _text(items: Iterable[str]) -> str:
    return ", ".join(items) or "-"


def _state_note(document: dict) -> str:
    if not document["in_kernel"]:
        return " (not in the kernel)"
    return "" if document["in_spec"] else " (not in the spec)"


def network_rows(document: dict) -> list[tuple[str, ...]]:
    return [
        (n["name"] + _state_note(n), n["bridge"] or f"parent {n.get('parent', '?')}", _text(n["subnets"]), _text(g["address"] for g in n["gateways"]),
         _text(n["containers"]), n["source"] or "-")
        for n in document["networks"]
    ]


def container_rows(document: dict) -> list[tuple[str, ...]]:
    rows = []
    for c in document["containers"]:
        routes = _text(f"{r['destination']} via {r['gateway']}" for r in c["routes"])
        namespace = c["namespace"] + (f" (shares {c['shares']}'s)" if "shares" in c else "")
        if not c["interfaces"]:
            rows.append((c["name"] + _state_note(c), namespace, "-", "-", "-", routes, c["source"] or "-"))
        for index, i in enumerate(c["interfaces"]):
            first = index == 0
            rows.append((c["name"] + _state_note(c) if first else "", namespace if first else "",
                         f"{i['name']} on {i['network']}", i["mac"], _text(a["address"] for a in i["addresses"]),
                         routes if first else "", i["source"] or "-"))
    return rows


def detail_rows(document: dict) -> list[tuple[str, ...]]:
    """Published ports and files, one row each."""
    rows = []
    for c in document["containers"]:
        for p in c["ports"]:
            state = "" if p["in_kernel"] else " (firewall differs from the spec)"
            rows.append((c["name"], "port", p["published"] + state, p["source"] or "-"))
        for f in c["files"]:
            state = "" if f["as_spec_says"] else " (differs from the spec)"
            rows.append((c["name"], "file", f["path"] + state, f["source"] or "-"))
    return rows
