"""The `nodes:` section of a multi-host spec and the checks that tie containers to nodes,
and `NodeChoice`, the node (--node) a host applies the spec as.

A spec without `nodes:` is single-host: every container is built. With `nodes:`, every
container names its node, and a host builds the containers of its own node only; the
others are remote (they still take part in addressing and name discovery).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from reconciler.spec.containers import ContainerSection
from reconciler.spec.document import show
from reconciler.spec.types import ContainerSpec, NodeSpec
from reconciler.spec.values import did_you_mean, parse_address


@dataclass(frozen=True)
class NodeChoice:
    """The node a host applies the spec as, and how it was chosen (for messages)."""

    name: str
    given: bool = True  # False: the machine's hostname, the default of --node

    def describe(self) -> str:
        if self.given:
            return f"--node {self.name}"
        return f"this machine's hostname {self.name!r} (the default of --node)"


class NodeSection(ContainerSection):
    """Reads `nodes:` and checks each container's `node`."""

    def _nodes(self) -> list[NodeSpec]:
        nodes: list[NodeSpec] = []
        owners: dict[IPv4Address, str] = {}
        for name in self._mapping(("nodes",)):
            path = ("nodes", name)
            self._check_name(path, "node")
            address = self._node_address((*path, "address"), owners, f"node {name!r}")
            if address is not None:
                nodes.append(NodeSpec(str(name), address, self.doc.key_location(path)))
        return nodes

    def _node_address(self, path, owners: dict[IPv4Address, str], owner: str) -> IPv4Address | None:
        text = self._string(path)
        if text is None:
            return None
        address = parse_address(text, 4)
        if address is None:
            self.doc.problem(path, f"{show(text)} is not an IPv4 address")
            return None
        if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved:
            self.doc.problem(path, f"{address} cannot be a node's underlay address: it must be a unicast address "
                                   "the other nodes reach it at")
            return None
        issue = self._claim(owners, address, owner)
        if issue:
            self.doc.problem(path, issue)
        return address

    def _check_container_nodes(self, nodes: list[NodeSpec], containers: list[ContainerSpec]) -> None:
        """With `nodes:`, every container names one of them (and one that joins another's
        namespace, the same node); without, none names one."""
        declared = self._mapping(("nodes",))  # invalid nodes too: reported as such
        by_name = {container.name: container for container in containers}
        for container in containers:
            path = ("containers", container.name)
            if not declared and self.doc.get(("nodes",)) is None:
                if container.node is not None:
                    self.doc.problem((*path, "node"), "'node' needs the top-level 'nodes:' that lists the hosts "
                                     "(without it the spec is single-host)", at_key=True)
                continue
            if container.node is None:
                if self.doc.get((*path, "node")) is None:
                    self.doc.problem(path, f"container {container.name!r} names no node: in a spec with 'nodes:' "
                                     f"every container says which host builds it (node: one of "
                                     f"{', '.join(map(str, declared))})", at_key=True)
                continue
            if container.node not in declared:
                self.doc.problem((*path, "node"), f"{container.node!r} is not a node of this spec"
                                 f"{did_you_mean(container.node, declared)}")
                continue
            shared = by_name.get(container.shares) if container.shares else None
            if shared is not None and shared.node is not None and shared.node != container.node:
                self.doc.problem((*path, "node"), f"container {container.name!r} joins the network namespace of "
                                 f"{shared.name!r}, which is on node {shared.node!r}: both must be on one node")

    def _chosen_node(self, nodes: list[NodeSpec], choice: NodeChoice | None) -> str | None:
        """The node this host builds for: None for a single-host spec (any --node is
        ignored) or when no node is chosen (`validate` without --node)."""
        if not nodes or choice is None:
            return None
        if choice.name not in {node.name for node in nodes}:
            names = ", ".join(node.name for node in nodes)
            self.doc.problem(("nodes",), f"{choice.describe()} is not a node of this spec (its nodes: {names}); "
                             "apply with --node NAME", at_key=True)
            return None
        return choice.name
