"""driver: macvlan without the kernel: its spec options and Docker's rules for them (the
`macvlan` vectors), the desired state (a macvlan per attachment, no host objects, no
firewall), the plan-time check of the parent against the live host, the planner's
replace-or-update choice, the requests (the codec's bytes) and their decoding."""

from __future__ import annotations

import dataclasses
import os
import struct

import pytest

from reconciler import drivers
from reconciler.drivers.macvlan import MACVLAN, macvlan_alias, shim_name, vlan_alias
from reconciler.errors import SpecError
from reconciler.kernel import netlink as nl
from reconciler.kernel.observe_containers import container_link
from reconciler.kernel import support
from reconciler.kernel.support import vlan_supported
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired, used_not_owned
from reconciler.state.model import (
    HOST_NS, MISSING, Bridge, Firewall, Macvlan, Route, Shim, State, Sysctl, Veth, Vlan,
)
from reconciler.state.planner import plan
from tests.docker_vectors import load_vectors

FILE = "spec.yaml"
SPEC = """\
version: 1
networks:
  lan:
    driver: macvlan
    parent: {parent}
    subnet: 198.51.100.0/24
{extra}containers:
  web:
    networks: [lan]
"""
VECTORS = {vector["name"]: vector for vector in load_vectors("macvlan")}


def spec_text(parent: str = "eth1", **extra: str) -> str:
    return SPEC.format(parent=parent, extra="".join(f"    {key}: {value}\n" for key, value in extra.items()))


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, FILE)
    return [str(problem) for problem in caught.value.problems]


def live_problems(text: str, live: State, desired: State | None = None) -> list[str]:
    spec = load_spec_text(text, FILE)
    desired = desired if desired is not None else build_desired(spec, live)
    return [str(p) for network in spec.networks for p in drivers.driver_for(network.driver).live_problems(
        network, desired, live)]


def host(**mtus: int) -> State:
    """A live host with foreign interfaces of these MTUs."""
    return State(foreign_links=frozenset(mtus), host_link_mtus=dict(mtus))


# --- Docker's vectors -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", VECTORS["TestSetMacVlanMode"]["input"]["modes"])
def test_docker_macvlan_modes_are_accepted_and_rejected_as_docker_does(mode):
    expected = VECTORS["TestSetMacVlanMode"]["expected"]
    text = spec_text(macvlan_mode=f'"{mode}"')
    if mode in expected["accepted"]:
        assert load_spec_text(text, FILE).network("lan").macvlan_mode == mode
    else:
        assert mode in expected["rejected"]
        assert problems(text) == [f"spec.yaml:7:19: networks.lan.macvlan_mode: must be one of 'bridge', 'private', "
                                  f"'vepa', 'passthru', got '{mode}'"]


@pytest.mark.parametrize(("parent", "verdict"), VECTORS["TestValidateSubLink"]["input"]["parent_values"].items())
def test_docker_parent_rules_hold_at_load_or_at_plan_time(parent, verdict):
    """valid: the spec loads; invalid: a located spec error; parent missing: the spec
    loads and the plan-time check finds no such host interface (the host has only lo)."""
    text = spec_text(parent=f'"{parent}"')
    if verdict == "invalid":
        (problem,) = problems(text)
        assert problem.startswith(f"spec.yaml:5:13: networks.lan.parent: {parent!r} is not a valid macvlan parent")
        return
    assert load_spec_text(text, FILE).network("lan").parent == parent
    if verdict == "invalid (parent missing)":
        base = parent.split(".")[0]
        assert live_problems(text, host(lo=65536)) == [
            f"spec.yaml:5:13: network lan: parent {parent}: {base} does not exist in the host namespace; nothing was "
            "changed"]
    else:
        assert verdict == "valid"


def test_the_parent_rules_say_why():
    def issue(parent: str) -> str:
        (problem,) = problems(spec_text(parent=f'"{parent}"'))
        return problem.split("is not a valid macvlan parent: ")[1]

    assert issue("lo") == "the loopback interface cannot carry macvlan interfaces (the kernel refuses it)"
    assert issue("eth0.1.2") == "an 802.1Q parent is NAME.VID, with exactly one dot"
    assert issue("eth0.4095") == "the VLAN id '4095' of an 802.1Q parent NAME.VID is not an integer from 1 to 4094"
    assert issue("eth0.0") == "the VLAN id '0' of an 802.1Q parent NAME.VID is not an integer from 1 to 4094"
    assert issue("eth0.x") == "the VLAN id 'x' of an 802.1Q parent NAME.VID is not an integer from 1 to 4094"
    assert issue("lo:10").startswith("use letters, digits")
    assert load_spec_text(spec_text(parent="eth0.4094"), FILE).network("lan").parent == "eth0.4094"


