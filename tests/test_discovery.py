"""Name discovery: Docker's scope rules (reconciler.state.discovery), the hosts-file
section they give (reconciler.render.hostsfile) and what one container joining rewrites."""

from __future__ import annotations

import subprocess
import textwrap
from ipaddress import ip_address

import pytest

from reconciler.render.hostsfile import DISCOVERY_BEGIN, DISCOVERY_END, render_discovery
from reconciler.spec.loader import load_spec_text
from reconciler.spec.types import Spec
from reconciler.state.desired import build_desired
from reconciler.state.discovery import names_in_scope
from reconciler.state.ipam import assign_addresses, assign_interfaces
from reconciler.state.model import File, State
from reconciler.state.planner import plan

SPEC = """\
version: 1
networks:
  front: {subnet: 10.10.0.0/24}
  back: {subnet: 10.20.0.0/24, enable_ipv6: true, subnet6: "fd42:20::/64"}
  bridge: {subnet: 10.30.0.0/24}
  quiet: {subnet: 10.40.0.0/24, discovery: false}
containers:
  a: {networks: [front]}
  b:
    hostname: bee
    networks:
      front: {aliases: [cache, shared]}
  c:
    networks:
      front: {aliases: [shared]}
      back: {}
  d: {networks: [back, bridge, quiet]}
  e: {networks: [bridge]}
  f: {networks: [quiet]}
  side: {network_mode: "container:a"}
  h: {network_mode: host}
  n: {network_mode: none}
"""


def load(text: str) -> Spec:
    return load_spec_text(textwrap.dedent(text), "spec.yaml")


