"""Bridge networks with an uplink, without the kernel: the spec's checks (each at its
location), the desired objects, the Uplink's requests, the planner's refusals and ordering,
and the firewall of a network whose gateway is the LAN's router."""

from __future__ import annotations

import pytest

from reconciler.drivers.bridge import BRIDGE, uplink_refusals
from reconciler.errors import SpecError
from reconciler.kernel import netlink as nl
from reconciler.render import firewall
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired, forwarding_needed, uplinks, used_not_owned
from reconciler.state.model import HOST_NS, Address, Bridge, State, Uplink, UsedInterface
from reconciler.state.plan import CREATE, DELETE, UPDATE
from reconciler.state.planner import plan

SPEC = """\
version: 1
networks:
  office:
    uplink: eth2
    subnet: 203.0.113.128/25
    gateway: 203.0.113.129
    gateway_on_host: false
containers:
  web:
    networks: [office]
"""
FREE = UsedInterface("eth2", mtu=1500)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as error:
        load_spec_text(text, "spec.yaml")
    return [str(problem) for problem in error.value.problems]


def test_the_uplink_options_are_read():
    network = load_spec_text(SPEC, "spec.yaml").network("office")
    assert (network.uplink, network.gateway_on_host, str(network.uplink_location)) == ("eth2", False, "spec.yaml:4:13")
    plain = load_spec_text(SPEC.replace("    uplink: eth2\n", "").replace("    gateway_on_host: false\n", ""), "s")
    assert (plain.network("office").uplink, plain.network("office").gateway_on_host) == (None, True)


@pytest.mark.parametrize("change, expected", [
    (("uplink: eth2", "uplink: 'no such'"), "spec.yaml:4:13: networks.office.uplink: 'no such' is not a valid "
                                            "interface name"),
    (("uplink: eth2", "uplink: lo"), "spec.yaml:4:13: networks.office.uplink: 'lo' is not a valid interface name: "
                                     "the loopback interface cannot be a port of a bridge"),
    (("    gateway: 203.0.113.129\n", ""), "spec.yaml:6:5: networks.office.gateway_on_host: gateway_on_host: "
                                          "false needs 'gateway': the IPv4 address of the LAN's router"),
    (("    gateway_on_host: false\n", "    gateway_on_host: false\n    enable_ipv6: true\n    subnet6: fd42:7::/64\n"),
     "spec.yaml:7:5: networks.office.gateway_on_host: gateway_on_host: false needs 'gateway6': the IPv6 address of "
     "the LAN's router"),
    (("    gateway_on_host: false\n", "    gateway_on_host: false\n    masquerade: true\n"),
     "spec.yaml:8:5: networks.office.masquerade: masquerade: true needs the host to route"),
    (("    gateway_on_host: false\n", "    gateway_on_host: false\n    internal: true\n"),
     "spec.yaml:8:5: networks.office.internal: internal: true cannot keep the network off the LAN of uplink eth2"),
    (("    networks: [office]\n", "    networks: [office]\n    ports: ['8080:80']\n"),
     "spec.yaml:11:5: containers.web.ports: container 'web' would publish its ports on network 'office' (its IPv4 "
     "default route), which has gateway_on_host: false"),
])
def test_what_a_network_on_the_lan_cannot_have_is_refused_at_its_line(change, expected):
    found = problems(SPEC.replace(*change))
    assert any(problem.startswith(expected) for problem in found), found


def test_ports_are_published_through_another_network_with_a_higher_gw_priority():
    text = SPEC.replace("    networks: [office]\n", "    networks: {office: {}, nat: {gw_priority: 1}}\n"
                        "    ports: ['8080:80']\n").replace("containers:", "  nat: {subnet: 10.9.0.0/24}\ncontainers:")
    load_spec_text(text, "spec.yaml")


