"""Bridge networks with an uplink (`uplink:`, `gateway_on_host: false`) in throwaway namespaces.

The "LAN" is a namespace of its own holding the router address 203.0.113.129/25, joined
to the sandbox host namespace by an unmanaged veth pair whose host end, `lan0`, is the
uplink. Containers on network `office` get LAN addresses; the LAN reaches them at those
addresses (no NAT), and their default route goes to the router.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import eventually, netns_names, sh
from tests.test_firewall import World
from tests.test_rollback import run_failing, snapshot
from tests.test_watch import watching

pytestmark = pytest.mark.kernel

ROUTER = "203.0.113.129"
OFFICE = """\
version: 1
networks:
  office:
    bridge: "@of"
    uplink: {uplink}
    subnet: 203.0.113.128/25
    gateway: 203.0.113.129
    gateway_on_host: false
containers:
  "@web":
    networks: [office]
"""
WITHOUT_UPLINK = OFFICE.replace("    uplink: {uplink}\n", "")


class Lan:
    """The sandbox host namespace with an uplink veth into a LAN namespace holding the router."""

    def __init__(self, sandbox, uplink: str = "lan0"):
        self.sandbox = sandbox
        self.uplink = uplink
        self.netns = sandbox.name("lan")
        if sandbox.host not in netns_names():
            sh(f"ip netns add {sandbox.host}")
            sh(f"ip -n {sandbox.host} link set lo up")
        sh(f"ip netns add {self.netns}")
        sh(f"ip -n {self.netns} link set lo up")
        self.plug()

    def plug(self) -> None:
        """The veth pair: the uplink in the host namespace, the router's end in the LAN."""
        sh(f"ip -n {self.sandbox.host} link add {self.uplink} type veth peer name router0 netns {self.netns}")
        sh(f"ip -n {self.netns} addr add {ROUTER}/25 dev router0")
        sh(f"ip -n {self.netns} link set router0 up")

    def spec(self, text: str = OFFICE):
        return self.sandbox.write_spec(text.format(uplink=self.uplink))

    def link(self) -> dict:
        return self.sandbox.links(self.sandbox.host)[self.uplink]

    def settled(self) -> bool:
        """Whether the LAN end's carrier (which the kernel's link watch updates a moment after
        the uplink goes up or down) follows the uplink's state, so that snapshots compare."""
        linkdown = "linkdown" in sh(f"ip -n {self.netns} route show dev router0")
        return ("UP" in self.link()["flags"]) != linkdown

    def ping_from_lan(self, address: str) -> bool:
        return "1 received" in sh(f"ip netns exec {self.netns} ping -c1 -W2 {address}", check=False)


@pytest.fixture
def lan(sandbox):
    return Lan(sandbox)


def released(link: dict) -> bool:
    return "master" not in link and "UP" in link["flags"]


def test_a_container_on_the_lan_is_reached_at_its_own_address_and_routes_through_the_router(sandbox, lan):
    spec = lan.spec()
    sandbox.apply(spec)
    bridge = sandbox.name("of")
    assert lan.link()["master"] == bridge and "UP" in lan.link()["flags"]
    assert sandbox.addresses(sandbox.host).get(bridge, []) == []  # gateway_on_host: false: no address on the bridge
    assert sandbox.addresses(sandbox.name("web"))["eth0"] == ["203.0.113.130/25"]
    assert sandbox.in_ns("web", "ip route show default").startswith(f"default via {ROUTER} dev eth0")
    assert eventually(lambda: lan.ping_from_lan("203.0.113.130"), "the LAN reaches the container")
    assert "1 received" in sandbox.in_ns("web", f"ping -c1 -W2 {ROUTER}")
    table = sandbox.host_sh("nft list table inet netreconcile")
    assert "masquerade" not in table
    assert sandbox.apply(spec)["actions"] == []
    status = sandbox.run("status", spec=spec)
    assert status.code == 0 and "lan0 (uplink of network office): used, not owned" in status.stdout
    document = sandbox.run("status", "-o", "json", spec=spec).json()
    assert document["in_sync"] and document["used_not_owned"] == [{"interface": "lan0", "use": "uplink of network office"}]


