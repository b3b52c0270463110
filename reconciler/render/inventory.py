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
from reconciler.state.model import HOST_NS, Address, Bridge, File, Firewall, KernelObject, Netns, NetnsAlias, Route, \
    State, Veth


def _source(desired: State, obj: KernelObject) -> str | None:
    wanted = desired.objects.get(obj.key)
    return (wanted.source or None) if wanted is not None else None


def _addresses(state: State, netns: str, ifname: str) -> list[Address]:
    found = [o for o in state.of_kind(Address) if o.netns == netns and o.ifname == ifname]
    return sorted(found, key=lambda a: (a.family, ip_interface(a.cidr)))


def _address_documents(live: State, desired: State, netns: str, ifname: str) -> list[dict]:
    return [{"address": a.cidr, "source": _source(desired, a)} for a in _addresses(live, netns, ifname)]


def inventory(spec: Spec, live: State, desired: State, host_netns: str, netns_dir: str, etc_netns: str) -> dict:
    """The document `show -o json` prints. `live` is what the kernel holds (observed),
    `desired` what the spec asks for (built from it, with the same sticky addresses)."""
    return {
        "host_netns": host_netns,
        "networks": _networks(spec, live, desired),
        "containers": _containers(spec, live, desired, netns_dir, etc_netns),
    }


def _presence(name: str, in_spec, in_kernel) -> dict:
    """The fields every network and container has: its name, whether the spec and the
    kernel have it, and its spec location."""
    return {"name": name, "in_spec": in_spec is not None, "in_kernel": in_kernel is not None,
            "source": str(in_spec.location) if in_spec is not None else None}


def _networks(spec: Spec, live: State, desired: State) -> list[dict]:
    bridges = {bridge.network: bridge for bridge in live.of_kind(Bridge)}
    names = sorted({n.name for n in spec.networks} | set(bridges))
    documents = []
    for name in names:
        network = next((n for n in spec.networks if n.name == name), None)
        bridge = bridges.get(name)
        document = {
            **_presence(name, network, bridge),
            "driver": network.driver if network is not None else bridge.kind,
            "bridge": bridge.ifname if bridge is not None else network.bridge,
            "subnets": [str(network.subnet_of(f)) for f in network.families] if network is not None else [],
            "gateways": _address_documents(live, desired, HOST_NS, bridge.ifname) if bridge is not None else [],
            "containers": sorted({v.container for v in live.of_kind(Veth) if v.network == name}),
        }
        if bridge is not None:
            document |= {"mac": bridge.mac, "mtu": bridge.mtu, "up": bridge.up}
        documents.append(document)
    return documents


def _containers(spec: Spec, live: State, desired: State, netns_dir: str, etc_netns: str) -> list[dict]:
    namespaces = {o.netns: o for o in live.objects.values() if isinstance(o, (Netns, NetnsAlias))}
    names = sorted({c.name for c in spec.containers} | set(namespaces))
    firewall_matches = _firewall_matches(live, desired)
    documents = []
    for name in names:
        container = next((c for c in spec.containers if c.name == name), None)
        namespace = namespaces.get(name)
        document = {
            **_presence(name, container, namespace),
            "network_mode": container.network_mode if container is not None else _mode_of(namespace),
            "namespace": f"{netns_dir}/{name}",
            "interfaces": _interfaces(live, desired, name),
            "routes": [
                {"destination": r.dst, "gateway": r.gateway, "interface": r.ifname, "family": r.family,
                 "source": _source(desired, r)}
                for r in sorted((r for r in live.of_kind(Route) if r.netns == name), key=lambda r: (r.family, r.dst))
            ],
            "ports": _ports(container, firewall_matches),
            "files": [
                {"path": f"{etc_netns}/{name}/{f.filename}", "as_spec_says": f == desired.objects.get(f.key),
                 "source": _source(desired, f)}
                for f in sorted((f for f in live.of_kind(File) if f.netns == name), key=lambda f: f.filename)
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


def _interfaces(live: State, desired: State, name: str) -> list[dict]:
    documents = []
    for veth in sorted((v for v in live.of_kind(Veth) if v.container == name), key=lambda v: str(v.peer_ifname)):
        documents.append({
            "name": str(veth.peer_ifname), "network": veth.network, "mac": veth.mac, "mtu": veth.peer_mtu,
            "up": veth.peer_up, "host_end": veth.host_ifname, "bridge": veth.bridge,
            "addresses": _address_documents(live, desired, name, str(veth.peer_ifname)),
            "source": _source(desired, veth),
        })
    return documents


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
        (n["name"] + _state_note(n), n["bridge"], _text(n["subnets"]), _text(g["address"] for g in n["gateways"]),
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