# --- the spec ---------------------------------------------------------------------------------

def test_a_macvlan_network_needs_a_parent():
    text = spec_text().replace("    parent: eth1\n", "")
    assert problems(text) == ["spec.yaml:3:3: networks.lan: a macvlan network needs 'parent': the existing host "
                              "interface its containers' interfaces are made on"]


@pytest.mark.parametrize("key", ["icc", "masquerade", "internal"])
def test_host_side_options_are_refused_on_a_macvlan_network(key):
    (problem,) = problems(spec_text(**{key: "false"}))
    assert problem.startswith(f"spec.yaml:7:5: networks.lan.{key}: '{key}' does not apply to a macvlan network: ")


def test_each_drivers_options_are_refused_on_the_others_networks():
    assert problems(spec_text(bridge="br-lan")) == [
        "spec.yaml:7:5: networks.lan.bridge: 'bridge' is an option of driver bridge, and this network's driver is "
        "macvlan"]
    text = "version: 1\nnetworks:\n  front:\n    subnet: 10.1.0.0/24\n    parent: eth1\n    macvlan_mode: vepa\n"
    assert problems(text) == [
        "spec.yaml:5:5: networks.front.parent: 'parent' is an option of driver macvlan, and this network's driver is "
        "bridge",
        "spec.yaml:6:5: networks.front.macvlan_mode: 'macvlan_mode' is an option of driver macvlan, and this "
        "network's driver is bridge"]


def test_ports_of_a_container_only_on_macvlan_networks_are_refused():
    text = spec_text() + "    ports: ['8080:80']\n"
    assert problems(text) == [
        "spec.yaml:10:5: containers.web.ports: container 'web' is only on macvlan networks, whose traffic does not "
        "go through the host: its ports cannot be published (it is reachable on the LAN at its own address)"]


def test_overlapping_subnets_are_refused_on_different_parents_too():
    text = spec_text() + "".join([
        "", ])
    text = text.replace("containers:\n", "  lan2:\n    driver: macvlan\n    parent: eth2\n"
                                         "    subnet: 198.51.100.128/25\ncontainers:\n")
    assert problems(text) == ["spec.yaml:10:13: networks.lan2.subnet: 198.51.100.128/25 overlaps 198.51.100.0/24 of "
                              "network 'lan'"]


# --- the desired state ------------------------------------------------------------------------

def test_an_attachment_is_a_macvlan_in_the_container_with_the_route_to_the_lans_router():
    desired = build_desired(load_spec_text(spec_text(gateway="198.51.100.254", macvlan_mode="vepa", mtu="1400"),
                                           FILE), State())
    (macvlan,) = desired.of_kind(Macvlan)
    assert macvlan == Macvlan("web", "lan", "web", "eth0", "eth1", "vepa", "02:42:c6:33:64:01", 1400)
    (route,) = desired.of_kind(Route)
    assert (route.netns, route.gateway, route.ifname) == ("web", "198.51.100.254", "eth0")
    # nothing in the host namespace: no bridge, no address, no firewall, no forwarding
    assert not [o for o in desired.objects.values() if getattr(o, "netns", None) == HOST_NS]
    assert not desired.of_kind(Firewall) and not desired.of_kind(Sysctl) and not desired.of_kind(Veth)


def test_the_gateway_defaults_to_the_first_address_and_is_never_handed_out():
    desired = build_desired(load_spec_text(spec_text(), FILE), State())
    (route,) = desired.of_kind(Route)
    assert route.gateway == "198.51.100.1"
    assert ("address", "web", "eth0", "198.51.100.2/24") in desired.objects


MIXED = """\
version: 1
networks:
  lan: {driver: macvlan, parent: eth1, subnet: 198.51.100.0/24}
  front: {subnet: 10.1.0.0/24}
containers:
  web:
    networks: {lan: {gw_priority: 10}, front: {}}
    ports: ['8080:80']
"""


