"""Overlay networks without the kernel: in the spec `vni` (given or derived stably), the
MTU default of 1450, what an overlay network cannot have, unique VNIs; and the objects a node wants
of an overlay network (bridge, VXLAN device, static FDB and neighbour entries)."""

from __future__ import annotations

import pytest

from reconciler.drivers.overlay import OVERLAY, derived_vni, overlay_objects, vxlan_mac
from reconciler.errors import SpecError
from reconciler.kernel.netlink import ZERO_MAC
from reconciler.spec.loader import load_spec_text
from reconciler.spec.nodes import NodeChoice, NodeSection
from reconciler.state.ipam import assign_addresses
from reconciler.state.desired import build_desired
from reconciler.state.model import HOST_NS, Address, Bridge, FdbEntry, File, NeighEntry, State, Vxlan
from reconciler.spec.yamlread import parse_yaml

from tests.test_nodes import TWO_NODES

SPEC = TWO_NODES + """\
networks:
  mesh:
    driver: overlay
    subnet: 10.200.0.0/24
  local:
    subnet: 10.201.0.0/24
containers:
  api: {node: node-a, networks: [mesh, local]}
  db: {node: node-b, networks: [mesh]}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as error:
        load_spec_text(text, "spec.yaml")
    return [str(problem) for problem in error.value.problems]


def built_networks(text: str):
    """The networks as the section checks build them, whatever they report."""
    return {network.name: network for network in NodeSection(parse_yaml(text, "spec.yaml"))._networks()}


def test_an_overlay_network_is_internal_and_beside_the_host():
    mesh = load_spec_text(SPEC, "spec.yaml", NodeChoice("node-a")).network("mesh")
    assert (mesh.internal, OVERLAY.through_host) == (True, False)  # no gateway on the host: no default route


def test_vni_is_derived_stably_from_the_name_and_the_mtu_defaults_to_1450():
    mesh = built_networks(SPEC)["mesh"]
    assert (mesh.driver, mesh.bridge, mesh.mtu, mesh.vni) == ("overlay", "mesh", 1450, derived_vni("mesh"))
    assert derived_vni("mesh") == 15585554  # fixed: a changed derivation would split a fleet mid-upgrade
    assert 1 <= derived_vni("x" * 63) < 1 << 24
    given = built_networks(SPEC.replace("    driver: overlay\n", "    driver: overlay\n    vni: 4242\n    mtu: 1400\n"))
    assert (given["mesh"].vni, given["mesh"].mtu) == (4242, 1400)
    assert built_networks(SPEC)["local"].mtu == 1500
    assert OVERLAY.through_host is False


@pytest.mark.parametrize("key, value, why", [
    ("masquerade", "true", "the bridge has no address, so nothing leaves through the host"),
    ("uplink", "eth1", "the overlay's only port beyond its containers is its VXLAN device"),
    ("internal", "true", "an overlay network is internal already"),
    ("icc", "false", "traffic between its containers does not go through the host's firewall"),
    ("masquerade6", "false", "the bridge has no address, so nothing leaves through the host"),
])
def test_what_an_overlay_network_cannot_have_is_refused_at_its_key(key, value, why):
    found = problems(SPEC.replace("    driver: overlay\n", f"    driver: overlay\n    {key}: {value}\n"))
    assert any(p.startswith(f"spec.yaml:8:5: networks.mesh.{key}: '{key}' does not apply to an overlay network: "
                            f"{why}") for p in found), found


def test_ports_of_a_container_only_on_overlay_networks_are_refused():
    found = problems(SPEC.replace("  db: {node: node-b, networks: [mesh]}", "  db: {node: node-b, networks: [mesh], "
                                  "ports: ['8080:80']}"))
    assert "spec.yaml:13:40: containers.db.ports: container 'db' is only on overlay networks, whose traffic does not " \
           "go through the host: its ports cannot be published (publish them through a bridge network it is also " \
           "on)" in found, found
    # api is also on a bridge network: its ports go through that one
    load_spec_text(SPEC.replace("[mesh, local]}", "[mesh, local], ports: ['8080:80']}"), "spec.yaml")


def test_two_overlay_networks_with_one_vni_are_refused():
    text = SPEC.replace("  local:\n    subnet: 10.201.0.0/24\n",
                        "  other:\n    driver: overlay\n    vni: 4242\n    subnet: 10.202.0.0/24\n").replace(
        "    driver: overlay\n    subnet: 10.200", "    driver: overlay\n    vni: 4242\n    subnet: 10.200").replace(
        "[mesh, local]", "[mesh]")
    assert "spec.yaml:12:10: networks.other.vni: VNI 4242 is already the one of overlay network 'mesh'" in problems(text)


def _on_two_nodes(driver: str, on_a: int, on_b: int) -> str:
    """`on_a` containers of node-a and `on_b` of node-b on network `mesh` (of `driver`)."""
    members = [("node-a", n) for n in range(on_a)] + [("node-b", n) for n in range(on_b)]
    return (TWO_NODES + f"networks:\n  mesh: {{driver: {driver}, subnet: 10.200.0.0/20}}\ncontainers:\n"
            + "".join(f"  {node}-c{n}: {{node: {node}, networks: [mesh]}}\n" for node, n in members))


def test_one_node_holds_at_most_1022_containers_of_an_overlay_network_and_validate_says_why():
    """Each node's bridge of the network has the VXLAN device as one of its 1023 ports: the
    1023rd container of one node would be refused by the kernel ("Exchange full") mid-apply."""
    load_spec_text(_on_two_nodes("overlay", 1022, 1022), "spec.yaml")  # 2044 in the spec: 1022 per bridge
    assert problems(_on_two_nodes("overlay", 1023, 5)) == [
        "spec.yaml:6:3: networks.mesh: 1023 containers of node 'node-a' are attached but a Linux bridge holds at "
        "most 1023 ports (the kernel's BR_MAX_PORTS: 1024 port numbers, 0 reserved), and on each node its VXLAN "
        "device takes one: spread the containers over several networks or nodes"]


def test_a_bridge_network_of_a_multi_host_spec_is_one_bridge_per_node():
    load_spec_text(_on_two_nodes("bridge", 1023, 1023), "spec.yaml")
    assert problems(_on_two_nodes("bridge", 3, 1024)) == [
        "spec.yaml:6:3: networks.mesh: 1024 containers of node 'node-b' are attached but a Linux bridge holds at "
        "most 1023 ports (the kernel's BR_MAX_PORTS: 1024 port numbers, 0 reserved): spread the containers over "
        "several networks or nodes"]


def test_an_overlay_network_needs_nodes():
    text = SPEC.replace("nodes:\n  node-a: {address: 198.51.100.1}\n  node-b: {address: 198.51.100.2}\n", "").replace(
        "node: node-a, ", "").replace("node: node-b, ", "")
    assert ("spec.yaml:4:13: networks.mesh.driver: an overlay network spans the hosts of a multi-host spec: it needs "
            "the top-level 'nodes:' (each host's underlay address, its VXLAN endpoint)") in problems(text)


# --- what a node wants of an overlay network (pure) ------------------------------------------------

THREE_NODES = """\
version: 1
nodes:
  node-a: {address: 198.51.100.1}
  node-b: {address: 198.51.100.2}
  node-c: {address: 198.51.100.3}
