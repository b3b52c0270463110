"""Addresses in a multi-host spec come from the spec alone: every node computes the same
address of each IP version for every container, whatever it observes on its own
containers and whatever order the nodes apply in (pure, no kernel)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.spec.loader import load_spec_text
from reconciler.spec.nodes import NodeChoice
from reconciler.state.ipam import assign_addresses, home_slot
from reconciler.state.model import Address, State

SUBNET = IPv4Network("10.200.0.0/27")  # small: home slots collide, so the probing is exercised
SUBNET6 = IPv6Network("fd42:200::/123")  # as small, of IPv6
SUBNETS = {4: SUBNET, 6: SUBNET6}
NODES = ("node-a", "node-b", "node-c")


def spec_text(members: list[tuple[str, str, int | None]], ipv6: bool = False) -> str:
    """An overlay network `mesh` (with IPv6 if `ipv6`) and its members (name, node, static
    host number or None); a static member has that host number in both families."""
    lines = ["version: 1", "nodes:"]
    lines += [f"  {node}: {{address: 198.51.100.{index + 1}}}" for index, node in enumerate(NODES)]
    lines += ["networks:", "  mesh:", "    driver: overlay", f"    subnet: {SUBNET}"]
    lines += ["    enable_ipv6: true", f"    subnet6: {SUBNET6}"] if ipv6 else []
    lines.append("containers:")
    for name, node, static in members:
        ipv6_address = f", ipv6_address: '{SUBNET6.network_address + static}'" if ipv6 and static else ""
        attachment = (f"{{mesh: {{ipv4_address: {SUBNET.network_address + static}{ipv6_address}}}}}" if static
                      else "[mesh]")
        lines.append(f"  {name}: {{node: {node}, networks: {attachment}}}")
    return "\n".join(lines) + "\n"


def live_state(draw, spec, node: str) -> State:
    """What a node may observe: its own containers with any addresses of the subnets."""
    objects = []
    for container in spec.containers:
        for subnet in SUBNETS.values():
            if container.node == node and draw(st.booleans()):
                host = draw(st.integers(2, subnet.num_addresses - 2))
                objects.append(Address(container.name, "eth0", f"{subnet.network_address + host}/{subnet.prefixlen}"))
    return State.of(objects)


@st.composite
def fleets(draw):
    names = draw(st.lists(st.sampled_from([f"c{i}" for i in range(24)]), unique=True, min_size=1, max_size=20))
    statics = iter(draw(st.permutations(range(2, SUBNET.num_addresses - 1))))
    members = [(name, draw(st.sampled_from(NODES)), next(statics) if draw(st.integers(0, 4)) == 0 else None)
               for name in names]
    text = spec_text(members, ipv6=True)
    first, second = draw(st.sampled_from(NODES)), draw(st.sampled_from(NODES))
    spec_first = load_spec_text(text, "fleet.yaml", NodeChoice(first))
    spec_second = load_spec_text(text, "fleet.yaml", NodeChoice(second))
    return spec_first, live_state(draw, spec_first, first), spec_second, live_state(draw, spec_second, second)


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_two_nodes_with_different_live_states_agree_on_every_address(fleet):
    spec_first, live_first, spec_second, live_second = fleet
    for family, subnet in SUBNETS.items():
        on_first = assign_addresses(spec_first, live_first, family=family)
        on_second = assign_addresses(spec_second, live_second, family=family)
        assert on_first == on_second
        assert len(set(on_first.values())) == len(on_first) == len(spec_first.containers)
        kept_free = {subnet.network_address, subnet.network_address + 1}  # the gateway's too, though on no bridge
        kept_free |= {subnet.broadcast_address} if family == 4 else set()  # IPv6 has no broadcast
        assert all(a in subnet and a not in kept_free for a in on_first.values())


def test_a_removed_container_gets_its_address_back_when_readded():
    members = [("api", "node-a", None), ("db", "node-b", None), ("cache", "node-b", None)]
    spec = load_spec_text(spec_text(members), "fleet.yaml", NodeChoice("node-a"))
    before = assign_addresses(spec, State())
    without = load_spec_text(spec_text([members[0], members[2]]), "fleet.yaml", NodeChoice("node-a"))
    assert assign_addresses(without, State()) == {key: before[key] for key in [("api", "mesh"), ("cache", "mesh")]}
    assert assign_addresses(spec, State()) == before  # db re-added: its old address again


def test_an_ipv6_address_starts_at_the_same_home_slot_rule():
    spec = load_spec_text(spec_text([("db", "node-a", None), ("web", "node-b", None)], ipv6=True), "fleet.yaml",
                          NodeChoice("node-a"))
    size = SUBNET6.num_addresses
    assert (home_slot("mesh", "db", size), home_slot("mesh", "web", size)) == (25, 0)  # 32 addresses, as SUBNET
    assert {key: str(address) for key, address in assign_addresses(spec, State(), family=6).items()} == {
        ("db", "mesh"): "fd42:200::19", ("web", "mesh"): "fd42:200::2"}


def test_a_dynamic_address_starts_at_the_containers_home_slot_and_skips_what_is_taken():
    # fixed values: a hash that changed between versions or runs would renumber a fleet
    assert (home_slot("mesh", "db", 32), home_slot("mesh", "web", 32)) == (25, 0)
    spec = load_spec_text(spec_text([("db", "node-a", None), ("web", "node-b", None)]), "fleet.yaml",
                          NodeChoice("node-a"))
    # web's home slot is the network address; .1 is the gateway: it gets .2
    assert assign_addresses(spec, State()) == {("db", "mesh"): IPv4Address("10.200.0.25"),
                                               ("web", "mesh"): IPv4Address("10.200.0.2")}


def test_a_single_host_spec_keeps_observed_addresses():
    text = "version: 1\nnetworks:\n  net: {subnet: 10.200.0.0/24}\ncontainers:\n  api: {networks: [net]}\n"
    spec = load_spec_text(text, "single.yaml", NodeChoice("anything"))
    live = State.of([Address("api", "eth0", "10.200.0.77/24")])
    assert assign_addresses(spec, live)[("api", "net")] == IPv4Address("10.200.0.77")
