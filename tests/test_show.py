"""`netreconcile show` against the kernel, in a throwaway host namespace: its JSON is what
`ip -j` reads from the same namespaces, and says where each entry came from in the spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.render import inventory
from reconciler.spec.loader import load_spec
from reconciler.state.desired import build_desired
from reconciler.state.model import State
from tests.conftest import sh
from tests.lan_tools import make_lan

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
networks:
  front:
    bridge: "@fr"
    subnet: 203.0.113.0/24
    enable_ipv6: true
    subnet6: fd42:18::/64
  back:
    bridge: "@bk"
    subnet: 198.51.100.0/24
    internal: true
containers:
  "@web":
    networks:
      front: {ipv4_address: 203.0.113.10}
      back: {}
    ports: ["8080:80", "127.0.0.1:5353:53/udp"]
  "@db":
    networks: [back]
  "@side":
    network_mode: "container:@web"
"""


def ip_json(netns: str, *args: str) -> list[dict]:
    return json.loads(sh(f"ip -n {netns} -j {' '.join(args)}") or "[]")


def kernel_interfaces(netns: str) -> dict[str, dict]:
    """What ip reads of a namespace's interfaces (lo aside): MAC, MTU and addresses (no link-local ones)."""
    return {
        link["ifname"]: {
            "mac": link["address"], "mtu": link["mtu"],
            "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                                if not a["local"].startswith("fe80:")),
        }
        for link in ip_json(netns, "addr", "show") if link["ifname"] != "lo"
    }


def kernel_routes(netns: str) -> set[tuple[str, str, str]]:
    """(destination, gateway, interface) of the routes the kernel did not make itself, of both families."""
    return {(r["dst"], r.get("gateway", ""), r["dev"])
            for family in ("-4", "-6") for r in ip_json(netns, family, "route", "show")
            if r.get("protocol") != "kernel"}