def test_ports_of_a_container_also_on_a_bridge_network_are_published_there_only():
    desired = build_desired(load_spec_text(MIXED, FILE), State())
    (firewall,) = desired.of_kind(Firewall)
    assert firewall.elements == ("published_ip_tcp 8080 : 10.1.0.2 . 80",)
    assert "198.51.100" not in firewall.ruleset  # the macvlan network has no rules
    assert [r.ifname for r in desired.of_kind(Route)] == ["eth0"]  # its default route: the LAN's router


# --- the parent, checked against the live host ----------------------------------------------

def test_the_parent_must_be_there_not_ours_and_not_smaller_than_the_mtu():
    text = spec_text()
    assert live_problems(text, host(eth1=1500)) == []
    assert live_problems(text, host(eth2=1500)) == [
        "spec.yaml:5:13: network lan: parent eth1 does not exist in the host namespace; nothing was changed"]
    ours = State.of([Bridge("eth1", "other", "02:42:00:00:00:01", 1500)], host_link_mtus={"eth1": 1500})
    assert live_problems(text, ours) == [
        "spec.yaml:5:13: network lan: parent eth1 is an interface netreconcile manages; a parent must be one it "
        "does not own; nothing was changed"]
    assert live_problems(spec_text(mtu="9000"), host(eth1=1500)) == [
        "spec.yaml:5:13: network lan: mtu 9000 is larger than the MTU 1500 of parent eth1: set the network's mtu "
        "to 1500 or less; nothing was changed"]


@pytest.mark.parametrize("bridge_first", [False, True])
def test_a_parent_the_spec_makes_its_own_bridge_is_refused(bridge_first):
    networks = ["  lan: {driver: macvlan, parent: br-front, subnet: 198.51.100.0/24}\n",
                "  front: {subnet: 10.1.0.0/24, bridge: br-front}\n"]
    text = "version: 1\nnetworks:\n" + "".join(networks[::-1] if bridge_first else networks) + "containers: {}\n"
    with pytest.raises(SpecError) as error:
        load_spec_text(text, FILE)
    assert ("parent br-front is the bridge of network 'front'" if bridge_first
            else "bridge name 'br-front' is the parent of network 'lan'") in str(error.value)


def test_macvlan_networks_share_a_parent_but_not_in_passthru_mode():
    two = ("version: 1\nnetworks:\n  a: {{driver: macvlan, parent: eth1, subnet: 198.51.100.0/25{mode}}}\n"
           "  b: {{driver: macvlan, parent: eth1, subnet: 198.51.100.128/25}}\ncontainers: {{}}\n")
    load_spec_text(two.format(mode=""), FILE)
    with pytest.raises(SpecError) as error:
        load_spec_text(two.format(mode=", macvlan_mode: passthru"), FILE)
    assert ("networks.b.parent: parent eth1 is already the passthru parent of network 'a': in passthru mode a "
            "parent serves one network only") in str(error.value)


# --- the plan ---------------------------------------------------------------------------------

def test_a_new_mode_or_parent_replaces_the_macvlan_and_a_new_mtu_changes_it_in_place():
    before = build_desired(load_spec_text(spec_text(), FILE), State())
    for extra, expected in (({"macvlan_mode": "private"}, [("delete", "macvlan"), ("create", "macvlan")]),
                            ({"mtu": "1400"}, [("update", "macvlan")])):
        after = build_desired(load_spec_text(spec_text(**extra), FILE), before)
        assert [(a.op, a.kind) for a in plan(after, before).actions if a.kind == "macvlan"] == expected
    moved = build_desired(load_spec_text(spec_text(parent="eth2"), FILE), before)
    actions = plan(moved, before).actions
    assert [(a.op, a.kind) for a in actions if a.kind == "macvlan"] == [("delete", "macvlan"), ("create", "macvlan")]
    # the replaced interface's address and route go with it and are made again
    assert {(a.op, a.kind) for a in actions} == {("delete", "macvlan"), ("create", "macvlan"), ("create", "address"),
                                                 ("create", "route")}


