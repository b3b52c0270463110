"""Containers on several networks: interface names, gw_priority and joining or leaving a network."""

from __future__ import annotations

import json

import pytest

from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired
from reconciler.state.ipam import assign_interfaces
from reconciler.state.model import Route, State, Veth
from reconciler.state.planner import plan
from tests.conftest import sh

NETWORKS = """\
version: 1
networks:
  front: {bridge: "@fr", subnet: 172.28.1.0/24}
  back: {bridge: "@bk", subnet: 172.28.2.0/24}
  side: {bridge: "@sd", subnet: 172.28.3.0/24}
containers:
"""


def spec_text(api_networks: str, extra: str = "") -> str:
    return NETWORKS + f'  "@api":\n    networks: {api_networks}\n' + extra


def desired(text: str, live: State = State()) -> State:
    return build_desired(load_spec_text(text.replace("@", "t-"), "spec.yaml"), live)


def veths(state: State) -> dict[str, str]:
    return {v.network: v.peer_ifname for v in state.of_kind(Veth)}


def default_route(state: State) -> tuple[str, str]:
    (route,) = [r for r in state.of_kind(Route) if r.dst == "default"]
    return route.ifname, route.gateway


def test_interfaces_follow_the_order_listed_for_a_new_container():
    assert veths(desired(spec_text("[front, back, side]"))) == {"front": "eth0", "back": "eth1", "side": "eth2"}


def test_leaving_a_network_renames_nothing_and_a_new_one_takes_the_lowest_free_name():
    first = desired(spec_text("[front, back, side]"))
    without_front = desired(spec_text("[back, side]"), live=first)
    assert veths(without_front) == {"back": "eth1", "side": "eth2"}
    actions = [a for a in plan(without_front, first).actions if a.kind != "file"]
    # make before break: the default route moves to eth1 before eth0 goes
    assert [(a.op, a.kind) for a in actions] == [("create", "route"), ("delete", "veth")]
    rejoined = desired(spec_text("[back, side, front]"), live=without_front)
    assert veths(rejoined) == {"back": "eth1", "side": "eth2", "front": "eth0"}


def test_interface_name_is_used_and_auto_names_avoid_it():
    state = desired(spec_text("{front: {}, back: {interface_name: eth0}, side: {interface_name: data}}"))
    assert veths(state) == {"front": "eth1", "back": "eth0", "side": "data"}


def test_default_route_goes_through_the_highest_gw_priority_first_listed_on_a_tie():
    assert default_route(desired(spec_text("[front, back]"))) == ("eth0", "172.28.1.1")
    assert default_route(desired(spec_text("{front: {}, back: {gw_priority: 5}}"))) == ("eth1", "172.28.2.1")
    assert default_route(desired(spec_text("{front: {gw_priority: -1}, back: {}, side: {}}"))) == ("eth1", "172.28.2.1")


def test_moving_the_default_route_is_one_route_update():
    before = desired(spec_text("[front, back]"))
    after = desired(spec_text("{front: {}, back: {gw_priority: 1}}"), live=before)
    actions = plan(after, before).actions
    (action,) = [a for a in actions if a.kind != "file"]
    assert (action.op, action.kind) == ("update", "route")
    # back now comes first in api's endpoint order: its own name resolves to its back address
    assert [(a.op, a.obj.name) for a in actions if a.kind == "file"] == [("update", "t-api/hosts")]
    assert "ifname 'eth0' -> 'eth1'" in action.reason


def test_interfaces_of_other_containers_are_assigned_independently():
    text = spec_text("[front, back]", '  "@db":\n    networks: [back]\n')
    spec = load_spec_text(text.replace("@", "t-"), "spec.yaml")
    assert assign_interfaces(spec, State())[("t-db", "back")] == "eth0"


# --- kernel -------------------------------------------------------------------------------------


def links_by_name(sandbox, short: str) -> dict[str, int]:
    return {link["ifname"]: link["ifindex"] for link in json.loads(sh(f"ip -n {sandbox.name(short)} -j link show"))}


@pytest.mark.kernel
def test_a_container_on_two_networks_reaches_both_and_leaves_one_cleanly(sandbox):
    peers = '  "@web":\n    networks: [front]\n  "@db":\n    networks: [back]\n'
    spec = sandbox.write_spec(spec_text("{front: {}, back: {gw_priority: 1}}", peers))
    sandbox.apply(spec)
    api = sandbox.addresses(sandbox.name("api"))
    assert api["eth0"] == ["172.28.1.2/24"] and api["eth1"] == ["172.28.2.2/24"]
    assert "1 received" in sandbox.in_ns("api", "ping -c1 -W2 172.28.1.3")  # web, on front
    assert "1 received" in sandbox.in_ns("api", "ping -c1 -W2 172.28.2.3")  # db, on back
    assert sandbox.in_ns("api", "ip route show default").startswith("default via 172.28.2.1 dev eth1")

    before = links_by_name(sandbox, "api")
    spec.write_text(spec.read_text().replace("{front: {}, back: {gw_priority: 1}}", "{back: {gw_priority: 1}}"))
    actions = sandbox.apply(spec)["actions"]
    assert [(a["op"], a["kind"]) for a in actions if a["kind"] != "file"] == [("delete", "veth")]
    after = links_by_name(sandbox, "api")
    assert after == {name: index for name, index in before.items() if name != "eth0"}  # nothing renamed
    assert sandbox.addresses(sandbox.name("api"))["eth1"] == ["172.28.2.2/24"]
    assert sandbox.in_ns("api", "ip route show default").startswith("default via 172.28.2.1 dev eth1")
    assert sandbox.run("plan", "--detailed-exitcode", spec=spec).code == 0

    spec.write_text(spec.read_text().replace("{back: {gw_priority: 1}}", "{back: {}, side: {gw_priority: 2}}"))
    actions = sandbox.apply(spec)["actions"]
    assert sorted((a["op"], a["kind"]) for a in actions if a["kind"] != "file") == [
        ("create", "address"), ("create", "veth"), ("update", "route"),
    ]
    assert set(links_by_name(sandbox, "api")) == {"lo", "eth0", "eth1"}  # side took the free eth0
    assert links_by_name(sandbox, "api")["eth1"] == before["eth1"]
    assert sandbox.in_ns("api", "ip route show default").startswith("default via 172.28.3.1 dev eth0")