def test_destroy_releases_the_uplink_and_leaves_it_up(sandbox, lan):
    spec = lan.spec()
    sandbox.apply(spec)
    result = sandbox.run("destroy", spec=spec)
    assert result.code == 0, result.stderr
    assert released(lan.link())


def test_removing_the_uplink_from_the_spec_releases_it(sandbox, lan):
    sandbox.apply(lan.spec())
    actions = sandbox.apply(lan.spec(WITHOUT_UPLINK))["actions"]
    assert [(a["op"], a["kind"], a["name"], a["description"]) for a in actions] == [
        ("delete", "uplink", "lan0", f"lan0 (used, not owned) on {sandbox.name('of')}")]
    assert released(lan.link())
    assert sandbox.name("of") in sandbox.links(sandbox.host)


def test_an_uplink_released_by_hand_is_drift_that_apply_repairs(sandbox, lan):
    spec = lan.spec()
    sandbox.apply(spec)
    sandbox.host_sh("ip link set lan0 nomaster")
    status = sandbox.run("status", "--detailed-exitcode", spec=spec)
    assert status.code == 2 and "~ uplink lan0 (used, not owned)" in status.stdout
    sandbox.apply(spec)
    assert lan.link()["master"] == sandbox.name("of")
    assert eventually(lambda: lan.ping_from_lan("203.0.113.130"), "the LAN reaches the container again")


def refused_with_nothing_changed(sandbox, lan, spec, *expected: str) -> str:
    eventually(lan.settled, "the LAN end's carrier follows the uplink")
    before = snapshot(sandbox)
    for command in ("plan", "apply"):
        result = sandbox.run(command, spec=spec)
        assert result.code == 1, result.stdout
        output = result.stdout + result.stderr
        for text in expected:
            assert text in output, output
    assert "nothing was changed" in result.stderr
    assert snapshot(sandbox) == before
    return result.stderr


def test_an_uplink_with_an_ipv4_address_is_refused_with_nothing_changed(sandbox, lan):
    sandbox.host_sh("ip addr add 198.51.100.7/24 dev lan0")
    sandbox.host_sh("ip link set lan0 up")
    message = refused_with_nothing_changed(
        sandbox, lan, lan.spec(), "spec.yaml:5:13: uplink lan0 carries the address 198.51.100.7/24",
        "`ip addr del 198.51.100.7/24 dev lan0`")
    assert "cut the host's connectivity" in message


def test_an_uplink_with_a_global_ipv6_address_is_refused_but_not_for_its_link_local_one(sandbox, lan):
    sandbox.host_sh("ip link set lan0 up")
    sandbox.host_sh("ip addr add fe80::7/64 dev lan0")
    sandbox.apply(lan.spec())  # a link-local address does not count
    assert sandbox.run("destroy", spec=lan.spec()).code == 0
    sandbox.host_sh("ip addr add 2001:db8:7::7/64 dev lan0 nodad")
    refused_with_nothing_changed(sandbox, lan, lan.spec(), "uplink lan0 carries the address 2001:db8:7::7/64")


def test_an_uplink_with_the_default_route_is_refused_with_nothing_changed(sandbox, lan):
    sandbox.host_sh("ip link set lan0 up")
    sandbox.host_sh("ip route add default dev lan0")
    refused_with_nothing_changed(
        sandbox, lan, lan.spec(), "uplink lan0 carries the host's default route",
        "`ip route del default dev lan0`")


def test_an_uplink_that_is_a_port_of_a_foreign_bridge_is_refused(sandbox, lan):
    sandbox.host_sh("ip link add theirs type bridge")
    sandbox.host_sh("ip link set lan0 master theirs")
    refused_with_nothing_changed(sandbox, lan, lan.spec(), "uplink lan0 is a port of theirs, which netreconcile does not manage")


def test_a_missing_uplink_and_one_of_another_mtu_are_refused(sandbox, lan):
    missing = Lan.spec(lan, OFFICE.replace("{uplink}", "nosuch0"))
    refused_with_nothing_changed(sandbox, lan, missing, "uplink nosuch0 does not exist in the host namespace")
    sandbox.host_sh("ip link set lan0 mtu 1400")
    refused_with_nothing_changed(sandbox, lan, lan.spec(), "uplink lan0 has MTU 1400 but network 'office' has mtu 1500",
                                 "`mtu: 1400`")


