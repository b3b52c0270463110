"""The overlay in the kernel: two sandbox hosts joined by an unmanaged veth underlay
(198.51.100.1/24 and .2/24), each applied with its own --host-netns and --node; their
containers reach each other across the VXLAN by static entries alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import eventually, sh
from tests.lan_tools import join_by_underlay
from tests.test_sync import Repository

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
nodes:
  node-a: {address: 198.51.100.1}
  node-b: {address: 198.51.100.2}
networks:
  mesh:
    driver: overlay
    vni: 4242
    subnet: 10.200.0.0/24
containers:
  @api: {node: node-a, networks: {mesh: {ipv4_address: 10.200.0.10}}, links: ["@db:database"]}
  @db: {node: node-b, networks: {mesh: {ipv4_address: 10.200.0.20}}}
  @cache: {node: node-b, networks: [mesh]}
"""


@pytest.fixture
def two_hosts(sandbox):
    """node-a is the sandbox's host namespace, node-b a second one; an unmanaged veth pair
    `under` joins them. The sandbox removes every namespace with its prefix, also on failure."""
    host_a, host_b = sandbox.host, sandbox.name("hostb")
    join_by_underlay(host_a, host_b)
    return host_a, host_b


def run(sandbox, host: str, node: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "reconciler", "--host-netns", host, "--node", node,
               "--state-dir", str(sandbox.tmp / f"state-{node}"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def apply(sandbox, host: str, node: str, spec) -> dict:
    result = run(sandbox, host, node, "apply", "-o", "json", str(spec))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("order", [("node-a", "node-b"), ("node-b", "node-a")])
def test_containers_on_two_nodes_reach_each_other_and_a_second_apply_is_a_no_op(sandbox, two_hosts, order):
    host_a, host_b = two_hosts
    hosts = {"node-a": host_a, "node-b": host_b}
    spec = sandbox.write_spec(SPEC)
    for node in order:  # the addresses are the same whichever node applies first
        apply(sandbox, hosts[node], node, spec)

    vxlan = json.loads(sh(f"ip -n {host_a} -j -d link show vxlan4242"))[0]
    assert vxlan["master"] == "mesh"
    assert (vxlan["linkinfo"]["info_data"]["id"], vxlan["linkinfo"]["info_data"]["local"]) == (4242, "198.51.100.1")
    fdb = {(e["mac"], e.get("dst")) for e in json.loads(sh(f"bridge -n {host_a} -j fdb show dev vxlan4242"))
           if e.get("dst")}
    assert ("00:00:00:00:00:00", "198.51.100.2") in fdb and ("02:42:0a:c8:00:14", "198.51.100.2") in fdb
    for here, there in (("api", "10.200.0.20"), ("db", "10.200.0.10")):
        eventually(lambda: " 0% packet loss" in sandbox.in_ns(here, f"ping -c 1 -W 1 {there}", check=False),
                   f"{here} pings {there} across the overlay")
    cache = json.loads(sh(f"ip -n {sandbox.name('cache')} -j -4 addr show dev eth0"))[0]["addr_info"][0]["local"]
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", f"ping -c 1 -W 1 {cache}", check=False),
               "api pings cache, whose address node-a computed without seeing it")

    db = sandbox.name("db")
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", f"ping -c 1 -W 1 {db}", check=False),
               "api pings db by its discovered name")
    hosts = [line.split() for line in sandbox.in_ns("api", "cat /etc/hosts").splitlines()]
    assert any(line[:1] == ["10.200.0.20"] and db in line for line in hosts)  # discovered
    assert any(line[:1] == ["10.200.0.20"] and "database" in line for line in hosts)  # linked across nodes

    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        again = run(sandbox, host, node, "status", "-o", "json", "--detailed-exitcode", str(spec))
        assert again.returncode == 0, again.stdout + again.stderr
        assert json.loads(again.stdout)["node"] == node

    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        assert run(sandbox, host, node, "destroy", str(spec)).returncode == 0
    for host, address in ((host_a, "198.51.100.1"), (host_b, "198.51.100.2")):
        links = {link["ifname"] for link in json.loads(sh(f"ip -n {host} -j link show"))}
        assert links == {"lo", "under"}
        assert address in sh(f"ip -n {host} -4 addr show dev under")