def test_show_json_is_what_the_kernel_holds_and_where_it_came_from(sandbox):
    spec = sandbox.write_spec(SPEC)
    sandbox.apply(spec)
    web, db, side = (sandbox.name(short) for short in ("web", "db", "side"))
    sh(f"ip -n {db} route add 203.0.113.0/24 via 198.51.100.1")  # by hand: in the kernel, not in the spec

    result = sandbox.run("show", "-o", "json", spec=spec)
    assert result.code == 0, result.stderr
    document = result.json()
    containers = {c["name"]: c for c in document["containers"]}
    networks = {n["name"]: n for n in document["networks"]}
    assert document["host_netns"] == sandbox.host
    assert set(containers) == {web, db, side} and set(networks) == {"front", "back"}

    for name in (web, db):
        shown = containers[name]
        assert shown["in_kernel"] and shown["namespace"] == f"/run/netns/{name}"
        assert {i["name"]: {"mac": i["mac"], "mtu": i["mtu"], "addresses": sorted(a["address"] for a in i["addresses"])}
                for i in shown["interfaces"]} == kernel_interfaces(name)
        assert {(r["destination"], r["gateway"], r["interface"]) for r in shown["routes"]} == kernel_routes(name)
        for file in shown["files"]:
            assert Path(file["path"]).is_file() and file["as_spec_says"]
        assert {Path(f["path"]).name for f in shown["files"]} == {"hostname", "hosts", "resolv.conf"}

    for name, network in networks.items():
        bridge = network["bridge"]
        [link] = ip_json(sandbox.host, "addr", "show", "dev", bridge)
        assert network["mac"] == link["address"] and network["mtu"] == link["mtu"]
        assert sorted(g["address"] for g in network["gateways"]) == sorted(
            f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"])
        ports = {port["ifname"] for port in ip_json(sandbox.host, "link", "show", "master", bridge)}
        on_it = [i for c in containers.values() for i in c["interfaces"] if i["network"] == name]
        assert {i["host_end"] for i in on_it} == ports
        assert sorted(network["containers"]) == sorted(c["name"] for c in containers.values()
                                                       if any(i["network"] == name for i in c["interfaces"]))

    # where each came from: the spec's lines
    lines = spec.read_text().splitlines()

    def line_of(text: str) -> str:
        return f"{spec}:{next(n for n, line in enumerate(lines, 1) if line.startswith(text))}"

    web_key = f'  "{web}":'
    assert containers[web]["source"] == f"{line_of(web_key)}:3"
    [front] = [i for i in containers[web]["interfaces"] if i["network"] == "front"]
    assert front["source"].startswith(line_of("      front:") + ":")
    assert {a["source"] for a in front["addresses"]} == {front["source"]}
    assert networks["front"]["source"] == f"{line_of('  front:')}:3"
    hand_made = [r for r in containers[db]["routes"] if r["destination"] == "203.0.113.0/24"]
    assert hand_made == [{"destination": "203.0.113.0/24", "gateway": "198.51.100.1",
                          "interface": "eth0", "family": 4, "source": None}]
    assert {p["published"] for p in containers[web]["ports"]} == {"*:8080 -> 80/tcp", "127.0.0.1:5353 -> 53/udp"}
    assert all(p["in_kernel"] for p in containers[web]["ports"])
    assert containers[side]["shares"] == web and containers[side]["interfaces"] == []
    assert containers[side]["network_mode"] == f"container:{web}"

    text = sandbox.run("show", spec=spec)
    assert text.code == 0, text.stderr
    assert "Networks" in text.stdout and web in text.stdout and "{" not in text.stdout


def test_show_lists_what_the_kernel_lacks_and_what_the_spec_dropped(sandbox):
    spec = sandbox.write_spec(SPEC)
    sandbox.apply(spec)
    web, db = sandbox.name("web"), sandbox.name("db")
    sh(f"ip netns del {db}")
    smaller = sandbox.write_spec(SPEC.replace('  "@side":\n    network_mode: "container:@web"\n', ""), "smaller.yaml")
    document = sandbox.run("show", "-o", "json", spec=smaller).json()
    containers = {c["name"]: c for c in document["containers"]}
    assert containers[db]["in_kernel"] is False and containers[db]["interfaces"] == []
    side = containers[sandbox.name("side")]
    assert side["in_spec"] is False and side["in_kernel"] is True and side["source"] is None
    assert containers[web]["in_spec"] and containers[web]["in_kernel"]


def test_the_human_tables_hold_the_document():
    spec = load_spec(str(Path(__file__).resolve().parent.parent / "specs" / "quickstart.yaml"))
    desired = build_desired(spec, State())
    document = inventory.inventory(spec, desired, desired, "", "/run/netns", "/etc/netns")
    rows = inventory.container_rows(document)
    assert ("qs-web", "/run/netns/qs-web", "eth0 on bridge", "02:42:ac:11:00:0a", "172.17.0.10/16",
            "default via 172.17.0.1", rows[-1][-1]) in rows
    assert inventory.network_rows(document)[0][:5] == ("bridge", "docker0", "172.17.0.0/16", "172.17.0.1/16",
                                                       "qs-cache, qs-db, qs-web")
    assert ("qs-web", "port", "*:8080 -> 80/tcp", str(spec.container("qs-web").location)) in \
        inventory.detail_rows(document)


MACVLAN_SPEC = """\
version: 1
networks:
  lan:
    driver: macvlan
    parent: lan0
    subnet: 198.51.100.0/24
  front:
    bridge: "@fr"
    subnet: 203.0.113.0/24
containers:
  "@a":
    networks:
      front: {}
      lan: {ipv4_address: 198.51.100.10}
"""


def test_show_lists_macvlan_interfaces_with_their_parent(sandbox):
    make_lan(sandbox, "lan0")
    spec = sandbox.write_spec(MACVLAN_SPEC)
    sandbox.apply(spec)
    document = sandbox.run("show", "-o", "json", spec=spec).json()
    a = next(c for c in document["containers"] if c["name"] == sandbox.name("a"))
    interfaces = {i["name"]: i for i in a["interfaces"]}
    assert [i["name"] for i in a["interfaces"]] == ["eth0", "eth1"]
    kernel = kernel_interfaces(sandbox.name("a"))
    assert interfaces["eth1"]["network"] == "lan" and interfaces["eth1"]["parent"] == "lan0"
    assert interfaces["eth1"]["mode"] == "bridge" and "host_end" not in interfaces["eth1"]
    assert interfaces["eth1"]["mac"] == kernel["eth1"]["mac"] == "02:42:c6:33:64:0a"
    assert [x["address"] for x in interfaces["eth1"]["addresses"]] == kernel["eth1"]["addresses"]
    assert interfaces["eth0"]["bridge"] == sandbox.name("fr")
    lan = next(n for n in document["networks"] if n["name"] == "lan")
    assert (lan["driver"], lan["bridge"], lan["parent"], lan["containers"]) == ("macvlan", None, "lan0",
                                                                               [sandbox.name("a")])
    table = sandbox.run("show", spec=spec)
    assert table.code == 0 and "parent lan0" in table.stdout
