"""The topology as a picture: a spec and its desired state as Graphviz DOT or Mermaid text (pure).

`topology` turns the spec, the desired state (addresses and interface names as `plan`
computes them) and, for `graph --live`, the plan against the kernel into nodes and edges:
the host namespace, networks (subnets, driver, bridge), containers (interfaces with
addresses and MAC, network mode), and edges for attachments (interface name, network
aliases), published ports (host address:port -> container port/protocol), links (with
their alias), `container:` sharing and `host` mode. With a plan, what it would create is
marked missing, what it would delete unexpected (drawn although the spec lacks it), and
what it would update as differing; a legend says so. `to_dot` and `to_mermaid` write it.

The output is sorted and carries no paths or times, so that it can be committed and
diffed. The spec is untrusted text: node identifiers are made from names but restricted to
`[A-Za-z0-9_]` (and made unique), and every label is escaped for its language; control,
format and separator characters (a newline, a bidi override) are shown as visible escapes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import ip_interface

from reconciler import drivers
from reconciler.spec.ports import PortMapping, host_ip_prefix
from reconciler.spec.types import ContainerSpec, NetworkSpec, Spec
from reconciler.state.model import HOST_NS, Address, KernelObject, State
from reconciler.state.plan import CREATE, DELETE, Plan

# drift states of an element: the plan creates, deletes or updates what it stands for
MISSING, UNEXPECTED, DIFFERS = "missing", "unexpected", "differs"
LEGEND = {
    MISSING: "missing: the plan creates it",
    UNEXPECTED: "unexpected: the plan deletes it",
    DIFFERS: "differs: the plan updates it",
}
COLOURS = {MISSING: ("#15803d", "#dcfce7"), UNEXPECTED: ("#b91c1c", "#fee2e2"), DIFFERS: ("#b45309", "#fef3c7")}
KIND_FILL = {"host": "#e5e7eb", "network": "#dbeafe", "container": "#ffffff"}
HOST_ID = "host"
# edge kinds, in the order they are written
ATTACHMENT, PORT, LINK, SHARES, HOST_MODE = "attachment", "port", "link", "shares", "host-mode"
EDGE_ORDER = (ATTACHMENT, PORT, LINK, SHARES, HOST_MODE)


@dataclass
class Node:
    id: str
    kind: str  # host, network, container
    lines: list[str]  # the first is its name
    status: str = ""  # "" or one of MISSING, UNEXPECTED, DIFFERS
    differences: set[str] = field(default_factory=set)  # kinds of objects that differ
    from_spec: bool = True  # False: drawn only because the plan deletes what it stands for


@dataclass
class Edge:
    source: str
    target: str
    kind: str
    label: str
    status: str = ""
    differences: set[str] = field(default_factory=set)
    from_spec: bool = True


@dataclass
class Topology:
    nodes: dict[str, Node] = field(default_factory=dict)  # by id, in drawing order
    edges: list[Edge] = field(default_factory=list)
    legend: bool = False  # drift is shown (graph --live)


class _Ids:
    """Node identifiers from untrusted names: a prefix, the name with anything but letters,
    digits and `_` replaced by `_`, and a counter when two names would meet."""

    def __init__(self):
        self.given: dict[tuple[str, str], str] = {}
        self.used: set[str] = {HOST_ID}

    def of(self, prefix: str, name: str) -> str:
        key = (prefix, name)
        if key not in self.given:
            base = f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', name)[:60]}"
            candidate, counter = base, 1
            while candidate in self.used:
                counter += 1
                candidate = f"{base}_{counter}"
            self.used.add(candidate)
            self.given[key] = candidate
        return self.given[key]


def visible(text: str) -> str:
    """`text` with control, format and separator characters written as escapes (a
    newline as `\\n`): a label shows what the name is, on one line."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch)[0] == "C"
        or unicodedata.category(ch) in ("Zl", "Zp") else ch
        for ch in text
    )


def port_label(mapping: PortMapping) -> str:
    """'*:8080 -> 80/tcp', '198.51.100.7:53 -> 53/udp', '[2001:db8::5]:443 -> 443/tcp'."""
    where = host_ip_prefix(mapping.host_ip) or "*:"
    return f"{where}{mapping.host_ports} -> {mapping.container_ports}/{mapping.protocol}"


def topology(spec: Spec, desired: State, plan: Plan | None = None) -> Topology:
    """What `to_dot` and `to_mermaid` draw; with `plan`, the drift it would correct."""
    builder = _Builder(spec, desired)
    builder.build()
    if plan is not None:
        builder.mark(plan)
    graph = builder.result
    host = graph.nodes[HOST_ID]
    if not host.status and not any(HOST_ID in (edge.source, edge.target) for edge in graph.edges):
        del graph.nodes[HOST_ID]
    return graph