networks:
  mesh: {driver: overlay, vni: 4242, subnet: 10.200.0.0/24}
containers:
  api: {node: node-a, networks: [mesh]}
  db: {node: node-b, networks: {mesh: {ipv4_address: 10.200.0.20}}}
  cache: {node: node-b, networks: {mesh: {ipv4_address: 10.200.0.30, mac_address: '02:00:00:00:00:30'}}}
  queue: {node: node-c, networks: {mesh: {ipv4_address: 10.200.0.40}}}
"""


def wanted(text: str, node: str) -> set:
    """The overlay objects of network mesh on `node`."""
    spec = load_spec_text(text, "spec.yaml", NodeChoice(node))
    return set(overlay_objects(spec, spec.network("mesh"), assign_addresses(spec, State()),
                               assign_addresses(spec, State(), family=6)))


def test_a_node_wants_a_bridge_a_vxlan_and_static_entries_for_every_remote_member():
    found = wanted(THREE_NODES, "node-a")
    device = "vxlan4242"
    assert {o for o in found if isinstance(o, (Bridge, Vxlan))} == {
        Bridge("mesh", "mesh", "02:42:0a:c8:00:01", 1450),
        Vxlan(device, "mesh", 4242, "198.51.100.1", "mesh", vxlan_mac(built_networks(THREE_NODES)["mesh"]), 1450)}
    assert {(o.mac, o.remote) for o in found if isinstance(o, FdbEntry)} == {
        ("02:42:0a:c8:00:14", "198.51.100.2"), ("02:00:00:00:00:30", "198.51.100.2"),
        ("02:42:0a:c8:00:28", "198.51.100.3"),
        (ZERO_MAC, "198.51.100.2"), (ZERO_MAC, "198.51.100.3")}  # one per other node with members, never itself
    assert {(o.address, o.mac) for o in found if isinstance(o, NeighEntry)} == {
        ("10.200.0.20", "02:42:0a:c8:00:14"), ("10.200.0.30", "02:00:00:00:00:30"), ("10.200.0.40", "02:42:0a:c8:00:28")}
    assert all(o.device == device for o in found if isinstance(o, (FdbEntry, NeighEntry)))


def test_a_node_without_members_has_nothing_of_the_network():
    text = THREE_NODES.replace("  api: {node: node-a, networks: [mesh]}\n", "")
    assert wanted(text, "node-a") == set()
    assert {(o.mac, o.remote) for o in wanted(text, "node-b") if isinstance(o, FdbEntry)} == {
        ("02:42:0a:c8:00:28", "198.51.100.3"), (ZERO_MAC, "198.51.100.3")}


def test_adding_a_remote_container_changes_exactly_its_entries():
    before = wanted(THREE_NODES, "node-a")
    after = wanted(THREE_NODES + "  web: {node: node-b, networks: {mesh: {ipv4_address: 10.200.0.50}}}\n", "node-a")
    assert after - before == {FdbEntry("vxlan4242", "02:42:0a:c8:00:32", "198.51.100.2"),
                              NeighEntry("vxlan4242", "10.200.0.50", "02:42:0a:c8:00:32")}
    assert before - after == set()
    without_queue = wanted(THREE_NODES.replace("  queue: {node: node-c, networks: {mesh: {ipv4_address: "
                                               "10.200.0.40}}}\n", ""), "node-a")
    assert before - without_queue == {FdbEntry("vxlan4242", "02:42:0a:c8:00:28", "198.51.100.3"),
                                      NeighEntry("vxlan4242", "10.200.0.40", "02:42:0a:c8:00:28"),
                                      FdbEntry("vxlan4242", ZERO_MAC, "198.51.100.3")}


# --- IPv6 on an overlay network (pure) -------------------------------------------------------------

THREE_NODES6 = THREE_NODES.replace(
    "  mesh: {driver: overlay, vni: 4242, subnet: 10.200.0.0/24}",
    "  mesh: {driver: overlay, vni: 4242, subnet: 10.200.0.0/24, enable_ipv6: true, subnet6: 'fd42:200::/64'}").replace(
    "{ipv4_address: 10.200.0.20}", "{ipv4_address: 10.200.0.20, ipv6_address: 'fd42:200::20'}")


def test_with_ipv6_a_remote_member_has_a_neighbour_entry_per_family_and_the_bridge_no_address():
    found = wanted(THREE_NODES6, "node-a")
    spec = load_spec_text(THREE_NODES6, "spec.yaml", NodeChoice("node-a"))
    addresses6 = assign_addresses(spec, State(), family=6)
    neigh = {(o.address, o.mac) for o in found if isinstance(o, NeighEntry)}
    assert neigh == {
        ("10.200.0.20", "02:42:0a:c8:00:14"), ("10.200.0.30", "02:00:00:00:00:30"), ("10.200.0.40", "02:42:0a:c8:00:28"),
        ("fd42:200::20", "02:42:0a:c8:00:14"), (str(addresses6[("cache", "mesh")]), "02:00:00:00:00:30"),
        (str(addresses6[("queue", "mesh")]), "02:42:0a:c8:00:28")}
    assert addresses6[("cache", "mesh")] in spec.network("mesh").subnet6
    # the FDB entries are per MAC, not per address: the same as without IPv6
    assert {o for o in found if isinstance(o, FdbEntry)} == {o for o in wanted(THREE_NODES, "node-a")
                                                             if isinstance(o, FdbEntry)}
    (vxlan,) = [o for o in found if isinstance(o, Vxlan)]
    (bridge,) = [o for o in found if isinstance(o, Bridge)]
    assert (vxlan.ipv6, bridge.ipv6) == (True, False)
    assert not [o for o in build_desired(spec, State()).objects.values()
                if isinstance(o, Address) and o.netns == HOST_NS]  # no gateway of either family on the host


def test_the_vxlan_device_has_ipv6_on_quietly_only_with_the_networks_ipv6():
    def settings(ipv6: bool, changed=lambda *fields: True, creating=True):
        device = Vxlan("vxlan4242", "mesh", 4242, "198.51.100.1", "mesh", "02:00:00:00:00:01", 1450, ipv6=ipv6)
        return [(path.rsplit("/", 1)[-1], value) for _, path, value in OVERLAY.settings(device, changed, creating)]

    # the kernel refuses IPv6 neighbour entries on a device without IPv6; on, it makes no address of its own
    assert settings(True) == [("addr_gen_mode", "1"), ("dad_transmits", "0"), ("router_solicitations", "0"),
                              ("disable_ipv6", "0")]
    assert settings(False) == [("disable_ipv6", "1")]
    assert settings(True, changed=lambda *fields: "ipv6" not in fields, creating=False) == []


def test_ipv6_addresses_of_an_overlay_network_are_the_same_on_every_node():
    on = {node: assign_addresses(load_spec_text(THREE_NODES6, "spec.yaml", NodeChoice(node)), State(), family=6)
          for node in ("node-a", "node-b", "node-c")}
    assert on["node-a"] == on["node-b"] == on["node-c"]
    assert str(on["node-a"][("db", "mesh")]) == "fd42:200::20"


# --- host-gateway on a container of an overlay network --------------------------------------------

def test_host_gateway_names_the_gateway_of_the_first_network_that_has_one_on_the_host():
    """An overlay network has no gateway on any host: its `gateway` is only kept free."""
    text = SPEC.replace("  api: {node: node-a, networks: [mesh, local]}",
                        "  api: {node: node-a, networks: [mesh, local], extra_hosts: ['gw:host-gateway']}")
    spec = load_spec_text(text, "spec.yaml", NodeChoice("node-a"))
    hosts = next(o for o in build_desired(spec, State()).objects.values()
                 if isinstance(o, File) and (o.netns, o.filename) == ("api", "hosts"))
    assert [line.split() for line in hosts.content.splitlines() if "gw" in line.split()] == [["10.201.0.1", "gw"]]


def test_host_gateway_on_a_container_only_on_overlay_networks_is_refused():
    text = SPEC.replace("  db: {node: node-b, networks: [mesh]}",
                        "  db: {node: node-b, networks: [mesh], extra_hosts: ['gw:host-gateway']}")
    assert problems(text) == [
        "spec.yaml:13:40: containers.db.extra_hosts: host-gateway needs a network with a gateway on the host: "
        "container 'db' is only on overlay networks, which have none (put it on a bridge network too)"]
