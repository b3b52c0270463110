"""driver: macvlan against the kernel: containers on a "LAN" (a namespace holding the
router's address, joined to the sandbox host by an unmanaged veth pair whose host end
is the parent). They reach the router and each other, the router reaches them at their
own addresses (no NAT), the parent is never changed or deleted, a missing parent fails
at plan time with nothing changed, and drift is repaired."""

from __future__ import annotations

import json

import pytest

from reconciler.kernel.support import vlan_supported
from tests.conftest import eventually, netns_names, sh
from tests.lan_tools import make_lan, plug_in
from tests.test_watch import watching

pytestmark = pytest.mark.kernel

LAN = """\
version: 1
networks:
  lan:
    driver: macvlan
    parent: {parent}
    subnet: 198.51.100.0/24
    gateway: 198.51.100.1
containers:
  "@a":
    networks:
      lan: {{ipv4_address: 198.51.100.10}}
  "@b":
    networks:
      lan: {{ipv4_address: 198.51.100.11}}
"""


def ping(sandbox, netns: str, address: str) -> bool:
    return "1 received" in sh(f"ip netns exec {netns} ping -c1 -W2 {address}", check=False)


def parent_facts(sandbox, parent: str) -> dict:
    (link,) = json.loads(sh(f"ip -n {sandbox.host} -j -d link show {parent}"))
    return {key: link.get(key) for key in ("ifindex", "mtu", "flags", "address", "ifalias", "master", "promiscuity",
                                           "operstate")}


def host_as_it_is(sandbox) -> tuple:
    """The sandbox's namespaces and the host namespace's links (other tests' namespaces come and go)."""
    return (sorted(name for name in netns_names() if name.startswith(sandbox.prefix)),
            sandbox.host_sh("ip -o link show"))


def test_macvlan_containers_are_on_the_lan_and_the_parent_is_left_as_it_was(sandbox):
    lan = make_lan(sandbox, "lan0", router="198.51.100.1/24")
    before = parent_facts(sandbox, "lan0")
    spec = sandbox.write_spec(LAN.format(parent="lan0"))
    first = sandbox.apply(spec)
    kinds = sorted({a["kind"] for a in first["actions"]})
    assert kinds == ["address", "file", "macvlan", "netns", "route"]  # no firewall, no forwarding switch

    links = sandbox.links(sandbox.name("a"))
    assert links["eth0"]["linkinfo"]["info_kind"] == "macvlan"
    assert links["eth0"]["linkinfo"]["info_data"]["mode"] == "bridge"
    assert links["eth0"]["address"] == "02:42:c6:33:64:0a"
    assert links["eth0"]["ifalias"] == f"netreconcile:macvlan:{sandbox.name('a')}:lan"
    assert "default via 198.51.100.1 dev eth0" in sandbox.in_ns("a", "ip route")

    assert eventually(lambda: ping(sandbox, sandbox.name("a"), "198.51.100.1"), "a reaches the router")
    assert eventually(lambda: ping(sandbox, sandbox.name("b"), "198.51.100.1"), "b reaches the router")
    assert eventually(lambda: ping(sandbox, sandbox.name("a"), "198.51.100.11"), "a reaches b")
    assert eventually(lambda: ping(sandbox, lan, "198.51.100.10"), "the router reaches a")
    assert eventually(lambda: ping(sandbox, lan, "198.51.100.11"), "the router reaches b")
    # the router knows them by their own addresses and MACs: nothing was translated on the way
    neighbours = {entry["dst"]: entry.get("lladdr") for entry in json.loads(sh(f"ip -n {lan} -j neigh show"))}
    assert neighbours["198.51.100.10"] == "02:42:c6:33:64:0a"
    assert neighbours["198.51.100.11"] == "02:42:c6:33:64:0b"
    assert sandbox.host_sh("nft list tables") == ""  # no rules: the traffic does not cross the host

    assert sandbox.apply(spec)["actions"] == []
    status = sandbox.run("status", spec=spec)
    assert status.code == 0 and "lan0 (parent of macvlan network lan): used, not owned" in status.stdout
    # the kernel counts its own promiscuity for macvlan MACs on a parent without unicast
    # filtering (a veth); netreconcile sets no flag (`flags` shows the user's PROMISC)
    assert {**parent_facts(sandbox, "lan0"), "promiscuity": 0} == before

    destroyed = sandbox.run("destroy", spec=spec)
    assert destroyed.code == 0, destroyed.stderr
    assert parent_facts(sandbox, "lan0") == before  # present, same index, MTU, flags; no alias, no master
    assert not {sandbox.name("a"), sandbox.name("b")} & netns_names()


