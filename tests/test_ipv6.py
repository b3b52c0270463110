"""Dual stack in the kernel: IPv6 addresses, routes and IPv6 on/off, as Docker's
`enable_ipv6` networks have them (issue 14). Every test runs in throwaway namespaces."""

from __future__ import annotations

import json

import pytest

from tests.conftest import sh

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
networks:
  front:
    subnet: 203.0.113.0/24
    enable_ipv6: true
    subnet6: fd42:14::/64
  back:
    subnet: 198.51.100.0/24
containers:
  '@web':
    networks:
      front: {ipv6_address: "fd42:14::10"}
  '@db':
    networks: [front]
  '@both':
    networks: [back, front]
  '@legacy':
    networks: [back]
"""


def ipv6_addresses(netns: str, scope: str = "global") -> dict[str, list[str]]:
    """IPv6 addresses of `scope` per interface of `netns`."""
    found: dict[str, list[str]] = {}
    for link in json.loads(sh(f"ip -n {netns} -j -6 addr show")):
        found[link["ifname"]] = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                                 if a["scope"] == scope]
    return found


def ipv6_routes(netns: str) -> set[tuple[str, str | None, str]]:
    return {(r["dst"], r.get("gateway"), r["dev"]) for r in json.loads(sh(f"ip -n {netns} -j -6 route show"))
            if r.get("protocol") == "static"}


def ipv6_off(netns: str, ifname: str) -> bool:
    return sh(f"ip netns exec {netns} cat /proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").strip() == "1"


def quiet_ipv6(netns: str, ifname: str) -> bool:
    """No link-local address of the kernel's, no DAD, no router solicitations: multicast
    that every port of the bridge would receive."""
    settings = sh(f"ip netns exec {netns} sysctl -n net.ipv6.conf.{ifname}.addr_gen_mode "
                  f"net.ipv6.conf.{ifname}.dad_transmits net.ipv6.conf.{ifname}.router_solicitations").split()
    return settings == ["1", "0", "0"] and ipv6_addresses(netns, "link").get(ifname, []) == []


def veth_of(sandbox, container: str) -> list[str]:
    """The host-side veth ends of `container` (by their mark)."""
    return [name for name, link in sandbox.links(sandbox.host).items()
            if link.get("ifalias", "").startswith(f"netreconcile:veth:{sandbox.name(container)}:")]


def test_dual_stack_containers_reach_each_other_and_the_gateway_over_ipv6(sandbox):
    spec = sandbox.write_spec(SPEC)
    sandbox.apply(spec)
    web, db, both, legacy = (sandbox.name(c) for c in ("web", "db", "both", "legacy"))

    assert ipv6_addresses(sandbox.host)["front"] == ["fd42:14::1/64"]  # the default gateway6: the first address
    assert ipv6_addresses(web)["eth0"] == ["fd42:14::10/64"]
    # dynamic: the lowest free address, skipping the subnet-router anycast address and the gateway
    assert ipv6_addresses(db)["eth0"] == ["fd42:14::2/64"]
    for container in (web, db):
        assert ipv6_routes(container) == {("default", "fd42:14::1", "eth0")}
        assert sh(f"ip -n {container} -6 -o addr show dev eth0 scope global tentative") == ""  # nodad
    sh(f"ip netns exec {web} ping -6 -c1 -W5 fd42:14::2")
    sh(f"ip netns exec {web} ping -6 -c1 -W5 fd42:14::1")
    sh(f"ip netns exec {db} ping -6 -c1 -W5 fd42:14::10")

    # on an IPv4-only network beside it: IPv6 off, as before
    assert ipv6_off(legacy, "all") and ipv6_off(legacy, "eth0")
    assert ipv6_addresses(legacy, "host") == {}  # lo has no ::1
    # on both: IPv6 on the dual-stack network's interface only, and lo keeps ::1
    assert ipv6_addresses(both, "host")["lo"] == ["::1/128"]
    assert ipv6_off(both, "eth0") and not ipv6_off(both, "eth1")
    assert ipv6_routes(both) == {("default", "fd42:14::1", "eth1")}  # IPv6's gateway network: the only IPv6 one
    assert sh(f"ip -n {both} -4 route show default").split()[:3] == ["default", "via", "198.51.100.1"]

    # host side: veth ends never have IPv6, the IPv4-only bridge neither; IPv6 forwarding is on
    for container in ("web", "db", "both", "legacy"):
        for veth in veth_of(sandbox, container):
            assert ipv6_off(sandbox.host, veth), veth
    assert ipv6_off(sandbox.host, "back") and not ipv6_off(sandbox.host, "front")
    assert sandbox.host_sh("cat /proc/sys/net/ipv6/conf/all/forwarding").strip() == "1"

    # quiet: no link-local address, DAD or router solicitations, all flooded to every port
    assert quiet_ipv6(web, "eth0") and quiet_ipv6(both, "eth1")

    assert sandbox.apply(spec)["actions"] == []
    assert sandbox.run("status", "--detailed-exitcode", spec=spec).code == 0  # link-local addresses are no drift


def test_an_ipv6_address_added_by_hand_is_drift_and_removed(sandbox):
    spec = sandbox.write_spec(SPEC)
    sandbox.apply(spec)
    web = sandbox.name("web")
    sh(f"ip -n {web} -6 addr add fd42:14::99/64 dev eth0 nodad")
    sh(f"ip -n {web} -6 route add 2001:db8:99::/48 via fd42:14::1")
    status = sandbox.run("status", "--detailed-exitcode", "-o", "json", spec=spec)
    assert status.code == 2
    described = json.dumps(status.json()["actions"])
    assert "fd42:14::99/64" in described and "2001:db8:99::/48" in described
    sandbox.apply(spec)
    assert ipv6_addresses(web)["eth0"] == ["fd42:14::10/64"]
    assert ipv6_routes(web) == {("default", "fd42:14::1", "eth0")}
    assert sandbox.apply(spec)["actions"] == []


def test_turning_ipv6_on_and_off_converges_and_keeps_ipv4(sandbox):
    ipv4_only = sandbox.write_spec(SPEC.replace("    enable_ipv6: true\n    subnet6: fd42:14::/64\n", "")
                                   .replace('front: {ipv6_address: "fd42:14::10"}', "front: {}"), "v4.yaml")
    dual = sandbox.write_spec(SPEC)
    sandbox.apply(ipv4_only)
    web, both = sandbox.name("web"), sandbox.name("both")
    web_ipv4 = sandbox.addresses(web)["eth0"]
    assert ipv6_off(web, "all")

    sandbox.apply(dual)
    assert ipv6_addresses(web)["eth0"] == ["fd42:14::10/64"] and sandbox.addresses(web)["eth0"] == web_ipv4
    assert ipv6_addresses(web, "host")["lo"] == ["::1/128"]
    assert ipv6_off(both, "eth0") and not ipv6_off(both, "eth1")  # on for the IPv6 network's interface only
    assert quiet_ipv6(web, "eth0")  # made before its namespace had IPv6: quietened when it was turned on
    assert sandbox.apply(dual)["actions"] == []

    sandbox.apply(ipv4_only)
    assert ipv6_off(web, "all") and ipv6_off(web, "eth0") and ipv6_off(sandbox.host, "front")
    assert ipv6_addresses(web) == {} and sandbox.addresses(web)["eth0"] == web_ipv4
    assert sandbox.apply(ipv4_only)["actions"] == []


def test_a_dynamic_ipv6_address_sticks_when_the_spec_changes_around_it(sandbox):
    sandbox.apply(sandbox.write_spec(SPEC))
    db = sandbox.name("db")
    assert ipv6_addresses(db)["eth0"] == ["fd42:14::2/64"]
    earlier = SPEC.replace("containers:\n", "containers:\n  '@first':\n    networks: [front]\n")
    sandbox.apply(sandbox.write_spec(earlier, "earlier.yaml"))
    assert ipv6_addresses(db)["eth0"] == ["fd42:14::2/64"]
    # a newcomer listed first takes the lowest free one (web has ::10, both ::3)
    assert ipv6_addresses(sandbox.name("first"))["eth0"] == ["fd42:14::4/64"]