def test_one_of_netreconciles_own_interfaces_is_refused_as_an_uplink(sandbox, lan):
    spec = lan.spec()
    sandbox.apply(spec)
    ports = json.loads(sh(f"ip -n {sandbox.host} -j link show master {sandbox.name('of')}"))
    veth = next(port["ifname"] for port in ports if port["ifname"] != "lan0")
    taken = sandbox.write_spec(OFFICE.format(uplink=veth).replace('"@of"', '"@o2"').replace("office", "other")
                               .replace("@web", "@app"), "other.yaml")
    result = sandbox.run("plan", spec=taken)
    assert result.code == 1 and f"uplink {veth} is one of netreconcile's own interfaces" in result.stdout


def test_watch_refuses_while_the_uplink_is_gone_and_enslaves_it_again_when_it_comes_back(sandbox, lan):
    text = OFFICE.format(uplink="lan0").replace("version: 1\n", "version: 1\nhost:\n  resolv_conf: {resolv}\n")
    bridge = sandbox.name("of")
    with watching(sandbox, text) as watch:
        watch.start()
        watch.settle()
        assert lan.link()["master"] == bridge
        sandbox.host_sh("ip link del lan0")  # the pair goes: the LAN is unplugged
        watch.reacts(lambda: "uplink lan0 does not exist in the host namespace" in watch.tail(),
                     "the pass refuses the missing uplink")
        lan.plug()
        watch.reacts(lambda: lan.link().get("master") == bridge, "the uplink that came back is enslaved again")
        assert eventually(lambda: lan.ping_from_lan("203.0.113.130"), "the LAN reaches the container again")
        assert watch.stop() == 0


@pytest.mark.parametrize("bridge_nf", [0, 1], ids=["br_netfilter-off", "br_netfilter-on"])
def test_with_icc_false_containers_reach_the_lan_but_not_each_other(sandbox, lan, bridge_nf):
    text = OFFICE.replace("    gateway_on_host: false\n", "    gateway_on_host: false\n    icc: false\n")
    sandbox.apply(lan.spec(text + '  "@db":\n    networks: [office]\n'))
    # bridged LAN traffic passes the inet forward chain only with br_netfilter: as bridge to bridge
    World(sandbox).set_bridge_nf(bridge_nf)
    assert eventually(lambda: lan.ping_from_lan("203.0.113.131"), "the LAN reaches db")
    assert "1 received" in sandbox.in_ns("web", f"ping -c1 -W2 {ROUTER}")
    assert "1 received" not in sandbox.in_ns("web", "ping -c1 -W1 203.0.113.131", check=False)


def test_with_the_gateway_on_the_host_the_bridge_holds_it_and_the_lan_still_reaches_containers_directly(sandbox, lan):
    # the router is one more LAN address netreconcile does not know: reserved, as any LAN host's
    text = OFFICE.replace("gateway: 203.0.113.129", "gateway: 203.0.113.254\n    aux_addresses: [203.0.113.129]")
    text = text.replace("    gateway_on_host: false\n", "")
    sandbox.apply(lan.spec(text))
    assert sandbox.addresses(sandbox.host)[sandbox.name("of")] == ["203.0.113.254/25"]
    assert sandbox.in_ns("web", "ip route show default").startswith("default via 203.0.113.254 dev eth0")
    assert eventually(lambda: lan.ping_from_lan("203.0.113.130"), "the LAN reaches the container at its address")
    assert lan.ping_from_lan("203.0.113.254")  # and the host at its address on the bridge
    assert "1 received" in sandbox.in_ns("web", f"ping -c1 -W2 {ROUTER}")


def test_an_apply_that_fails_after_enslaving_the_uplink_releases_it_when_rolling_back(sandbox, lan):
    spec = lan.spec()
    actions = sandbox.run("plan", "-o", "json", spec=spec).json()["actions"]
    enslaved = next(number for number, action in enumerate(actions, 1) if action["kind"] == "uplink")
    eventually(lan.settled, "the LAN end's carrier follows the uplink")
    before = snapshot(sandbox)
    result = run_failing(sandbox, spec, enslaved)
    assert result.returncode == 1 and "rolled back: the host is as it was before" in result.stderr, result.stderr
    eventually(lan.settled, "the LAN end's carrier follows the uplink")
    assert snapshot(sandbox) == before  # the uplink released and down again, as it was