WITHOUT_8021Q = pytest.mark.skipif(vlan_supported(), reason="this kernel has 802.1Q support; the case is of one "
                                   "without it")


@pytest.mark.parametrize(("parent", "message"), [
    ("nope0", "network lan: parent nope0 does not exist in the host namespace; nothing was changed"),
    pytest.param("lan0.10", "network lan: parent lan0.10: the kernel has no 802.1Q VLAN support (module 8021q); "
                 "nothing was changed", marks=WITHOUT_8021Q, id="vlan-without-8021q"),
])
def test_a_parent_the_host_cannot_give_fails_at_plan_time_at_its_line_with_nothing_changed(sandbox, parent, message):
    make_lan(sandbox, "lan0")
    spec = sandbox.write_spec(LAN.format(parent=parent))
    before = host_as_it_is(sandbox)
    for command in ("plan", "apply"):
        result = sandbox.run(command, spec=spec)
        assert result.code == 1, result.stdout
        assert f"{spec}:5:13: {message}" in result.stderr
    assert host_as_it_is(sandbox) == before


def test_a_parent_larger_mtu_than_the_parents_is_refused(sandbox):
    make_lan(sandbox, "lan0")
    sandbox.host_sh("ip link set lan0 mtu 1400")
    spec = sandbox.write_spec(LAN.format(parent="lan0"))
    result = sandbox.run("plan", spec=spec)
    assert result.code == 1
    assert f"{spec}:5:13: network lan: mtu 1500 is larger than the MTU 1400 of parent lan0" in result.stderr


def test_a_macvlan_deleted_by_hand_or_left_unmarked_is_made_again(sandbox):
    lan = make_lan(sandbox, "lan0", router="198.51.100.1/24")
    spec = sandbox.write_spec(LAN.format(parent="lan0"))
    sandbox.apply(spec)
    sandbox.in_ns("a", "ip link del eth0")
    # as a run cut between create and mark leaves it: a macvlan without our alias
    sandbox.in_ns("b", "ip link del eth0")
    sandbox.host_sh(f"ip link add link lan0 name eth0 netns {sandbox.name('b')} type macvlan mode private")
    drift = sandbox.run("status", "-o", "json", spec=spec).json()
    macvlans = sorted((a["op"], a["description"]) for a in drift["actions"] if a["kind"] == "macvlan")
    assert macvlans == [
        ("create", f"{sandbox.name('a')}:eth0 on lan (parent lan0, bridge)"),
        ("create", f"{sandbox.name('b')}:eth0 on lan (parent lan0, bridge)"),
        ("delete", "?:eth0 on ? (parent lan0, private)"),
    ]
    sandbox.apply(spec)
    assert sandbox.apply(spec)["actions"] == []
    assert sandbox.links(sandbox.name("b"))["eth0"]["linkinfo"]["info_data"]["mode"] == "bridge"
    assert eventually(lambda: ping(sandbox, lan, "198.51.100.10"), "the router reaches a again")
    assert eventually(lambda: ping(sandbox, lan, "198.51.100.11"), "the router reaches b again")


def test_a_dual_stack_macvlan_network_reaches_the_router_over_ipv6(sandbox):
    lan = make_lan(sandbox, "lan0", router="198.51.100.1/24")
    sh(f"ip -n {lan} addr add fd42:51::1/64 dev wire0 nodad")
    spec = sandbox.write_spec(LAN.format(parent="lan0").replace(
        "    gateway: 198.51.100.1\n", "    gateway: 198.51.100.1\n    enable_ipv6: true\n    subnet6: fd42:51::/64\n"))
    sandbox.apply(spec)
    assert "default via fd42:51::1 dev eth0" in sandbox.in_ns("a", "ip -6 route")
    assert sandbox.in_ns("a", "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6").strip() == "0"
    assert eventually(lambda: "1 received" in sandbox.in_ns("a", "ping -6 -c1 -W2 fd42:51::1", check=False),
                      "a reaches the router over IPv6")
    assert eventually(lambda: "1 received" in sh(f"ip netns exec {lan} ping -6 -c1 -W2 fd42:51::3", check=False),
                      "the router reaches b at its own IPv6 address")
    assert sandbox.apply(spec)["actions"] == []