class _Builder:
    def __init__(self, spec: Spec, desired: State):
        self.spec, self.desired = spec, desired
        self.ids = _Ids()
        self.result = Topology()
        self.network_names = {n.name for n in spec.networks}
        self.host_ifnames: dict[str, NetworkSpec] = {
            drivers.driver_for(n.driver).host_name(n): n for n in spec.networks}
        self.edges_by_key: dict[tuple[str, str, str], Edge] = {}
        # per container: its attachments (ifname -> network, MAC) and addresses, read once
        self.interfaces: dict[str, dict[str, tuple[str, str]]] = {}
        self.addresses: dict[tuple[str, str], list[Address]] = {}
        for obj in desired.objects.values():
            if _attachment_of(obj) is not None:
                self.interfaces.setdefault(obj.container, {})[_peer_ifname(obj)] = (obj.network, getattr(obj, "mac", ""))
            elif isinstance(obj, Address):
                self.addresses.setdefault((obj.netns, obj.ifname), []).append(obj)

    # --- the spec ---------------------------------------------------------------------------
    def build(self) -> None:
        self.result.nodes[HOST_ID] = Node(HOST_ID, "host", ["host namespace"])
        for network in sorted(self.spec.networks, key=lambda n: n.name):
            self._node(self.ids.of("net", network.name), "network", self._network_lines(network))
        containers = sorted(self.spec.containers, key=lambda c: c.name)
        for container in containers:
            self._node(self._container_id(container.name), "container", self._container_lines(container))
        for container in containers:
            self._container_edges(container)

    def _node(self, node_id: str, kind: str, lines: list[str], from_spec: bool = True) -> Node:
        # drawn only for what the plan deletes: unexpected, whatever else is said of it
        status = "" if from_spec else UNEXPECTED
        return self.result.nodes.setdefault(node_id, Node(node_id, kind, lines, status, from_spec=from_spec))

    def _container_id(self, name: str) -> str:
        return self.ids.of("ctr", name)

    def _network_lines(self, network: NetworkSpec) -> list[str]:
        host_name = drivers.driver_for(network.driver).host_name(network)
        lines = [network.name, f"{network.driver} {host_name}" if host_name else network.driver]
        if network.parent:
            lines.append(f"parent {network.parent} ({network.macvlan_mode})")
        if network.uplink:
            lines.append(f"uplink {network.uplink}")
        for family in network.families:
            # a network whose traffic never crosses the host (macvlan: the LAN's router; overlay: none)
            # has its gateway elsewhere or nowhere: an overlay's is drawn as none
            gateway = "" if drivers.driver_for(network.driver).always_internal \
                else f" gw {network.gateway_of(family)}"
            lines.append(f"{network.subnet_of(family)}{gateway}")
        flags = [flag for flag, on in (("internal", network.internal), ("icc off", not network.icc),
                                        ("no masquerade", not network.masquerade)) if on]
        if flags:
            lines.append(", ".join(flags))
        return lines

    def _container_lines(self, container: ContainerSpec) -> list[str]:
        lines = [container.name]
        if container.mode != "bridge":
            lines.append(f"network_mode {container.network_mode}")
        for ifname, (network, mac) in sorted(self.interfaces.get(container.name, {}).items()):
            cidrs = sorted(self.addresses.get((container.name, ifname), ()),
                           key=lambda a: (a.family, ip_interface(a.cidr)))
            lines.append(" ".join([f"{ifname}@{network}", *(a.cidr for a in cidrs), mac]).rstrip())
        return lines

    def _edge(self, source: str, target: str, kind: str, label: str, from_spec: bool = True) -> Edge:
        # one attachment per container and network, whatever its label says
        key = (source, target, kind if kind == ATTACHMENT else f"{kind}\0{label}")
        if key not in self.edges_by_key:
            edge = Edge(source, target, kind, label, "" if from_spec else UNEXPECTED, from_spec=from_spec)
            self.edges_by_key[key] = edge
            self.result.edges.append(edge)
        return self.edges_by_key[key]

    def _container_edges(self, container: ContainerSpec) -> None:
        me = self._container_id(container.name)
        interfaces = {network: ifname for ifname, (network, _) in self.interfaces.get(container.name, {}).items()}
        for attachment in sorted(container.networks, key=lambda a: a.network):
            label = interfaces.get(attachment.network, "")
            if attachment.aliases:
                label += f" aliases {', '.join(sorted(attachment.aliases))}"
            self._edge(me, self.ids.of("net", attachment.network), ATTACHMENT, label.strip())
        for mapping in container.ports:
            self._edge(HOST_ID, me, PORT, port_label(mapping))
        for link in sorted(container.links):
            target, _, alias = link.partition(":")
            self._edge(me, self._container_id(target), LINK, f"link as {alias}" if alias else "link")
        if container.shares is not None:
            self._edge(me, self._container_id(container.shares), SHARES, "shares its namespace")
        elif container.mode == "host":
            self._edge(me, HOST_ID, HOST_MODE, "the host's namespace")

    # --- the drift --------------------------------------------------------------------------
    def mark(self, plan: Plan) -> None:
        self.result.legend = True
        for action in plan.actions:
            element = self._element_of(action.obj)
            principal = _is_principal(action.obj)
            if action.op == CREATE and principal:
                element.status = MISSING
            elif action.op == DELETE and principal and not element.from_spec:
                element.status = UNEXPECTED
            elif element.from_spec:
                element.differences.add(action.kind)
                if not element.status:
                    element.status = DIFFERS

    def _element_of(self, obj: KernelObject) -> Node | Edge:
        """The node or edge that stands for `obj`; one drawn as unexpected when the spec has
        none (a live object the plan deletes)."""
        attachment = _attachment_of(obj)
        if attachment is not None:
            container, network = attachment
            source = self._container_node(container)
            target = self._network_node(network, getattr(obj, "bridge", ""))
            return self._edge(source.id, target.id, ATTACHMENT, _peer_ifname(obj), from_spec=False)
        network = getattr(obj, "network", None)
        if network is not None:
            return self._network_node(network, getattr(obj, "ifname", ""))
        netns = getattr(obj, "netns", HOST_NS)
        if netns != HOST_NS:
            return self._container_node(netns)
        ifname = getattr(obj, "ifname", None)
        if ifname in self.host_ifnames:
            return self.result.nodes[self.ids.of("net", self.host_ifnames[ifname].name)]
        return self.result.nodes[HOST_ID]

    def _container_node(self, name: str) -> Node:
        node_id = self._container_id(name)
        if node_id not in self.result.nodes:
            self._node(node_id, "container", [name], from_spec=False)
        return self.result.nodes[node_id]

    def _network_node(self, name: str, ifname: str) -> Node:
        if name in self.network_names:
            return self.result.nodes[self.ids.of("net", name)]
        if ifname in self.host_ifnames:  # a network's interface under another network's name
            return self.result.nodes[self.ids.of("net", self.host_ifnames[ifname].name)]
        node_id = self.ids.of("net", name)
        if node_id not in self.result.nodes:
            self._node(node_id, "network", [name, ifname] if ifname else [name], from_spec=False)
        return self.result.nodes[node_id]


