"""The examples in specs/ validate, and apply as documented (in a throwaway namespace)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconciler.spec.loader import load_spec
from reconciler.state.desired import used_not_owned
from tests.conftest import sh
from tests.lan_tools import make_lan

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))


def test_the_readme_spec_reference_is_a_valid_spec(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    reference = readme[readme.index("## Spec reference"):].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "reference.yaml").write_text(reference)
    spec = load_spec(tmp_path / "reference.yaml")
    assert {c.mode for c in spec.containers} == {"bridge", "container"} and spec.containers[0].ports


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_spec_is_valid(path):
    spec = load_spec(path)
    assert spec.containers


def renamed(text: str, prefix: str) -> str:
    """Container and bridge names made unique so the test cannot meet a real demo."""
    text = re.sub(r"\b(qs|ex)-", f"{prefix}-", text)
    bridges: dict[str, str] = {}
    return re.sub(r"(?m)^(\s+bridge: )([A-Za-z][\w.-]*)",
                  lambda m: m.group(1) + bridges.setdefault(m.group(2), f"{prefix}b{len(bridges)}"), text)


def applied_example(sandbox, path: Path) -> Path:
    """The example renamed for this sandbox, applied; its path. The host interfaces it
    names as macvlan parents are made first: each a veth pair into a LAN namespace."""
    spec = sandbox.tmp / path.name
    spec.write_text(renamed(path.read_text(), sandbox.prefix))
    make_lan_interfaces(sandbox, spec)
    assert apply_example(sandbox, spec)["actions"]
    return spec


def apply_example(sandbox, spec: Path) -> dict:
    """`apply -o json`; a multi-host example as its first node (the others are remote and
    unreachable here, which is not an error: their entries stay, the kernel cannot deliver)."""
    nodes = load_spec(spec).nodes
    if not nodes:
        return sandbox.apply(spec)
    result = sandbox.run("--node", nodes[0].name, "apply", "-o", "json", spec=spec)
    assert result.code == 0, result.stderr
    return result.json()


def make_lan_interfaces(sandbox, spec: Path) -> None:
    """The host interfaces the example uses but netreconcile never creates (uplinks and
    macvlan parents): each one end of a veth pair into a LAN namespace of its own."""
    for number, ifname in enumerate(used_not_owned(load_spec(spec))):
        make_lan(sandbox, ifname, short=f"lan{number}")


def example(name: str) -> Path:
    return next(p for p in SPECS if p.name == name)


@pytest.mark.kernel
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_spec_applies_and_reapplies_as_a_no_op(sandbox, path):
    spec = applied_example(sandbox, path)
    assert apply_example(sandbox, spec)["actions"] == []


@pytest.mark.kernel
def test_two_networks_example_addresses_are_as_documented(sandbox):
    applied_example(sandbox, example("two-networks.yaml"))
    api = sandbox.addresses(sandbox.name("api"))
    assert api["eth0"] == ["10.10.0.2/24"] and api["eth1"] == ["10.20.0.1/24"]
    assert sandbox.links(sandbox.name("db"))["eth0"]["address"] == "02:42:0a:14:00:63"
    assert sandbox.links(sandbox.name("db"))["eth0"]["mtu"] == 1400
    assert "1 received" in sandbox.in_ns("api", "ping -c1 -W2 10.20.0.99")
    worker = sandbox.addresses(sandbox.name("worker"))
    assert worker["eth0"] == ["10.10.0.3/24"] and worker["data"] == ["10.20.0.3/24"]
    assert sandbox.in_ns("worker", "ip route show default").startswith("default via 10.20.0.254 dev data")


@pytest.mark.kernel
def test_published_ports_example_behaves_as_documented(sandbox):
    applied_example(sandbox, example("published-ports.yaml"))
    assert sandbox.addresses(sandbox.name("web"))["eth0"] == ["10.30.0.2/24"]
    assert sandbox.addresses(sandbox.name("secrets")) == {
        "lo": ["127.0.0.1/8"], "eth0": ["10.32.0.2/24"], "eth1": ["10.31.0.4/24"],
    }
    assert sandbox.in_ns("secrets", "ip route show default").startswith("default via 10.31.0.1 dev eth1")
    table = sandbox.host_sh("nft list table inet netreconcile")
    assert "8080 : 10.30.0.2 . 80" in table  # elements of the maps of single published ports
    assert "127.0.0.1 . 8443 : 10.30.0.2 . 443" in table
    assert "5353 : 10.30.0.2 . 53" in table
    assert "1 received" in sandbox.in_ns("worker1", "ping -c1 -W1 10.31.0.1")
    assert "1 received" not in sandbox.in_ns("worker1", "ping -c1 -W1 10.31.0.3", check=False)
    assert "1 received" not in sandbox.in_ns("web", "ping -c1 -W1 10.31.0.2", check=False)


@pytest.mark.kernel
def test_network_modes_example_behaves_as_documented(sandbox):
    applied_example(sandbox, example("network-modes.yaml"))
    app = sandbox.in_ns("app", "ip -o -4 addr show")
    assert "eth0    inet 172.17.0.2/16" in app
    assert sandbox.in_ns("sidecar", "ip -o -4 addr show") == app
    assert set(sandbox.links(sandbox.name("sealed"))) == {"lo"}
    assert set(sandbox.links(sandbox.name("tool"))) == set(sandbox.links(sandbox.host))
    assert "search corp.example" in (Path("/etc/netns") / sandbox.name("tool") / "resolv.conf").read_text()


@pytest.mark.kernel
def test_lan_macvlan_example_puts_the_containers_on_the_lan(sandbox):
    applied_example(sandbox, example("lan-macvlan.yaml"))
    lan = sandbox.name("lan0")
    sh(f"ip -n {lan} addr add 198.51.100.1/24 dev wire0")
    web = sandbox.links(sandbox.name("web"))["eth0"]
    assert web["linkinfo"]["info_kind"] == "macvlan" and web["address"] == "02:42:c6:33:64:0a"
    assert sandbox.addresses(sandbox.name("api"))["eth0"] == ["198.51.100.2/24"]
    assert sandbox.in_ns("api", "ip route show default").startswith("default via 198.51.100.1 dev eth0")
    assert "1 received" in sh(f"ip netns exec {lan} ping -c1 -W5 198.51.100.10")
    assert "1 received" in sandbox.in_ns("web", "ping -c1 -W5 198.51.100.2")


@pytest.mark.kernel
def test_dual_stack_example_addresses_are_as_documented(sandbox):
    applied_example(sandbox, example("dual-stack.yaml"))

    def ipv6(container: str) -> dict[str, list[str]]:
        found = json.loads(sh(f"ip -n {sandbox.name(container)} -j -6 addr show scope global"))
        addresses = {link["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if "local" in a]
                     for link in found}
        return {ifname: listed for ifname, listed in addresses.items() if listed}

    assert ipv6("web") == {"eth0": ["fd42:30::10/64"]}
    assert ipv6("api") == {"eth0": ["fd42:30::2/64"]}
    assert sandbox.addresses(sandbox.name("api"))["eth1"] == ["10.50.0.2/24"]
    assert ipv6("db") == {} and ipv6("metrics") == {"eth0": ["fd42:40::1/64"]}
    sh(f"ip netns exec {sandbox.name('web')} ping -6 -c1 -W5 fd42:30::2")


@pytest.mark.kernel
def test_discovery_example_resolves_as_documented(sandbox):
    applied_example(sandbox, example("discovery.yaml"))

    def first_address(container: str, database: str, name: str) -> str:
        found = sh(f"ip netns exec {sandbox.name(container)} getent {database} {name} || true").split()
        return found[0] if found else ""

    assert first_address("web", "ahostsv4", "database") == "10.60.0.20"
    assert first_address("web", "ahostsv4", sandbox.name("cache")) == ""
    assert first_address("db", "ahostsv4", sandbox.name("cache")) == "10.61.0.30"
    assert first_address("api", "ahostsv6", sandbox.name("cache")) == "fd42:61::30"
    assert first_address("web", "ahostsv4", "api") == "10.60.0.3"  # hostname; web has .2
    assert first_address("old", "ahostsv4", sandbox.name("cache")) == ""


@pytest.mark.kernel
def test_lan_uplink_example_puts_containers_on_the_lan_as_documented(sandbox):
    spec = applied_example(sandbox, example("lan-uplink.yaml"))
    lan = sandbox.name("lan0")
    sh(f"ip -n {lan} addr add 203.0.113.129/25 dev wire0")  # the router
    assert sandbox.addresses(sandbox.name("scanner"))["eth0"] == ["203.0.113.130/25"]
    assert sandbox.in_ns("scanner", "ip route show default").startswith("default via 203.0.113.129 dev eth0")
    assert "1 received" in sh(f"ip netns exec {lan} ping -c1 -W5 203.0.113.140")
    assert sandbox.links(sandbox.host)["eth2"]["master"] == f"{sandbox.prefix}b0"
    assert sandbox.run("destroy", spec=spec).code == 0
    eth2 = sandbox.links(sandbox.host)["eth2"]
    assert "master" not in eth2 and "UP" in eth2["flags"]