def test_an_unmarked_macvlan_in_an_owned_namespace_is_replaced():
    before = build_desired(load_spec_text(spec_text(), FILE), State())
    (wanted,) = before.of_kind(Macvlan)
    link = nl.Link(7, "eth0", True, 1500, wanted.mac, 0, "macvlan", "", 2, False, False, link_netnsid=0,
                   macvlan_mode="bridge")
    unmarked = container_link(MACVLAN, link, "web", {2: "eth1"})
    assert unmarked == dataclasses.replace(wanted, container=MISSING, network=MISSING)
    live = State.of([unmarked if o.kind == "macvlan" else o for o in before.objects.values()])
    assert [(a.op, a.kind) for a in plan(before, live).actions if a.kind == "macvlan"] == [
        ("delete", "macvlan"), ("create", "macvlan")]
    marked = dataclasses.replace(link, alias=macvlan_alias("web", "lan"))
    assert container_link(MACVLAN, marked, "web", {2: "eth1"}) == wanted
    # a lower link in the container's own namespace (no link-netnsid) is no parent of ours
    assert container_link(MACVLAN, dataclasses.replace(marked, link_netnsid=-1), "web", {2: "eth1"}).parent is MISSING


# --- requests and decoding --------------------------------------------------------------------

MACVLAN_OBJ = Macvlan("web", "lan", "web", "eth0", "eth1", "private", "02:42:c6:33:64:02", 1400)
EVERYTHING = lambda *names: True  # noqa: E731 - a create changes every field


def _counter():
    count = iter(range(1, 1000))
    return lambda: next(count)


def test_macvlan_requests_go_to_the_right_namespaces_and_are_the_codecs_bytes():
    seq = _counter()
    assert MACVLAN.host_link(MACVLAN_OBJ) is None  # nothing journaled in the host namespace
    assert MACVLAN.link_netns(MACVLAN_OBJ) == "web" and MACVLAN.peer_netns(MACVLAN_OBJ) == "web"
    assert MACVLAN.master_of(MACVLAN_OBJ, EVERYTHING) == "eth1"
    assert MACVLAN.master_of(MACVLAN_OBJ, lambda *names: "mtu" in names) is None
    assert MACVLAN.create_requests(MACVLAN_OBJ, seq, 5, 9) == [
        nl.new_macvlan(1, "eth0", 5, "private", MACVLAN_OBJ.mac, 1400, 9)]
    assert MACVLAN.mark_requests(MACVLAN_OBJ, seq) == [
        nl.set_link(2, ifname="eth0", alias="netreconcile:macvlan:web:lan", up=True)]
    assert MACVLAN.peer_requests(MACVLAN_OBJ, seq, EVERYTHING, creating=True) == []
    assert MACVLAN.update_requests(MACVLAN_OBJ, seq, lambda *names: "mtu" in names, 0) == [
        nl.set_link(3, ifname="eth0", mtu=1400)]
    assert MACVLAN.delete_requests(MACVLAN_OBJ, seq) == [nl.del_link(4, ifname="eth0")]
    assert MACVLAN.settings(MACVLAN_OBJ, EVERYTHING, creating=True) == []
    assert MACVLAN.settings(dataclasses.replace(MACVLAN_OBJ, ipv6=True), lambda *names: "ipv6" in names,
                            creating=False)[-1] == ("web", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "0")


def test_the_macvlan_request_carries_every_attribute_and_decodes_back():
    request = nl.new_macvlan(7, "eth0", 5, "vepa", "02:42:c6:33:64:02", 1400, 9)
    kind, flags, seq, payload = next(nl.messages(request))
    assert (kind, seq) == (nl.RTM_NEWLINK, 7)
    assert flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL
    found = nl.attrs(payload, 16)
    assert struct.unpack("=I", found[nl.IFLA_LINK])[0] == 5
    assert struct.unpack("=I", found[nl.IFLA_NET_NS_FD])[0] == 9
    link = nl.decode_link(payload)
    assert (link.ifname, link.mac, link.mtu, link.kind, link.macvlan_mode, link.peer_index) == (
        "eth0", "02:42:c6:33:64:02", 1400, "macvlan", "vepa", 5)
    assert link.link_netnsid == -1  # a request names no other namespace's id


def test_a_link_netnsid_is_decoded_signed():
    body = nl.ifinfomsg(3) + nl.attr_str(nl.IFLA_IFNAME, "eth0") + nl.attr(nl.IFLA_LINK_NETNSID, struct.pack("=i", 0))
    assert nl.decode_link(body).link_netnsid == 0
    assert nl.decode_link(nl.ifinfomsg(3)).macvlan_mode == ""


# --- 802.1Q parents ---------------------------------------------------------------------------