def _attachment_of(obj: KernelObject) -> tuple[str, str] | None:
    """(container, network) for an object that attaches a container to a network (a veth)."""
    container, network = getattr(obj, "container", None), getattr(obj, "network", None)
    return (container, network) if container is not None and network is not None else None


def _peer_ifname(obj: KernelObject) -> str:
    return str(getattr(obj, "peer_ifname", None) or getattr(obj, "ifname", ""))


def _is_principal(obj: KernelObject) -> bool:
    """Whether the object is what its node or edge stands for (a namespace, a bridge, a
    veth) rather than a part of it (an address, a file, a route)."""
    return obj.is_container or getattr(obj, "network", None) is not None


def _status_lines(element: Node | Edge) -> list[str]:
    if element.status == DIFFERS:
        return [f"differs: {', '.join(sorted(element.differences))}"]
    return [element.status] if element.status else []


# --- DOT --------------------------------------------------------------------------------------
def dot_string(text: str) -> str:
    """A DOT quoted string showing `text` as it is: backslashes (which start Graphviz's
    label escapes), quotes and ampersands (which start the entities Graphviz decodes in
    labels: `&amp;`) escaped, control characters made visible."""
    escaped = visible(text).replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return f'"{escaped}"'


def _dot_label(lines: Iterable[str]) -> str:
    """A multi-line label: each line escaped, joined by Graphviz's line break `\\n`."""
    return '"' + "\\n".join(dot_string(line)[1:-1] for line in lines) + '"'


def _dot_style(kind: str, status: str) -> str:
    """Networks (and legend entries) rounded, containers square, the host a 3-D box;
    drift in its colours, missing dashed."""
    colour, fill = COLOURS.get(status, ("#374151", KIND_FILL.get(kind, "#ffffff")))
    shape = "box3d" if kind == "host" else "box"
    style = ",".join(["filled", *(["rounded"] if kind not in ("container", "host") else []),
                      *(["dashed"] if status == MISSING else ["bold"] if status else [])])
    return f'shape={shape}, style="{style}", color="{colour}", fillcolor="{fill}"'