def entries(host: str) -> tuple[set, set]:
    fdb = {(e["mac"], e["dst"]) for e in json.loads(sh(f"bridge -n {host} -j fdb show dev vxlan4242")) if e.get("dst")}
    neigh = {(e["dst"], e.get("lladdr")) for e in json.loads(sh(f"ip -n {host} -j -4 neigh show dev vxlan4242"))}
    return fdb, neigh


def test_removing_a_remote_container_removes_its_entries_and_drift_is_repaired(sandbox, two_hosts):
    host_a, host_b = two_hosts
    spec = sandbox.write_spec(SPEC.replace("  @cache: {node: node-b, networks: [mesh]}\n",
                                           "  @cache: {node: node-b, networks: {mesh: {ipv4_address: 10.200.0.30}}}\n"))
    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        apply(sandbox, host, node, spec)
    cache_fdb, cache_neigh = ("02:42:0a:c8:00:1e", "198.51.100.2"), ("10.200.0.30", "02:42:0a:c8:00:1e")
    fdb, neigh = entries(host_a)
    assert cache_fdb in fdb and cache_neigh in neigh

    sh(f"bridge -n {host_a} fdb del 02:42:0a:c8:00:1e dev vxlan4242 dst 198.51.100.2")
    sh(f"ip -n {host_a} neigh del 10.200.0.30 dev vxlan4242")
    sh(f"bridge -n {host_a} fdb append 00:00:00:00:00:00 dev vxlan4242 dst 198.51.100.9")  # by hand: not the spec's
    drift = run(sandbox, host_a, "node-a", "plan", "--detailed-exitcode", str(spec))
    assert drift.returncode == 2, drift.stdout + drift.stderr
    apply(sandbox, host_a, "node-a", spec)
    assert entries(host_a) == (fdb, neigh)

    smaller = sandbox.write_spec(SPEC.replace("  @cache: {node: node-b, networks: [mesh]}\n", ""), "smaller.yaml")
    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        apply(sandbox, host, node, smaller)
    assert entries(host_a) == (fdb - {cache_fdb}, neigh - {cache_neigh})
    assert sh(f"ip netns list | grep -c '^{sandbox.name('cache')}'", check=False).strip() == "0"


def test_sync_once_on_every_node_converges_the_fleet_on_each_commit(sandbox, two_hosts, tmp_path):
    host_a, host_b = two_hosts
    hosts = {"node-a": host_a, "node-b": host_b}
    repo = Repository(tmp_path / "fleet-repo", sandbox)

    def sync_all() -> None:
        for node, host in hosts.items():
            result = run(sandbox, host, node, "sync", str(repo.path), "--path", "specs/host.yaml", "--once")
            assert result.returncode == 0, result.stdout + result.stderr

    repo.commit(SPEC)
    sync_all()
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", "ping -c 1 -W 1 10.200.0.20", check=False),
               "api pings db after sync on both nodes")

    repo.commit(SPEC + "  @web: {node: node-b, networks: {mesh: {ipv4_address: 10.200.0.50}}}\n", "add web")
    sync_all()
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", "ping -c 1 -W 1 10.200.0.50", check=False),
               "api reaches web, added on node-b")
    assert ("10.200.0.50", "02:42:0a:c8:00:32") in entries(host_a)[1]

    repo.commit(SPEC, "remove web")
    sync_all()
    fdb, neigh = entries(host_a)
    assert ("02:42:0a:c8:00:32", "198.51.100.2") not in fdb and ("10.200.0.50", "02:42:0a:c8:00:32") not in neigh


SPEC6 = SPEC.replace("    subnet: 10.200.0.0/24\n", "    subnet: 10.200.0.0/24\n    enable_ipv6: true\n"
                     "    subnet6: fd42:4242::/64\n").replace(
    "{ipv4_address: 10.200.0.10}", "{ipv4_address: 10.200.0.10, ipv6_address: 'fd42:4242::10'}").replace(
    "{ipv4_address: 10.200.0.20}", "{ipv4_address: 10.200.0.20, ipv6_address: 'fd42:4242::20'}")


