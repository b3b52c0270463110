"""NAT, published ports and isolation, with real traffic between throwaway namespaces.

The "outside" is a namespace joined to the sandbox host namespace by an unmanaged veth
pair (198.51.100.1 on the host, 198.51.100.2 outside). The outside has a route back to
the containers' subnets through the host, so that it is the firewall, not missing
routes, that keeps traffic out where it must stay out. Servers answer with the client
address they see (tests/echo_server.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import netns_names, sh

pytestmark = pytest.mark.kernel

TESTS = Path(__file__).resolve().parent
HOST_UPLINK, OUTSIDE = "198.51.100.1", "198.51.100.2"
WEB, CLIENT, OTHER, VAULT = "172.29.1.2", "172.29.1.3", "172.29.2.2", "172.29.3.2"
FRONT_GATEWAY, SEALED_GATEWAY = "172.29.1.1", "172.29.3.1"
BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"

SPEC = """\
version: 1
networks:
  front:
    bridge: "@fr"
    subnet: 172.29.1.0/24
    icc: {icc}
  back:
    bridge: "@bk"
    subnet: 172.29.2.0/24
  sealed:
    bridge: "@se"
    subnet: 172.29.3.0/24
    internal: true
containers:
  "@web":
    networks: [front]
    ports: ["8080:8000", "127.0.0.1:8081:8000", "5353:5300/udp"]
  "@client":
    networks: [front]
  "@other":
    networks: [back]
  "@vault":
    networks: [sealed]
