"""Hypothesis strategies for specs and states, and an in-memory model of the kernel.

`KernelModel` applies plan actions with the kernel's side effects (a deleted
namespace takes its veths, addresses and routes; the last address of an interface
takes the routes through it) and refuses actions whose dependencies are missing or
whose names are still taken (a namespace name, a host interface name, an interface
name inside a namespace), and an address another interface still holds, so property
tests check both convergence and order.
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address, ip_interface

from hypothesis import strategies as st

from reconciler.spec.ports import PortMapping
from reconciler.spec.types import Attachment, ContainerSpec, HostSpec, Location, NetworkSpec, Spec
from reconciler.state.desired import build_desired
from reconciler.state.model import HOST_NS, Address, Bridge, File, Firewall, Netns, NetnsAlias, Route, State, Sysctl, Veth
from reconciler.state.plan import CREATE, DELETE, Plan

NETWORK_NAMES = ["front", "back", "data"]
CONTAINER_NAMES = ["web", "db", "cache", "api", "worker", "proxy"]


@st.composite
def specs(draw) -> Spec:
    network_names = draw(st.lists(st.sampled_from(NETWORK_NAMES), unique=True, max_size=3))
    networks = []
    for index, name in enumerate(network_names):
        third = draw(st.integers(0, 3)) * 10 + index  # distinct subnets per network
        subnet = IPv4Network(f"10.{third}.0.0/24")
        subnet6 = IPv6Network(f"fd42:{third}::/64") if draw(st.booleans()) else None
        networks.append(NetworkSpec(
            name=name, bridge=f"br-{name}", subnet=subnet, gateway=subnet.network_address + 1,
            mtu=draw(st.sampled_from([1500, 1400])), icc=draw(st.booleans()), masquerade=draw(st.booleans()),
            internal=draw(st.booleans()), location=Location("t.yaml", index + 1, 3),
            enable_ipv6=subnet6 is not None, subnet6=subnet6,
            gateway6=subnet6.network_address + 1 if subnet6 else None, masquerade6=draw(st.booleans()),
        ))
    containers = []
    if networks:
        for index, name in enumerate(draw(st.lists(st.sampled_from(CONTAINER_NAMES), unique=True, max_size=5))):
            chosen = draw(st.lists(st.sampled_from(networks), unique_by=lambda n: n.name, min_size=1,
                                   max_size=len(networks)))
            attachments = []
            for network in chosen:
                static = draw(st.booleans())
                address = network.subnet.network_address + 100 + index if static else None
                address6 = network.subnet6.network_address + 100 + index if static and network.ipv6 else None
                attachments.append(Attachment(network.name, ipv4_address=address, ipv6_address=address6,
                                              gw_priority=draw(st.integers(-1, 1)),
                                              location=Location("t.yaml", 20 + index, 5)))
            ports = draw(st.lists(st.builds(  # host ports apart per container: no clashes
                PortMapping, st.sampled_from([None, IPv4Address("127.0.0.1")]), st.just(8000 + 10 * index),
                st.just(8000 + 10 * index + draw(st.integers(0, 2))), st.integers(1, 100), st.sampled_from(["tcp", "udp"]),
            ), max_size=1))
            location = Location("t.yaml", 20 + index, 3)
            mode = draw(st.sampled_from(["bridge"] * 3 + ["none", "host"] + [f"container:{c.name}" for c in containers]))
            if mode == "bridge":
                containers.append(ContainerSpec(name, tuple(attachments), ports=tuple(ports), location=location))
            else:  # no networks of its own
                containers.append(ContainerSpec(name, network_mode=mode, location=location))
    return Spec("t.yaml", host=HostSpec(ip_forward=draw(st.sampled_from([True, False, None]))),
                networks=tuple(networks), containers=tuple(containers))


def mutations(state: State):
    """Strategy: `state` with objects dropped or fields changed, as drift would."""

    @st.composite
    def mutate(draw) -> State:
        objects = {}
        for key, obj in sorted(state.objects.items(), key=lambda item: repr(item[0])):
            choice = draw(st.integers(0, 5))
            if choice == 0 and not isinstance(obj, Sysctl):
                continue
            if choice == 1:
                obj = _drift(obj)
            objects[key] = obj
        return State(objects)

    return mutate()


def _drift(obj):
    if isinstance(obj, Bridge):
        return dataclasses.replace(obj, mtu=obj.mtu - 1, up=False, ipv6=not obj.ipv6)
    if isinstance(obj, Veth):
        return dataclasses.replace(obj, mac="02:00:00:00:00:01", peer_up=False, bridge="", hairpin=not obj.hairpin,
                                   ipv6=not obj.ipv6, host_ipv6=True)
    if isinstance(obj, Netns):
        return dataclasses.replace(obj, lo_up=False, ipv6=not obj.ipv6)
    if isinstance(obj, NetnsAlias):
        return dataclasses.replace(obj, target="?")
    if isinstance(obj, Route):
        return dataclasses.replace(obj, gateway="10.255.255.1" if obj.family == 4 else "fd42:ffff::1")
    if isinstance(obj, Sysctl):
        return dataclasses.replace(obj, value="0")
    if isinstance(obj, File):
        return dataclasses.replace(obj, content=obj.content + "# edited by hand\n")
    if isinstance(obj, Firewall):  # a rule deleted by hand
        lines = obj.ruleset.splitlines(keepends=True)
        return dataclasses.replace(obj, ruleset="".join(lines[:-3] + lines[-2:]))
    return obj


def live_states():
    """A state netreconcile could have left: some spec, then drift."""
    return specs().flatmap(lambda spec: mutations(build_desired(spec, State())))


class ModelError(AssertionError):
    pass


class KernelModel:
    def __init__(self, state: State):
        self.objects = dict(state.objects)

    def state(self) -> State:
        return State(dict(self.objects))

    def apply(self, plan: Plan) -> State:
        for action in plan.actions:
            if action.op == DELETE:
                self._delete(action.obj)
            else:
                self._require(action.obj)
                if action.op == CREATE:
                    self._require_free(action.obj)
                self.objects[action.key] = action.obj
        return self.state()

    def _present(self, predicate) -> bool:
        return any(predicate(o) for o in self.objects.values())

    def _require(self, obj) -> None:
        needs = []
        if isinstance(obj, File):
            needs = [lambda o: isinstance(o, (Netns, NetnsAlias)) and o.netns == obj.netns]
        elif isinstance(obj, NetnsAlias) and obj.target != HOST_NS:
            needs = [lambda o: isinstance(o, Netns) and o.netns == obj.target]
        elif isinstance(obj, Veth):
            needs = [lambda o: isinstance(o, Netns) and o.netns == obj.netns,
                     lambda o: isinstance(o, Bridge) and o.ifname == obj.bridge]
        elif isinstance(obj, Sysctl) and obj.setting.startswith("net/ipv4/conf/"):
            needs = [lambda o: isinstance(o, Bridge) and o.ifname == obj.setting.split("/")[3]]
        elif isinstance(obj, Address) and obj.netns == HOST_NS:
            needs = [lambda o: isinstance(o, Bridge) and o.ifname == obj.ifname]
        elif isinstance(obj, Address):
            needs = [lambda o: isinstance(o, Veth) and (o.netns, o.peer_ifname) == (obj.netns, obj.ifname)]
        elif isinstance(obj, Route):
            gateway = ip_address(obj.gateway)
            needs = [lambda o: isinstance(o, Address) and (o.netns, o.ifname) == (obj.netns, obj.ifname)
                     and gateway in ip_interface(o.cidr).network]
        for need in needs:
            if not self._present(need):
                raise ModelError(f"{obj} created before what it needs")

    def _require_free(self, obj) -> None:
        """The kernel refuses a second interface or namespace of one name; an IP on two
        interfaces at once answers ARP twice on the network."""
        taken = [o for o in self.objects.values() if _names(o) & _names(obj)]
        if taken:
            raise ModelError(f"{obj} created while {taken[0]} holds its name")
        if isinstance(obj, Address):
            ip = obj.cidr.split("/")[0]
            if self._present(lambda o: isinstance(o, Address) and o.cidr.split("/")[0] == ip and o.key != obj.key):
                raise ModelError(f"{obj} created while another interface holds {ip}")

    def _delete(self, obj) -> None:
        if obj.key not in self.objects:
            raise ModelError(f"deleting {obj.key}, which is not there")
        del self.objects[obj.key]
        for key, other in list(self.objects.items()):
            netns = getattr(other, "netns", HOST_NS)
            if isinstance(obj, Netns) and isinstance(other, (Veth, Address, Route, File)) and netns == obj.netns:
                del self.objects[key]
            elif isinstance(obj, NetnsAlias) and isinstance(other, File) and netns == obj.netns:
                del self.objects[key]
            elif isinstance(obj, Bridge) and isinstance(other, Address) and other.netns == HOST_NS \
                    and other.ifname == obj.ifname:
                del self.objects[key]
            elif isinstance(obj, Bridge) and isinstance(other, Sysctl) and other.setting.startswith(
                    f"net/ipv4/conf/{obj.ifname}/"):
                del self.objects[key]
            elif isinstance(obj, Bridge) and isinstance(other, Veth) and other.bridge == obj.ifname:
                self.objects[key] = dataclasses.replace(other, bridge="")
            elif isinstance(obj, Veth) and isinstance(other, (Address, Route)) \
                    and (netns, other.ifname) == (obj.netns, obj.peer_ifname):
                del self.objects[key]
        if isinstance(obj, Address) and obj.family == 4:  # IPv6 routes outlive the interface's addresses
            still = self._present(lambda o: isinstance(o, Address) and o.family == 4
                                  and (o.netns, o.ifname) == (obj.netns, obj.ifname))
            if not still:
                for key, other in list(self.objects.items()):
                    if isinstance(other, Route) and other.family == 4 and (other.netns, other.ifname) == (
                            obj.netns, obj.ifname):
                        del self.objects[key]


def _names(obj) -> set[tuple]:
    """Names only one object can hold at a time (written apart from the planner's on purpose)."""
    if isinstance(obj, (Netns, NetnsAlias)):
        return {("/run/netns", obj.netns)}
    if isinstance(obj, Bridge):
        return {("interface", HOST_NS, obj.ifname)}
    if isinstance(obj, Veth):
        return {("interface", HOST_NS, obj.host_ifname), ("interface", obj.netns, obj.peer_ifname)}
    return set()