@pytest.mark.parametrize("networks, expected", [
    ("  other: {uplink: eth2, subnet: 10.9.0.0/24}\n",
     "spec.yaml:8:19: networks.other.uplink: uplink eth2 is already the uplink of network 'office': an uplink "
     "serves one network only"),
    ("  other: {bridge: eth2, subnet: 10.9.0.0/24}\n",
     "spec.yaml:8:19: networks.other.bridge: bridge name 'eth2' is the uplink of network 'office'"),
    ("  other: {driver: macvlan, parent: eth2, subnet: 10.9.0.0/24}\n",
     "spec.yaml:8:36: networks.other.parent: parent eth2 is already the uplink of network 'office': a bridge port "
     "cannot be a macvlan parent"),
    ("  other: {uplink: office, subnet: 10.9.0.0/24}\n",
     "spec.yaml:8:19: networks.other.uplink: uplink 'office' is the bridge of network 'office'"),
    ("  other: {uplink: other, subnet: 10.9.0.0/24}\n",
     "spec.yaml:8:19: networks.other.uplink: uplink 'other' is the network's own bridge"),
])
def test_an_uplink_is_a_port_of_one_bridge_only(networks, expected):
    found = problems(SPEC.replace("containers:", networks + "containers:"))
    assert any(problem.startswith(expected) for problem in found), found


def test_the_desired_state_enslaves_the_uplink_and_puts_no_address_on_the_bridge():
    spec = load_spec_text(SPEC, "spec.yaml")
    desired = build_desired(spec, State())
    assert desired.objects[("uplink", "eth2")] == Uplink("eth2", "office")
    assert desired.objects[("uplink", "eth2")].source == "spec.yaml:4:13"
    assert not [o for o in desired.objects.values() if isinstance(o, Address) and o.netns == HOST_NS]
    assert desired.objects[("bridge", "office")].ipv6 is False
    route = desired.objects[("route", "web", 4, "default")]
    assert (route.gateway, route.ifname) == ("203.0.113.129", "eth0")
    assert desired.objects[("address", "web", "eth0", "203.0.113.130/25")]  # the router's address is never given
    assert not forwarding_needed(spec) and uplinks(spec) == {"eth2"}
    assert used_not_owned(spec) == {"eth2": "uplink of network office"}
    on_host = load_spec_text(SPEC.replace("    gateway_on_host: false\n", ""), "spec.yaml")
    assert ("address", HOST_NS, "office", "203.0.113.129/25") in build_desired(on_host, State()).objects
    assert forwarding_needed(on_host)


def test_the_firewall_masquerades_nothing_and_isolation_lets_containers_reach_the_lan():
    spec = load_spec_text(SPEC.replace("gateway_on_host: false", "gateway_on_host: false\n    icc: false"), "s")
    tables = firewall.render(list(spec.networks), [], [firewall.Port(spec.network("office"), "vethabc1234")])
    assert "masquerade" not in tables
    assert 'iifname "vethabc1234" oifname != "eth2" drop' in tables


def test_uplink_requests_enslave_and_release_and_never_mark_or_delete():
    uplink = Uplink("eth2", "office")
    counter = iter(range(1, 100))

    def seq():
        return next(counter)

    assert BRIDGE.host_link(uplink) is None  # never journaled as a link of ours
    assert BRIDGE.master_of(uplink, lambda *names: True) == "office"
    assert BRIDGE.create_requests(uplink, seq, 7, -1) == [nl.set_link(1, ifname="eth2", master=7, up=True)]
    assert BRIDGE.mark_requests(uplink, seq) == []
    assert BRIDGE.update_requests(uplink, seq, lambda *names: "bridge" in names, 8) == [
        nl.set_link(2, ifname="eth2", master=8)]
    assert BRIDGE.delete_requests(uplink, seq) == [nl.set_link(3, ifname="eth2", master=0)]
    assert BRIDGE.settings(uplink, lambda *names: True, creating=True) == []


def test_a_port_of_our_bridge_that_is_not_wanted_is_released_and_one_released_by_hand_enslaved_again():
    desired = build_desired(load_spec_text(SPEC, "spec.yaml"), State())
    live = State.of(o for o in desired.objects.values() if o.kind != "uplink")
    assert [(a.op, a.kind) for a in plan(desired, live).actions] == [(CREATE, "uplink")]
    moved = State.of([Uplink("eth2", "other") if o.kind == "uplink" else o for o in desired.objects.values()])
    assert [(a.op, a.reason) for a in plan(desired, moved).actions] == [(UPDATE, "bridge 'other' -> 'office'")]
    stray = State.of([*desired.objects.values(), Uplink("eth9", "office")])
    [action] = plan(desired, stray).actions
    assert (action.op, action.obj.name) == (DELETE, "eth9 (used, not owned) on office")
    assert action.reason.endswith("released (no master, left up), never deleted")