TRUNK = """\
version: 1
networks:
  ten: {driver: macvlan, parent: eth1.10, subnet: 203.0.113.0/26}
  also_ten: {driver: macvlan, parent: eth1.10, subnet: 203.0.113.64/26}
containers:
  web:
    networks: [ten]
  db:
    networks: [also_ten]
"""


def test_a_vlan_parent_the_host_lacks_is_made_once_before_the_macvlans_and_deleted_with_the_last_network():
    desired = build_desired(load_spec_text(TRUNK, FILE), host(eth1=1500))
    (vlan,) = desired.of_kind(Vlan)
    assert vlan == Vlan("eth1.10", "eth1", 10, "eth1.10")
    made = [(a.op, a.kind) for a in plan(desired, host(eth1=1500)).actions if a.kind in ("vlan", "macvlan")]
    assert made == [("create", "vlan"), ("create", "macvlan"), ("create", "macvlan")]
    # the containers stay but leave the networks: the kernel deletes the macvlans with the VLAN link
    left = "version: 1\nnetworks:\n  x: {subnet: 10.9.0.0/24}\ncontainers:\n  web: {networks: [x]}\n  db: {networks: [x]}\n"
    gone = [(a.op, a.kind) for a in plan(build_desired(load_spec_text(left, FILE), desired), desired).actions
            if a.kind in ("vlan", "macvlan")]
    assert gone == [("delete", "vlan")]
    # one container leaves, the other stays: its macvlan goes, the VLAN link stays
    one_left = TRUNK.replace("  db:\n    networks: [also_ten]\n", "  db:\n    networks: [x]\n").replace(
        "containers:", "  x: {subnet: 10.9.0.0/24}\ncontainers:")
    changed = [(a.op, a.kind) for a in plan(build_desired(load_spec_text(one_left, FILE), desired), desired).actions
               if a.kind in ("vlan", "macvlan")]
    assert changed == [("delete", "macvlan")]
    # destroy: the namespaces take their macvlans; the VLAN link goes after them
    destroyed = [(a.op, a.kind) for a in plan(State(), desired, destroying=True).actions]
    assert destroyed.index(("delete", "vlan")) > max(i for i, a in enumerate(destroyed) if a[1] == "netns")


def test_a_vlan_link_one_network_still_uses_stays():
    desired = build_desired(load_spec_text(TRUNK, FILE), host(eth1=1500))
    one = TRUNK.replace("  also_ten: {driver: macvlan, parent: eth1.10, subnet: 203.0.113.64/26}\n", "").replace(
        "  db:\n    networks: [also_ten]\n", "")
    assert not [a for a in plan(build_desired(load_spec_text(one, FILE), desired), desired).actions
                if a.kind == "vlan"]


def test_a_vlan_parent_the_host_has_is_used_and_never_taken_over():
    live = host(eth1=1500, **{"eth1.10": 1500})
    desired = build_desired(load_spec_text(TRUNK, FILE), live)
    assert desired.of_kind(Vlan) == []
    result = plan(desired, live)
    assert result.conflicts == () and not [a for a in result.actions if a.kind == "vlan"]
    assert live_problems(TRUNK, live) == []


def test_a_vlan_parent_needs_its_link_and_the_kernels_8021q():
    assert live_problems(TRUNK, host(eth2=1500)) == [
        f"spec.yaml:{line}:{col}: network {name}: parent eth1.10: eth1 does not exist in the host namespace; "
        "nothing was changed" for name, line, col in (("ten", 3, 34), ("also_ten", 4, 39))]
    no_8021q = dataclasses.replace(host(eth1=1500), unsupported_link_kinds=frozenset({"vlan"}))
    assert live_problems(TRUNK, no_8021q)[0] == (
        "spec.yaml:3:34: network ten: parent eth1.10: the kernel has no 802.1Q VLAN support (module 8021q); "
        "nothing was changed")
    assert live_problems(TRUNK.replace("subnet: 203.0.113.0/26", "subnet: 203.0.113.0/26, mtu: 9000"),
                         host(eth1=1500))[0] == (
        "spec.yaml:3:34: network ten: parent eth1.10: mtu 9000 is larger than the MTU 1500 of parent eth1: set the "
        "network's mtu to 1500 or less; nothing was changed")
    made = build_desired(load_spec_text(TRUNK, FILE), host(eth1=1500))
    ours = State.of([*made.of_kind(Vlan)], foreign_links={"eth1"}, host_link_mtus={"eth1": 1500, "eth1.10": 1500})
    assert live_problems(TRUNK, ours) == []  # the VLAN link it made is a parent of its own making