def neigh6(host: str) -> set:
    return {(e["dst"], e.get("lladdr"), tuple(e.get("state", ())))
            for e in json.loads(sh(f"ip -n {host} -j -6 neigh show dev vxlan4242"))}


def test_containers_on_two_nodes_reach_each_other_over_ipv6_and_a_deleted_neighbour_entry_is_made_again(
        sandbox, two_hosts):
    host_a, host_b = two_hosts
    spec = sandbox.write_spec(SPEC6)
    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        apply(sandbox, host, node, spec)

    db_entry = ("fd42:4242::20", "02:42:0a:c8:00:14", ("PERMANENT",))
    assert db_entry in neigh6(host_a)
    assert ("fd42:4242::10", "02:42:0a:c8:00:0a", ("PERMANENT",)) in neigh6(host_b)
    for host in (host_a, host_b):  # IPv6 on the VXLAN device for its entries, but no address of its own
        assert json.loads(sh(f"ip -n {host} -j -6 addr show dev vxlan4242")) in ([], [{}])
        assert json.loads(sh(f"ip -n {host} -j -6 addr show dev mesh")) in ([], [{}])  # no gateway6
    for here, there in (("api", "fd42:4242::20"), ("db", "fd42:4242::10")):
        eventually(lambda: " 0% packet loss" in sandbox.in_ns(here, f"ping -6 -c 1 -W 1 {there}", check=False),
                   f"{here} pings {there} across the overlay over IPv6")
    cache = [a["local"] for a in json.loads(sh(f"ip -n {sandbox.name('cache')} -j -6 addr show dev eth0"))[0][
        "addr_info"] if a["local"].startswith("fd42:4242:")]
    assert len(cache) == 1
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", f"ping -6 -c 1 -W 1 {cache[0]}", check=False),
               "api pings cache over IPv6, whose address node-a computed without seeing it")

    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        again = run(sandbox, host, node, "status", "--detailed-exitcode", str(spec))
        assert again.returncode == 0, again.stdout + again.stderr

    before = neigh6(host_a)
    sh(f"ip -n {host_a} -6 neigh del fd42:4242::20 dev vxlan4242")
    assert db_entry not in neigh6(host_a)
    drift = run(sandbox, host_a, "node-a", "plan", "--detailed-exitcode", str(spec))
    assert drift.returncode == 2 and "fd42:4242::20" in drift.stdout, drift.stdout + drift.stderr
    apply(sandbox, host_a, "node-a", spec)
    assert neigh6(host_a) == before
    assert run(sandbox, host_a, "node-a", "status", "--detailed-exitcode", str(spec)).returncode == 0


def test_status_json_names_the_node_and_says_whether_it_is_in_sync(sandbox, two_hosts):
    host_a, host_b = two_hosts
    spec = sandbox.write_spec(SPEC)
    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        apply(sandbox, host, node, spec)

    def status(host: str, node: str) -> tuple[int, dict]:
        result = run(sandbox, host, node, "status", "-o", "json", "--detailed-exitcode", str(spec))
        return result.returncode, json.loads(result.stdout)

    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        code, document = status(host, node)
        assert (code, document["node"], document["in_sync"]) == (0, node, True), document
    sh(f"bridge -n {host_b} fdb del 02:42:0a:c8:00:0a dev vxlan4242 dst 198.51.100.1")  # api's, on node-b
    code, document = status(host_b, "node-b")
    assert (code, document["node"], document["in_sync"]) == (2, "node-b", False), document
    assert (status(host_a, "node-a")[1]["in_sync"]) is True  # node-a's part is untouched


def hosts_lines(sandbox, container: str) -> list[list[str]]:
    return [line.split() for line in sandbox.in_ns(container, "cat /etc/hosts").splitlines()]


