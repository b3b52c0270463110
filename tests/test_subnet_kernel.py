"""A subnet chosen at plan time, in a throwaway host namespace: it avoids a route and an
address planted there, the bridge gets its gateway, and once made it sticks even when a
host route over it appears later.

The sandbox host namespace reaches a "LAN" namespace (198.51.100.0/24, its router
198.51.100.254) through an unmanaged veth, `up0`, which also carries 172.18.0.5/24; the
host routes 172.17.0.0/16 and its default route through the router.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import sh
from tests.lan_tools import make_lan

pytestmark = pytest.mark.kernel

ROUTER = "198.51.100.254"
SPEC = """\
version: 1
networks:
  front:
    bridge: "@fr"
containers:
  "@web":
    networks: [front]
  "@db":
    networks: [front]
"""


def plant_host_networks(sandbox) -> None:
    make_lan(sandbox, "up0", router=f"{ROUTER}/24")
    sandbox.host_sh("ip link set lo up")
    sandbox.host_sh("ip addr add 198.51.100.1/24 dev up0")
    sandbox.host_sh("ip addr add 172.18.0.5/24 dev up0")
    sandbox.host_sh(f"ip route add 172.17.0.0/16 via {ROUTER}")
    sandbox.host_sh(f"ip route add default via {ROUTER}")  # overlaps everything: not a network to avoid


def default_gateway(sandbox, short: str) -> str:
    routes = json.loads(sh(f"ip -n {sandbox.name(short)} -j -4 route show default"))
    return routes[0]["gateway"]


def test_the_chosen_subnet_skips_the_hosts_networks_and_sticks(sandbox) -> None:
    plant_host_networks(sandbox)
    spec = sandbox.write_spec(SPEC)
    bridge = sandbox.name("fr")

    planned = sandbox.run("plan", spec=spec)
    assert planned.code == 0, planned.stderr
    assert f"+ address 172.18.1.1/24 on host:{bridge}: missing  ({spec}:3:3; subnet 172.18.1.0/24 chosen: none in " \
           "the spec)" in planned.stdout.splitlines()

    sandbox.apply(spec)
    assert sandbox.addresses(sandbox.host)[bridge] == ["172.18.1.1/24"]
    assert sandbox.addresses(sandbox.name("web"))["eth0"] == ["172.18.1.2/24"]
    assert sandbox.addresses(sandbox.name("db"))["eth0"] == ["172.18.1.3/24"]
    assert default_gateway(sandbox, "web") == "172.18.1.1"
    sandbox.in_ns("web", "ping -c 1 -W 5 172.18.1.3")
    assert sandbox.apply(spec)["actions"] == []
    shown = sandbox.run("show", "-o", "json", spec=spec)
    assert [network["subnets"] for network in shown.json()["networks"]] == [["172.18.1.0/24"]], shown.stderr
    drawn = sandbox.run("graph", "--live", "-o", "mermaid", spec=spec)
    assert "172.18.1.0/24 gw 172.18.1.1" in drawn.stdout, drawn.stderr

    # a VPN's route over the chosen subnet appears: the choice is read back from the bridge
    sandbox.host_sh(f"ip route add 172.18.1.0/25 via {ROUTER}")
    assert sandbox.apply(spec)["actions"] == []
    assert sandbox.addresses(sandbox.host)[bridge] == ["172.18.1.1/24"]
    status = sandbox.run("status", "--detailed-exitcode", spec=spec)
    assert status.code == 0, status.stdout + status.stderr


def test_a_new_network_avoids_the_planted_route_and_the_chosen_subnet(sandbox) -> None:
    plant_host_networks(sandbox)
    spec = sandbox.write_spec(SPEC)
    sandbox.apply(spec)
    sandbox.host_sh(f"ip route add 172.18.2.0/24 via {ROUTER}")
    grown = sandbox.write_spec(SPEC.replace('    bridge: "@fr"\n', '    bridge: "@fr"\n  back:\n    bridge: "@bk"\n')
                               .replace("  \"@db\":\n    networks: [front]", "  \"@db\":\n    networks: [front, back]"),
                               "grown.yaml")
    sandbox.apply(grown)
    addresses = sandbox.addresses(sandbox.host)
    assert (addresses[sandbox.name("fr")], addresses[sandbox.name("bk")]) == (["172.18.1.1/24"], ["172.18.3.1/24"])
    assert sandbox.addresses(sandbox.name("db"))["eth1"] == ["172.18.3.2/24"]