EDGE_DOT_STYLE = {ATTACHMENT: "solid", PORT: "bold", LINK: "dashed", SHARES: "dotted", HOST_MODE: "dotted"}


def to_dot(graph: Topology) -> str:
    lines = ["digraph netreconcile {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']
    for node in graph.nodes.values():
        status = f', class="{node.status}"' if node.status else ""
        lines.append(f"  {node.id} [label={_dot_label(node.lines + _status_lines(node))}, "
                     f"{_dot_style(node.kind, node.status)}{status}];")
    for edge in _sorted_edges(graph):
        colour = COLOURS[edge.status][0] if edge.status else "#374151"
        style = "dashed" if edge.status == MISSING else EDGE_DOT_STYLE[edge.kind]
        direction = ", dir=none" if edge.kind == ATTACHMENT else ""
        status = f', class="{edge.status}"' if edge.status else ""
        label = _dot_label([edge.label, *_status_lines(edge)] if edge.label else _status_lines(edge))
        lines.append(f"  {edge.source} -> {edge.target} [label={label}, style={style}, color=\"{colour}\""
                     f"{direction}{status}];")
    if graph.legend:
        lines += ["  subgraph cluster_legend {", '    label="legend";', '    fontname="Helvetica";']
        for status, text in LEGEND.items():
            lines.append(f"    legend_{status} [label={dot_string(text)}, {_dot_style('legend', status)}];")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _sorted_edges(graph: Topology) -> list[Edge]:
    return sorted(graph.edges, key=lambda e: (EDGE_ORDER.index(e.kind), e.source, e.target, e.label))


# --- Mermaid ----------------------------------------------------------------------------------
_MERMAID_PLAIN = re.compile(r"[A-Za-z0-9 .,:/@*_+=()-]")


def mermaid_text(text: str) -> str:
    """`text` for inside a quoted Mermaid label: every character but letters, digits and
    harmless punctuation as an entity (`#34;`), so that no quote, bracket, pipe, `<`,
    newline or `#` can end the label or start markup."""
    return "".join(ch if _MERMAID_PLAIN.fullmatch(ch) else f"#{ord(ch)};" for ch in visible(text))


def _mermaid_label(lines: Iterable[str]) -> str:
    return '"' + "<br>".join(mermaid_text(line) for line in lines) + '"'


MERMAID_SHAPES = {"host": ('[["', '"]]'), "network": ('(["', '"])'), "container": ('["', '"]')}
MERMAID_ARROWS = {ATTACHMENT: "---", PORT: "==>", LINK: "-.->", SHARES: "-.->", HOST_MODE: "-.->"}
MERMAID_CLASSES = {
    "host": "fill:#e5e7eb,stroke:#374151", "network": "fill:#dbeafe,stroke:#1d4ed8",
    "container": "fill:#ffffff,stroke:#374151",
    **{status: f"fill:{fill},stroke:{colour},stroke-width:2px" for status, (colour, fill) in COLOURS.items()},
}


def to_mermaid(graph: Topology) -> str:
    lines = ["flowchart LR"]
    for name, style in MERMAID_CLASSES.items():
        lines.append(f"  classDef {name} {style}")
    for node in graph.nodes.values():
        opening, closing = MERMAID_SHAPES[node.kind]
        label = _mermaid_label(node.lines + _status_lines(node))
        lines.append(f"  {node.id}{opening}{label[1:-1]}{closing}:::{node.status or node.kind}")
    edges = _sorted_edges(graph)
    for edge in edges:
        label_lines = [edge.label, *_status_lines(edge)] if edge.label else _status_lines(edge)
        label = f"|{_mermaid_label(label_lines)}|" if label_lines else ""
        lines.append(f"  {edge.source} {MERMAID_ARROWS[edge.kind]}{label} {edge.target}")
    for index, edge in enumerate(edges):
        if edge.status:
            dash = ",stroke-dasharray:4 4" if edge.status == MISSING else ""
            lines.append(f"  linkStyle {index} stroke:{COLOURS[edge.status][0]},stroke-width:2px{dash}")
    if graph.legend:
        lines.append('  subgraph legend["legend"]')
        for status, text in LEGEND.items():
            lines.append(f"    legend_{status}[{_mermaid_label([text])}]:::{status}")
        lines.append("  end")
    return "\n".join(lines) + "\n"