VLAN_OBJ = Vlan("eth1.10", "eth1", 10, "eth1.10")


def test_vlan_requests_are_the_codecs_bytes_and_decode_back():
    seq = _counter()
    assert MACVLAN.host_link(VLAN_OBJ) == ("eth1.10", "vlan") and MACVLAN.link_netns(VLAN_OBJ) == HOST_NS
    assert MACVLAN.master_of(VLAN_OBJ, EVERYTHING) == "eth1" and MACVLAN.peer_netns(VLAN_OBJ) is None
    (create,) = MACVLAN.create_requests(VLAN_OBJ, seq, 4, -1)
    assert create == nl.new_vlan(1, "eth1.10", 4, 10)
    assert MACVLAN.mark_requests(VLAN_OBJ, seq) == [
        nl.set_link(2, ifname="eth1.10", alias="netreconcile:vlan:eth1.10", up=True)]
    assert MACVLAN.delete_requests(VLAN_OBJ, seq) == [nl.del_link(3, ifname="eth1.10")]
    assert MACVLAN.settings(VLAN_OBJ, EVERYTHING, creating=True) == []
    kind, flags, _, payload = next(nl.messages(create))
    assert kind == nl.RTM_NEWLINK and flags & nl.NLM_F_CREATE and flags & nl.NLM_F_EXCL
    link = nl.decode_link(payload)
    assert (link.ifname, link.kind, link.vlan_id, link.peer_index) == ("eth1.10", "vlan", 10, 4)
    assert nl.IFLA_NET_NS_FD not in nl.attrs(payload, 16)  # made in the host namespace
    # observed back: the mark gives its identity, IFLA_LINK its link
    marked = dataclasses.replace(link, alias=vlan_alias("eth1.10"))
    found = drivers.parse_mark(marked.alias)
    assert found == (MACVLAN, ("vlan", "eth1.10"))
    assert MACVLAN.observed_network(marked, ("eth1.10",), "eth1") == dataclasses.replace(VLAN_OBJ, up=False)
    assert drivers.driver_of_link_kind("vlan") is MACVLAN
    assert MACVLAN.unmarked("vlan") == ("vlan", MISSING)


def test_8021q_support_is_the_loaded_module_or_one_the_kernel_can_load(tmp_path):
    proc = tmp_path / "vlan-config"
    modules = tmp_path / "modules"
    release = modules / os.uname().release
    release.mkdir(parents=True)
    (release / "modules.dep").write_text("kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko\n")
    assert not vlan_supported(str(proc), str(modules))
    (release / "modules.builtin").write_text("kernel/net/8021q/8021q.ko\n")
    assert not vlan_supported(str(proc), str(modules))  # the lists are read once per process
    support._module_listed.cache_clear()
    assert vlan_supported(str(proc), str(modules))
    (release / "modules.builtin").unlink()
    proc.write_text("VLAN Dev name\t | VLAN ID\n")
    assert vlan_supported(str(proc), str(modules))


def test_a_macvlans_interface_name_is_sticky_when_the_container_leaves_another_network():
    both = MIXED.replace("networks: {lan: {gw_priority: 10}, front: {}}", "networks: [front, lan]").replace(
        "    ports: ['8080:80']\n", "")
    first = build_desired(load_spec_text(both, FILE), State())
    assert [m.ifname for m in first.of_kind(Macvlan)] == ["eth1"]
    only_lan = both.replace("networks: [front, lan]", "networks: [lan]")
    after = build_desired(load_spec_text(only_lan, FILE), first)
    assert [m.ifname for m in after.of_kind(Macvlan)] == ["eth1"]
    assert not [a for a in plan(after, first).actions if a.kind == "macvlan"]


def test_a_rollback_names_a_deleted_macvlan_as_a_lost_container_interface():
    from reconciler.run.engine import _what_is_lost

    assert _what_is_lost(MACVLAN_OBJ) == (
        "interface eth0 of container web (a macvlan on eth1) was deleted; one made again under its name is a new "
        "interface, and what ran through the old one was cut off")


# --- the host shim ----------------------------------------------------------------------------