def scope_of(text: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """Per container: name -> its addresses as text."""
    spec = load(text)
    interfaces = assign_interfaces(spec, State())
    addresses = assign_addresses(spec, State(), interfaces)
    addresses6 = assign_addresses(spec, State(), interfaces, family=6)
    return {
        container: {name: tuple(map(str, found)) for name, found in records}
        for container, records in names_in_scope(spec, addresses, addresses6).items()
    }


@pytest.fixture(scope="module")
def scope():
    return scope_of(SPEC)


def test_a_container_finds_the_others_on_its_network_by_name_alias_and_hostname(scope):
    assert scope["a"] == {
        "a": ("10.10.0.2",), "b": ("10.10.0.3",), "cache": ("10.10.0.3",), "shared": ("10.10.0.3", "10.10.0.4"),
        "bee": ("10.10.0.3",), "c": ("10.10.0.4",),
    }


def test_names_come_in_network_then_spec_order(scope):
    assert list(scope["a"]) == ["a", "b", "cache", "shared", "bee", "c"]  # Docker's: name, aliases, hostname


def test_no_name_of_a_network_the_container_is_not_on(scope):
    assert "d" not in scope["a"]
    assert set(scope["d"]) == {"c", "d"}  # back only: not bridge, not discovery: false


def test_a_container_on_two_networks_is_found_at_each_networks_address(scope):
    assert scope["a"]["c"] == ("10.10.0.4",)
    assert scope["d"]["c"] == ("10.20.0.2", "fd42:20::2")


def test_a_container_asks_its_networks_in_order_the_first_that_knows_a_name_answers(scope):
    assert scope["c"]["c"] == ("10.10.0.4", "fd42:20::2")  # IPv4 from front, IPv6 from back (front has none)
    assert scope["c"]["d"] == ("10.20.0.3", "fd42:20::3")
    assert scope["c"]["shared"] == ("10.10.0.3", "10.10.0.4")


def test_gw_priority_decides_which_network_answers_first():
    spec = """\
        version: 1
        networks:
          one: {subnet: 10.1.0.0/24}
          two: {subnet: 10.2.0.0/24}
        containers:
          x: {networks: [one, two]}
          y:
            networks:
              one: {}
              two: {gw_priority: 5}
        """
    scope = scope_of(spec)
    assert scope["y"]["x"] == ("10.2.0.2",)
    assert scope["x"]["y"] == ("10.1.0.3",)


def test_the_network_named_bridge_and_discovery_false_give_no_names(scope):
    assert scope["e"] == {}
    assert scope["f"] == {}


def test_a_joiner_sees_what_its_owner_sees_and_has_no_name_of_its_own(scope):
    assert scope["side"] == scope["a"]
    assert all("side" not in names for names in scope.values())


def test_host_and_none_containers_see_no_names(scope):
    assert scope["h"] == {} and scope["n"] == {}
    assert all("h" not in names and "n" not in names for names in scope.values())


def test_containers_seeing_the_same_networks_share_one_scope():
    spec = load(SPEC)
    addresses = assign_addresses(spec, State())
    addresses6 = assign_addresses(spec, State(), family=6)
    scope = names_in_scope(spec, addresses, addresses6)
    assert scope["a"] is scope["b"] is scope["side"]


# --- the hosts-file section ------------------------------------------------------------------

def hosts_files(text: str, live: State = State()) -> dict[str, str]:
    desired = build_desired(load(text), live)
    return {f.netns: f.content for f in desired.of_kind(File) if f.filename == "hosts"}


def section(hosts: str) -> str:
    """The discovery section of a hosts file, markers included ("" without one)."""
    start = hosts.find(DISCOVERY_BEGIN)
    return "" if start < 0 else hosts[start:]


def test_the_section_comes_last_between_markers_one_line_per_address():
    hosts = hosts_files(SPEC)
    assert hosts["a"].startswith("127.0.0.1\tlocalhost\n")
    assert section(hosts["a"]) == (
        DISCOVERY_BEGIN
        + "10.10.0.2\ta\n10.10.0.3\tb cache shared bee\n10.10.0.4\tshared c\n"
        + DISCOVERY_END
    )
    assert hosts["a"].endswith("10.10.0.2\ta\n" + section(hosts["a"]))  # after a's own line
    assert hosts["side"] == hosts["a"]


def test_ipv6_lines_only_in_a_namespace_with_ipv6():
    hosts = hosts_files(SPEC)
    assert "10.20.0.2\tc\nfd42:20::2\tc\n" in section(hosts["d"])
    assert "fd42" not in section(hosts["a"])  # a is on IPv4-only front
    assert "fd42:20::2\tc\n" in section(hosts["c"])
    both = (("c", (ip_address("10.20.0.2"), ip_address("fd42:20::2"))),)
    assert render_discovery(both, ipv6=False) == DISCOVERY_BEGIN + "10.20.0.2\tc\n" + DISCOVERY_END


def test_no_section_without_names_in_scope():
    hosts = hosts_files(SPEC)
    for name in ("e", "f", "n"):
        assert section(hosts[name]) == "", name
    assert DISCOVERY_BEGIN not in "".join(hosts.values()).replace(section(hosts["a"]), "").replace(
        section(hosts["c"]), "").replace(section(hosts["d"]), "")


def test_one_container_joining_rewrites_exactly_the_files_that_change():
    live = build_desired(load(SPEC), State())
    joined = SPEC.replace("  side:", "  g: {networks: [front]}\n  side:")
    changed = plan(build_desired(load(joined), live), live)
    files = {(a.op, a.obj.netns, a.obj.filename) for a in changed.actions if a.kind == "file"}
    assert files == {
        ("create", "g", "hostname"), ("create", "g", "hosts"), ("create", "g", "resolv.conf"),
        *(("update", name, "hosts") for name in ("a", "b", "c", "side")),  # front's containers and a's joiner
    }

    with_g = build_desired(load(joined), live)
    back = plan(build_desired(load(SPEC), with_g), with_g)
    files = {(a.op, a.obj.netns, a.obj.filename) for a in back.actions if a.kind == "file"}
    assert files == {*(("update", name, "hosts") for name in ("a", "b", "c", "side"))}  # g's go with its namespace


# --- in the kernel: getent in the containers' namespaces ------------------------------------

KERNEL_SPEC = """\
version: 1
host:
  resolv_conf: {resolv}
networks:
  front: {{bridge: "@fr", subnet: 172.31.40.0/24}}
  back: {{bridge: "@bk", subnet: 172.31.41.0/24, enable_ipv6: true, subnet6: "fd42:db8:41::/64"}}
  bridge: {{bridge: "@df", subnet: 172.31.42.0/24}}
  quiet: {{bridge: "@qt", subnet: 172.31.43.0/24, discovery: false}}
containers:
  "@a": {{networks: [front]}}
  "@b":
    networks:
      front: {{ipv4_address: 172.31.40.20, aliases: [cache]}}
  "@c":
    networks:
      front: {{}}
      back: {{ipv4_address: 172.31.41.30, ipv6_address: "fd42:db8:41::30"}}
  "@d": {{networks: [back]}}
  "@e": {{networks: [bridge, quiet]}}
  "@f": {{networks: [bridge, quiet]}}
{more}"""


def kernel_spec(sandbox, more: str = "", filename: str = "spec.yaml"):
    resolv = sandbox.tmp / "host-resolv.conf"
    resolv.write_text("nameserver 198.51.100.53\n")
    resolv.chmod(0o644)
    return sandbox.write_spec(KERNEL_SPEC.format(resolv=resolv, more=more), filename)


def getent(sandbox, container: str, database: str, name: str) -> tuple[int, str]:
    """Exit code and first address of `getent DATABASE NAME` in the container's namespace
    (ip netns exec bind-mounts /etc/netns/<name>/ files over /etc)."""
    result = subprocess.run(["ip", "netns", "exec", sandbox.name(container), "getent", database, name],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, (result.stdout.split() or [""])[0]


@pytest.mark.kernel
def test_containers_resolve_the_names_of_those_on_their_networks(sandbox):
    spec = kernel_spec(sandbox)
    sandbox.apply(spec)
    assert getent(sandbox, "a", "ahostsv4", sandbox.name("b")) == (0, "172.31.40.20")
    assert getent(sandbox, "a", "ahostsv4", "cache") == (0, "172.31.40.20")
    assert getent(sandbox, "a", "ahostsv4", sandbox.name("c"))[1].startswith("172.31.40.")
    assert getent(sandbox, "a", "ahostsv4", sandbox.name("d")) == (2, "")  # no network shared
    assert getent(sandbox, "d", "ahostsv4", sandbox.name("c")) == (0, "172.31.41.30")
    assert getent(sandbox, "d", "ahostsv6", sandbox.name("c")) == (0, "fd42:db8:41::30")
    assert getent(sandbox, "e", "ahostsv4", sandbox.name("f")) == (2, "")  # bridge and discovery: false
    assert DISCOVERY_BEGIN not in sandbox.in_ns("e", "cat /etc/hosts")
    assert sandbox.apply(spec)["actions"] == []


@pytest.mark.kernel
def test_a_container_joining_is_resolvable_after_one_apply_and_one_leaving_is_not(sandbox):
    spec = kernel_spec(sandbox)
    sandbox.apply(spec)
    assert getent(sandbox, "a", "ahostsv4", sandbox.name("g")) == (2, "")
    joined = kernel_spec(sandbox, '  "@g":\n    networks:\n      front: {ipv4_address: 172.31.40.70}\n', "joined.yaml")
    sandbox.apply(joined)
    assert getent(sandbox, "a", "ahostsv4", sandbox.name("g")) == (0, "172.31.40.70")
    assert getent(sandbox, "g", "ahostsv4", "cache") == (0, "172.31.40.20")
    sandbox.apply(spec)
    assert getent(sandbox, "a", "ahostsv4", sandbox.name("g")) == (2, "")