"""


class World:
    """The sandbox, its outside namespace, and echo servers started in namespaces."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.outside = sandbox.name("out")
        self.servers: list[subprocess.Popen] = []

    def build(self, icc: bool = True, text: str = SPEC) -> Path:
        box = self.sandbox
        spec = box.write_spec(text.format(icc=str(icc).lower()))
        if box.host not in netns_names():
            sh(f"ip netns add {box.host}")
            sh(f"ip -n {box.host} link set lo up")  # as on any real host
        sh(f"ip netns add {self.outside}")
        uplink = box.name("up")
        sh(f"ip -n {box.host} link add {uplink} type veth peer name up0 netns {self.outside}")
        sh(f"ip -n {box.host} addr add {HOST_UPLINK}/24 dev {uplink}")
        sh(f"ip -n {box.host} link set {uplink} up")
        sh(f"ip -n {self.outside} addr add {OUTSIDE}/24 dev up0")
        sh(f"ip -n {self.outside} link set up0 up")
        sh(f"ip -n {self.outside} link set lo up")
        sh(f"ip -n {self.outside} route add 172.29.0.0/16 via {HOST_UPLINK}")
        box.apply(spec)
        self.serve(self.outside, "tcp", 8000)
        for container in ("web", "other", "vault"):
            self.serve(box.name(container), "tcp", 8000)
        self.serve(box.name("web"), "udp", 5300)
        return spec

    def serve(self, netns: str, protocol: str, port: int, bind: str = "0.0.0.0") -> None:
        """An echo server on bind:port (`::`: IPv6 only), once it listens."""
        self.servers.append(subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(TESTS / "echo_server.py"), protocol, bind, str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        flag = "-ltn" if protocol == "tcp" else "-lun"
        listening = f"[{bind}]:{port} " if ":" in bind else f"{bind}:{port} "
        deadline = time.monotonic() + 10
        while listening not in sh(f"ip netns exec {netns} ss -H {flag}"):
            assert time.monotonic() < deadline, f"the {protocol} server in {netns} did not start"
            time.sleep(0.05)

    def ask(self, netns: str, address: str, port: int, protocol: str = "tcp") -> str | None:
        """The client address the server at address:port saw, or None without an answer."""
        result = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, str(TESTS / "echo_client.py"), protocol, address,
             str(port), "1.5"],
            capture_output=True, text=True, timeout=30,
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def ask_from(self, short: str, address: str, port: int, protocol: str = "tcp") -> str | None:
        return self.ask(self.sandbox.name(short), address, port, protocol)

    def ping(self, short: str, address: str) -> bool:
        return "1 received" in self.sandbox.in_ns(short, f"ping -c1 -W1 {address}", check=False)

    def set_bridge_nf(self, value: int) -> None:
        if not Path("/proc/sys/net/bridge").is_dir():
            pytest.skip(f"{BRIDGE_NF} does not exist here (br_netfilter is not loaded on this machine)")
        self.sandbox.host_sh(f"sysctl -qw {BRIDGE_NF}={value}")

    def stop(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()


@pytest.fixture
def world(sandbox):
    outside = World(sandbox)
    try:
        yield outside
    finally:
        outside.stop()


def tables(sandbox) -> str:
    return sandbox.host_sh("nft list tables")


def test_published_ports_answer_outside_and_host_and_keep_the_client_address(world):
    world.build()
    assert world.ask(world.outside, HOST_UPLINK, 8080) == OUTSIDE  # no proxy: the real client address
    assert world.ask(world.outside, HOST_UPLINK, 5353, "udp") == OUTSIDE
    assert world.ask(world.sandbox.host, HOST_UPLINK, 8080) is not None
    assert world.ask(world.sandbox.host, "127.0.0.1", 8081) is not None
    assert world.ask(world.sandbox.host, "127.0.0.1", 8080) is not None  # published on every host address
    assert world.ask(world.outside, HOST_UPLINK, 8081) is None  # published on 127.0.0.1 only
    assert world.ask(world.outside, WEB, 8000) is None  # routable, but not published
    assert world.ask(world.outside, HOST_UPLINK, 8082) is None


def test_containers_reach_the_outside_masqueraded_and_internal_networks_do_not(world):
    world.build()
    assert world.ask_from("client", OUTSIDE, 8000) == HOST_UPLINK
    assert world.sandbox.host_sh("sysctl -n net.ipv4.ip_forward").strip() == "1"
    # an internal network has no default route; with one added by hand the firewall still says no
    assert "default" not in world.sandbox.in_ns("vault", "ip route")
    world.sandbox.in_ns("vault", f"ip route add 198.51.100.0/24 via {SEALED_GATEWAY}")
    assert world.ping("vault", SEALED_GATEWAY)
    assert not world.ping("vault", OUTSIDE)
    assert world.ask_from("vault", OUTSIDE, 8000) is None
    assert world.ask(world.outside, VAULT, 8000) is None


def test_networks_are_isolated_from_each_other_but_published_ports_are_published(world):
    world.build()
    assert world.ask_from("client", WEB, 8000) == CLIENT  # same network, icc: true
    assert world.ask_from("other", WEB, 8000) is None
    assert world.ask_from("client", OTHER, 8000) is None
    assert world.ask_from("client", VAULT, 8000) is None
    assert world.ask_from("other", HOST_UPLINK, 8080) is not None


@pytest.mark.parametrize("bridge_nf", [0, 1], ids=["br_netfilter-off", "br_netfilter-on"])
@pytest.mark.parametrize("icc", [True, False], ids=["icc", "no-icc"])
def test_hairpin_reaches_published_ports_from_the_same_bridge(world, bridge_nf, icc):
    world.build(icc=icc)
    world.set_bridge_nf(bridge_nf)
    assert world.ask_from("client", HOST_UPLINK, 8080) is not None  # a neighbour through the host address
    assert world.ask_from("web", HOST_UPLINK, 8080) is not None  # itself through the host address
    assert world.ask_from("client", HOST_UPLINK, 5353, "udp") is not None


@pytest.mark.parametrize("bridge_nf", [0, 1], ids=["br_netfilter-off", "br_netfilter-on"])
def test_icc_false_keeps_containers_apart_but_lets_them_reach_gateway_and_outside(world, bridge_nf):
    world.build(icc=False)
    world.set_bridge_nf(bridge_nf)
    assert not world.ping("client", WEB)
    assert world.ask_from("client", WEB, 8000) is None
    assert world.ping("client", FRONT_GATEWAY)
    assert world.ask_from("client", OUTSIDE, 8000) == HOST_UPLINK


def test_icc_can_be_switched_off_and_on_in_place(world):
    spec = world.build(icc=True)
    assert world.ping("client", WEB)
    spec.write_text(spec.read_text().replace("icc: true", "icc: false"))
    actions = world.sandbox.apply(spec)["actions"]
    assert [(a["op"], a["kind"]) for a in actions] == [("update", "firewall")]
    assert not world.ping("client", WEB)
    spec.write_text(spec.read_text().replace("icc: false", "icc: true"))
    world.sandbox.apply(spec)
    assert world.ping("client", WEB)
    assert "table bridge netreconcile" not in tables(world.sandbox)


# a range on the same container ports, and one moved to other ports
RANGES = SPEC.replace('"5353:5300/udp"]', '"5353:5300/udp", "8100-8199:8100-8199", "8200-8299:9200-9299"]')


def test_a_published_range_is_one_rule_reaching_each_port_and_a_second_apply_is_a_no_op(world):
    box = world.sandbox
    spec = world.build(text=RANGES)
    for port in (8105, 8190, 9207, 9298):  # only these: a port sent elsewhere gets no answer
        world.serve(box.name("web"), "tcp", port)
    for host_port in (8105, 8190, 8207, 8298):
        assert world.ask(world.outside, HOST_UPLINK, host_port) == OUTSIDE, host_port
        assert world.ask(box.host, "127.0.0.1", host_port) is not None, host_port
    assert world.ask(world.outside, HOST_UPLINK, 8106) is None
    published = [line.strip() for line in box.host_sh("nft list chain inet netreconcile published").splitlines()]
    assert [rule for rule in published if "map @" in rule] == [  # the single ports: one map lookup each kind
        "meta nfproto ipv4 dnat ip to tcp dport map @published_ip_tcp",
        "meta nfproto ipv4 dnat ip to udp dport map @published_ip_udp",
        "dnat ip to ip daddr . tcp dport map @published_ip_daddr_tcp",
    ]
    assert [rule.split(" dnat ")[0] for rule in published if " dnat " in rule and "map @" not in rule] == [
        "meta nfproto ipv4 tcp dport 8100-8199", "meta nfproto ipv4 tcp dport 8200-8299",
    ]
    again = box.run("apply", "-o", "json", spec=spec)
    assert again.code == 0, again.stderr
    assert again.json()["actions"] == []


def _without_handles(listing: str) -> str:
    return re.sub(r" # handle \d+", "", listing)


def test_the_firewall_is_ours_alone_and_restored_after_hand_edits(world):
    box = world.sandbox
    user_table = "table inet t_user {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n" \
                "\t\ttcp dport 22 counter accept\n\t}\n}\n"
    sh(f"ip netns add {box.host}")
    sh(f"ip -n {box.host} link set lo up")
    (box.tmp / "user.nft").write_text(user_table)
    box.host_sh(f"nft -f {box.tmp / 'user.nft'}")
    user_before = box.host_sh("nft list table inet t_user")
    spec = world.build(icc=False)
    assert box.host_sh("nft list table inet t_user") == user_before
    ours = box.host_sh("nft -a list ruleset")

    again = box.run("apply", "-o", "json", spec=spec)
    assert again.json()["actions"] == []
    assert box.host_sh("nft -a list ruleset") == ours  # same handles: nothing was reloaded

    forward = box.host_sh("nft -a list chain inet netreconcile forward")
    handle = re.search(r'oifname "\S+" drop # handle (\d+)', forward).group(1)
    box.host_sh(f"nft delete rule inet netreconcile forward handle {handle}")
    drift = box.run("status", "--detailed-exitcode", "-o", "json", spec=spec)
    assert drift.code == 2
    (action,) = drift.json()["actions"]
    assert (action["op"], action["kind"]) == ("update", "firewall")
    assert "1 rule(s) to add, 0 to remove" in action["reason"] and "drop" in action["reason"]
    box.apply(spec)
    assert _without_handles(box.host_sh("nft list ruleset")) == _without_handles(ours)

    box.host_sh("nft delete table bridge netreconcile")
    assert [a["kind"] for a in box.apply(spec)["actions"]] == ["firewall"]
    assert world.ask(world.outside, HOST_UPLINK, 8080) == OUTSIDE

    destroyed = box.run("destroy", "-o", "json", spec=spec)
    assert destroyed.code == 0, destroyed.stderr
    assert "netreconcile" not in tables(box)
    assert box.host_sh("nft list table inet t_user") == user_before


def _handles(box) -> list[str]:
    """The lines of the tables that carry a handle (table, maps, chains, rules; not map
    elements): any reload of the tables gives them new handles."""
    return [line for line in box.host_sh("nft -a list ruleset").splitlines() if "# handle" in line]


def test_a_moved_port_is_one_map_element_update_and_traffic_follows_it(world):
    box = world.sandbox
    spec = world.build()
    handles = _handles(box)
    spec.write_text(spec.read_text().replace('"8080:8000"', '"8090:8000"'))
    (action,) = box.apply(spec)["actions"]
    assert (action["op"], action["kind"]) == ("update", "firewall")
    assert action["changes"] == [{"field": "elements", "added": [f"published_ip_tcp 8090 : {WEB} . 8000"],
                                  "removed": [f"published_ip_tcp 8080 : {WEB} . 8000"]}]
    assert _handles(box) == handles  # the tables were not reloaded
    assert world.ask(world.outside, HOST_UPLINK, 8090) == OUTSIDE
    assert world.ask(box.host, "127.0.0.1", 8090) is not None
    assert world.ask(world.outside, HOST_UPLINK, 8080) is None


def test_a_map_element_deleted_by_hand_is_found_and_put_back_without_a_reload(world):
    box = world.sandbox
    spec = world.build()
    handles = _handles(box)
    box.host_sh("nft delete element inet netreconcile published_ip_tcp '{ 8080 }'")
    assert world.ask(world.outside, HOST_UPLINK, 8080) is None
    drift = box.run("status", "--detailed-exitcode", "-o", "json", spec=spec)
    assert drift.code == 2, drift.stderr
    (action,) = drift.json()["actions"]
    assert (action["op"], action["kind"]) == ("update", "firewall")
    assert action["changes"] == [{"field": "elements", "added": [f"published_ip_tcp 8080 : {WEB} . 8000"],
                                  "removed": []}]
    box.apply(spec)
    assert _handles(box) == handles
    assert world.ask(world.outside, HOST_UPLINK, 8080) == OUTSIDE


def test_plan_checks_the_ruleset_without_loading_it(world, sandbox):
    spec = sandbox.write_spec(SPEC.format(icc="true"))
    sh(f"ip netns add {sandbox.host}")
    result = sandbox.run("plan", "-o", "json", spec=spec)
    assert result.code == 0, result.stderr
    assert any(a["kind"] == "firewall" and a["op"] == "create" for a in result.json()["actions"])
    assert tables(sandbox) == ""