def test_a_host_shim_is_a_host_macvlan_with_the_last_address_and_a_route_to_each_container():
    desired = build_desired(load_spec_text(spec_text(host_shim="true"), FILE), State())
    shim = shim_name("lan")
    assert desired.of_kind(Shim) == [Shim(shim, "lan", "eth1", "bridge", "02:42:c6:33:64:fe", 1500)]
    assert ("address", HOST_NS, shim, "198.51.100.254/32") in desired.objects
    (to_web,) = [r for r in desired.of_kind(Route) if r.netns == HOST_NS]
    assert (to_web.dst, to_web.gateway, to_web.ifname, to_web.name) == (
        "198.51.100.2/32", "", shim, f"198.51.100.2/32 dev {shim} in host")
    order = [(a.op, a.kind, getattr(a.obj, "netns", None)) for a in plan(desired, State()).actions]
    assert order.index(("create", "shim", None)) < order.index(("create", "address", HOST_NS)) < order.index(
        ("create", "route", HOST_NS))


def test_the_host_shims_address_is_reserved_and_needs_bridge_mode():
    assert problems(spec_text(host_shim="true", macvlan_mode="vepa")) == [
        "spec.yaml:7:5: networks.lan.host_shim: a host shim reaches the containers only in macvlan_mode bridge, "
        "not vepa"]
    assert problems(spec_text(host_shim="true", gateway="198.51.100.254")) == [
        "spec.yaml:7:5: networks.lan.host_shim: the host shim's address 198.51.100.254 (the last of the subnet) is "
        "the gateway; give the gateway another address"]
    static = spec_text(host_shim="true").replace("networks: [lan]", "networks: {lan: {ipv4_address: 198.51.100.254}}")
    assert problems(static) == [
        "spec.yaml:10:36: containers.web.networks.lan.ipv4_address: 198.51.100.254 is the host shim's address of "
        "network 'lan' (host_shim: the last of its subnet)"]


def test_shim_requests_and_observation():
    shim = Shim("shim1234567", "lan", "eth1", "bridge", "02:42:c6:33:64:fe", 1500)
    seq = _counter()
    assert MACVLAN.host_link(shim) == ("shim1234567", "macvlan") and MACVLAN.link_netns(shim) == HOST_NS
    assert MACVLAN.master_of(shim, EVERYTHING) == "eth1" and MACVLAN.peer_netns(shim) is None
    (create,) = MACVLAN.create_requests(shim, seq, 4, -1)
    assert create == nl.new_macvlan(1, "shim1234567", 4, "bridge", shim.mac, 1500, -1)
    assert nl.IFLA_NET_NS_FD not in nl.attrs(next(nl.messages(create))[3], 16)  # made in the host namespace
    assert MACVLAN.mark_requests(shim, seq) == [
        nl.set_link(2, ifname="shim1234567", alias="netreconcile:shim:lan", up=True)]
    link = nl.decode_link(next(nl.messages(create))[3])
    assert drivers.parse_mark("netreconcile:shim:lan") == (MACVLAN, ("macvlan", "lan"))
    assert MACVLAN.observed_network(link, ("lan",), "eth1") == dataclasses.replace(shim, up=False)
    # a host macvlan with a container's mark, or journaled unmarked, is a shim to replace
    assert MACVLAN.observed_network(link, ("web", "lan"), "eth1").network is MISSING


def test_a_route_on_a_link_has_no_gateway_and_link_scope():
    kind, _, _, payload = next(nl.messages(nl.replace_route(3, "198.51.100.10/32", "", 7)))
    route = nl.decode_route(payload)
    assert (kind, route.dst, route.gateway, route.oif) == (nl.RTM_NEWROUTE, "198.51.100.10/32", "", 7)
    assert payload[6] == nl.RT_SCOPE_LINK


def test_status_lists_parents_and_the_link_of_a_vlan_parent_as_used_not_owned():
    spec = load_spec_text(
        "version: 1\nnetworks:\n"
        "  lan: {driver: macvlan, parent: eth1, subnet: 198.51.100.0/24}\n"
        "  trunk10: {driver: macvlan, parent: eth1.10, subnet: 203.0.113.0/25}\n"
        "  office: {uplink: eth2, subnet: 203.0.113.128/25}\n"
        "containers: {}\n", "spec.yaml")
    assert used_not_owned(spec) == {
        "eth1": "parent of macvlan network lan, link of the 802.1Q parent eth1.10 of macvlan network trunk10",
        "eth2": "uplink of network office",
    }