def test_extra_hosts_and_a_link_to_a_container_on_the_other_node_are_in_the_hosts_file(sandbox, two_hosts):
    host_a, host_b = two_hosts
    spec = sandbox.write_spec(SPEC6.replace('links: ["@db:database"]}', 'links: ["@cache:kv"], '
                                            'extra_hosts: ["registry.local:203.0.113.7"]}'))
    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        apply(sandbox, host, node, spec)
    cache = sandbox.name("cache")
    # cache's addresses as node-b built them; node-a computed the same without seeing it
    cache4 = json.loads(sh(f"ip -n {cache} -j -4 addr show dev eth0"))[0]["addr_info"][0]["local"]
    cache6 = [a["local"] for a in json.loads(sh(f"ip -n {cache} -j -6 addr show dev eth0"))[0]["addr_info"]
              if a["local"].startswith("fd42:4242:")][0]
    lines = hosts_lines(sandbox, "api")
    assert ["203.0.113.7", "registry.local"] in lines
    links = [line for line in lines if "kv" in line]
    assert [line[0] for line in links] == [cache4, cache6], lines  # the link's IPv4 line, then its IPv6 one
    assert all(cache in line for line in links)
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", "ping -c 1 -W 1 kv", check=False),
               "api pings cache by its link alias")


THREE_NODES_ONE_UNREACHABLE = SPEC.replace(
    "  node-b: {address: 198.51.100.2}\n",
    "  node-b: {address: 198.51.100.2}\n  node-c: {address: 198.51.100.3}\n",  # no namespace has .3
) + "  @queue: {node: node-c, networks: {mesh: {ipv4_address: 10.200.0.40}}}\n"


def test_a_node_whose_underlay_address_is_unreachable_is_no_error(sandbox, two_hosts):
    host_a, host_b = two_hosts
    spec = sandbox.write_spec(THREE_NODES_ONE_UNREACHABLE)
    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        apply(sandbox, host, node, spec)
    fdb, neigh = entries(host_a)
    # queue's entries are there; the kernel simply cannot deliver to node-c
    assert {("02:42:0a:c8:00:28", "198.51.100.3"), ("00:00:00:00:00:00", "198.51.100.3")} <= fdb
    assert ("10.200.0.40", "02:42:0a:c8:00:28") in neigh
    assert ("10.200.0.40", "02:42:0a:c8:00:28") in entries(host_b)[1]
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", "ping -c 1 -W 1 10.200.0.20", check=False),
               "api still pings db on node-b")
    assert " 0% packet loss" not in sandbox.in_ns("api", "ping -c 1 -W 1 10.200.0.40", check=False)
    for host, node in ((host_a, "node-a"), (host_b, "node-b")):
        again = run(sandbox, host, node, "status", "--detailed-exitcode", str(spec))
        assert again.returncode == 0, again.stdout + again.stderr
        assert apply(sandbox, host, node, spec)["actions"] == []  # a second apply: a no-op
        assert run(sandbox, host, node, "status", "--detailed-exitcode", str(spec)).returncode == 0


def test_turning_ipv6_on_and_off_on_a_built_overlay_network(sandbox, two_hosts):
    host_a, host_b = two_hosts
    hosts = ((host_a, "node-a"), (host_b, "node-b"))
    for text in (SPEC, SPEC6):
        spec = sandbox.write_spec(text)
        for host, node in hosts:
            apply(sandbox, host, node, spec)
    eventually(lambda: " 0% packet loss" in sandbox.in_ns("api", "ping -6 -c 1 -W 1 fd42:4242::20", check=False),
               "api pings db over IPv6 once the network has it")
    for host, node in hosts:
        assert run(sandbox, host, node, "status", "--detailed-exitcode", str(spec)).returncode == 0
        assert json.loads(sh(f"ip -n {host} -j -6 addr show dev vxlan4242")) in ([], [{}])

    spec = sandbox.write_spec(SPEC)
    for host, node in hosts:
        apply(sandbox, host, node, spec)
    assert neigh6(host_a) == set() and neigh6(host_b) == set()
    assert "inet6" not in sandbox.in_ns("api", "ip -6 addr show dev eth0", check=False)
    for host, node in hosts:
        assert run(sandbox, host, node, "status", "--detailed-exitcode", str(spec)).returncode == 0