def test_a_replaced_bridge_takes_its_uplink_along_and_it_is_enslaved_again_after():
    desired = build_desired(load_spec_text(SPEC, "spec.yaml"), State())
    live = State.of([Bridge("office", "old", "02:42:cb:00:71:81", 1500) if o.kind == "bridge" else o
                     for o in desired.objects.values()])
    actions = {(a.op, a.kind): a for a in plan(desired, live).actions}
    assert actions[CREATE, "uplink"].after_break and (DELETE, "uplink") not in actions


def test_destroy_leaves_the_release_to_the_bridge_going():
    desired = build_desired(load_spec_text(SPEC, "spec.yaml"), State())
    actions = plan(State(), desired, destroying=True).actions
    assert "uplink" not in {a.kind for a in actions} and (DELETE, "bridge") in {(a.op, a.kind) for a in actions}


@pytest.mark.parametrize("facts, expected", [
    (None, []),
    (FREE, []),
    (UsedInterface("eth2", exists=False), ["uplink eth2 does not exist in the host namespace"]),
    (UsedInterface("eth2", owned=True, mtu=1500), ["uplink eth2 is one of netreconcile's own interfaces"]),
    (UsedInterface("eth2", master="br0", mtu=1500), ["uplink eth2 is a port of br0, which netreconcile does not "
                                                     "manage; if it is free to move, release it first: "
                                                     "`ip link set eth2 nomaster`"]),
    (UsedInterface("eth2", master="office", master_owned=True, mtu=1500), []),
    (UsedInterface("eth2", kind="bridge", mtu=1500), ["uplink eth2 is a bridge, and a bridge cannot be a port"]),
    (UsedInterface("eth2", mtu=9000), ["uplink eth2 has MTU 9000 but network 'office' has mtu 1500: set `mtu: "
                                       "9000` on the network, or change the interface's: `ip link set eth2 mtu "
                                       "1500`"]),
])
def test_uplink_refusals(facts, expected):
    network = load_spec_text(SPEC, "spec.yaml").network("office")
    found = uplink_refusals(network, facts)
    assert [why.removeprefix("spec.yaml:4:13: ")[:len(hint)] for why, hint in zip(found, expected)] == expected
    assert len(found) == len(expected)


def test_an_uplink_carrying_the_host_gives_the_commands_in_a_safe_order():
    facts = UsedInterface("eth2", mtu=1500, addresses=("203.0.113.5/25", "2001:db8::5/64"),
                          default_routes=((4, "203.0.113.129"), (6, "")))
    on_host = load_spec_text(SPEC.replace("    gateway_on_host: false\n", ""), "spec.yaml").network("office")
    [why] = uplink_refusals(on_host, facts)
    assert why.startswith("spec.yaml:4:13: uplink eth2 carries the addresses 203.0.113.5/25, 2001:db8::5/64 and "
                          "the host's default route: a bridge port cannot keep them, and moving them to the bridge "
                          "office in the same change would cut the host's connectivity through eth2 mid-change")
    commands = [part.split("`")[1] for part in why.split("; ") if "`" in part]
    assert commands == [
        "ip route del default via 203.0.113.129 dev eth2", "ip -6 route del default dev eth2",
        "ip addr del 203.0.113.5/25 dev eth2", "ip addr del 2001:db8::5/64 dev eth2", "netreconcile apply spec.yaml",
        "ip route add default via 203.0.113.129 dev office", "ip -6 route add default dev office",
    ]
    [off_host] = uplink_refusals(load_spec_text(SPEC, "spec.yaml").network("office"), facts)
    assert "With gateway_on_host: false the host has no address on office" in off_host


def test_the_planner_reports_the_refusals_as_conflicts():
    spec = load_spec_text(SPEC, "spec.yaml")
    live = State(used_interfaces={"eth2": UsedInterface("eth2", exists=False)})
    assert plan(build_desired(spec, live), live).conflicts == (
        "spec.yaml:4:13: uplink eth2 does not exist in the host namespace (netreconcile never creates an uplink): "
        "name an existing interface",)