def test_a_host_shim_lets_the_host_reach_its_macvlan_containers(sandbox):
    lan = make_lan(sandbox, "lan0", router="198.51.100.1/24")
    plain = sandbox.write_spec(LAN.format(parent="lan0"))
    sandbox.apply(plain)
    # without the shim the host has no way to them through lan0 (a macvlan property)
    assert "1 received" not in sandbox.host_sh("ping -c1 -W1 198.51.100.10", check=False)
    spec = sandbox.write_spec(LAN.format(parent="lan0").replace("    gateway: 198.51.100.1\n",
                                                                 "    gateway: 198.51.100.1\n    host_shim: true\n"),
                              "shim.yaml")
    sandbox.apply(spec)
    shims = [link for link in sandbox.links(sandbox.host).values() if link.get("ifalias") == "netreconcile:shim:lan"]
    (shim,) = shims
    assert shim["linkinfo"]["info_kind"] == "macvlan" and shim["linkinfo"]["info_data"]["mode"] == "bridge"
    assert sandbox.addresses(sandbox.host)[shim["ifname"]] == ["198.51.100.254/32"]
    routes = sandbox.host_sh(f"ip route show dev {shim['ifname']}")
    assert "198.51.100.10 proto static scope link" in routes and "198.51.100.11 proto static scope link" in routes
    assert eventually(lambda: "1 received" in sandbox.host_sh("ping -c1 -W2 198.51.100.10", check=False),
                      "the host reaches a through the shim")
    assert eventually(lambda: "1 received" in sandbox.host_sh("ping -c1 -W2 198.51.100.11", check=False),
                      "the host reaches b through the shim")
    assert eventually(lambda: ping(sandbox, sandbox.name("a"), "198.51.100.254"), "a reaches the host's shim")
    assert sandbox.apply(spec)["actions"] == []
    # a route deleted by hand is drift, and is put back
    sandbox.host_sh(f"ip route del 198.51.100.11/32 dev {shim['ifname']}")
    drift = sandbox.run("status", "-o", "json", spec=spec).json()
    assert [(a["op"], a["kind"], a["description"]) for a in drift["actions"]] == [
        ("create", "route", f"198.51.100.11/32 dev {shim['ifname']} in host")]
    sandbox.apply(spec)
    # without host_shim again: the shim, its address and its routes go; lan0 is as it was
    sandbox.apply(plain)
    assert shim["ifname"] not in sandbox.links(sandbox.host)
    assert "198.51.100.1" not in sandbox.host_sh("ip route show")
    assert ping(sandbox, lan, "198.51.100.10")


def test_watch_reports_a_parent_that_goes_away_and_rebuilds_the_containers_when_it_returns(sandbox):
    lan = make_lan(sandbox, "lan0", router="198.51.100.1/24")
    text = LAN.format(parent="lan0").replace("{", "{{").replace("}", "}}")
    with watching(sandbox, text.replace("version: 1\n", "version: 1\nhost:\n  resolv_conf: {resolv}\n")) as watch:
        watch.start()
        watch.settle()
        assert eventually(lambda: ping(sandbox, lan, "198.51.100.10"), "the router reaches a")
        sandbox.host_sh("ip link del lan0")  # the kernel deletes the macvlans on it too
        watch.reacts(lambda: "network lan: parent lan0 does not exist in the host namespace" in watch.tail(),
                     "watch reports the missing parent")
        assert "eth0" not in sandbox.links(sandbox.name("a"))
        plug_in(sandbox, "lan0", lan, router="198.51.100.1/24")
        watch.reacts(lambda: "eth0" in sandbox.links(sandbox.name("a")) and "eth0" in sandbox.links(sandbox.name("b")),
                     "the containers' macvlans are made again on the returned parent")
        assert eventually(lambda: ping(sandbox, lan, "198.51.100.11"), "the router reaches b again")
        assert watch.stop() == 0
