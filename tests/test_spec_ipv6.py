"""The spec's IPv6 keys (issue 14): enable_ipv6, subnet6, gateway6, masquerade6, IPv6
aux_addresses and ipv6_address, read and checked with located errors as their IPv4 twins."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from reconciler.errors import SpecError
from reconciler.spec.loader import load_spec_text

FILE = "spec.yaml"

DUAL = """\
version: 1
networks:
  front:
    subnet: 10.1.0.0/24
    enable_ipv6: true
    subnet6: fd42:db8:10::/64
containers:
"""  # the network's keys end at line 6; containers start at line 8


def _dual(**fields: str) -> str:
    """DUAL with `fields` after subnet6 (from line 7 on)."""
    lines = "".join(f"    {key}: {value}\n" for key, value in fields.items())
    return DUAL.replace("containers:\n", lines + "containers:\n")


V4_ONLY = "version: 1\nnetworks:\n  front:\n    subnet: 10.1.0.0/24\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, FILE)
    return [str(problem) for problem in caught.value.problems]


def test_a_dual_stack_network_and_attachment_are_read() -> None:
    spec = load_spec_text(
        _dual(gateway6='"fd42:db8:10::fe"', masquerade6="false", aux_addresses="[10.1.0.9, 'fd42:db8:10::9']")
        + "  web:\n    networks:\n      front: {ipv4_address: 10.1.0.10, ipv6_address: 'fd42:db8:10::10'}\n"
        + "  db:\n    networks: [front]\n",
        FILE,
    )
    front = spec.network("front")
    assert (front.enable_ipv6, front.subnet6, front.gateway6, front.masquerade6, front.families) == (
        True, IPv6Network("fd42:db8:10::/64"), IPv6Address("fd42:db8:10::fe"), False, (4, 6))
    assert front.aux_addresses == (IPv4Address("10.1.0.9"), IPv6Address("fd42:db8:10::9"))
    web = spec.container("web").networks[0]
    assert (web.ipv4_address, web.ipv6_address) == (IPv4Address("10.1.0.10"), IPv6Address("fd42:db8:10::10"))
    assert spec.container("db").networks[0].ipv6_address is None


def test_gateway6_defaults_to_the_first_address_after_the_subnet_router_anycast_one() -> None:
    front = load_spec_text(DUAL, FILE).network("front")
    assert (front.gateway6, front.masquerade6) == (IPv6Address("fd42:db8:10::1"), True)


def test_a_network_without_enable_ipv6_stays_ipv4_only() -> None:
    front = load_spec_text(V4_ONLY + "    enable_ipv6: false\n", FILE).network("front")
    assert (front.enable_ipv6, front.subnet6, front.gateway6, front.families) == (False, None, None, (4,))


BAD = [
    ("enable_ipv6 without subnet6", V4_ONLY + "    enable_ipv6: true\n",
     "spec.yaml:5:18: networks.front.enable_ipv6: enable_ipv6: true needs subnet6 (an IPv6 network such as "
     "fd42:db8:10::/64)"),
    ("subnet6 without enable_ipv6", V4_ONLY + "    subnet6: fd42:db8:10::/64\n",
     "spec.yaml:5:5: networks.front.subnet6: 'subnet6' needs enable_ipv6: true"),
    ("gateway6 with enable_ipv6 false", V4_ONLY + "    enable_ipv6: false\n    gateway6: fd42::1\n",
     "spec.yaml:6:5: networks.front.gateway6: 'gateway6' needs enable_ipv6: true"),
    ("masquerade6 without enable_ipv6", V4_ONLY + "    masquerade6: false\n",
     "spec.yaml:5:5: networks.front.masquerade6: 'masquerade6' needs enable_ipv6: true"),
    ("subnet6 IPv4", DUAL.replace("fd42:db8:10::/64", "10.2.0.0/24"),
     "spec.yaml:6:14: networks.front.subnet6: '10.2.0.0/24' is not an IPv6 network"),
    ("subnet6 host bits", DUAL.replace("fd42:db8:10::/64", "fd42:db8:10::1/64"),
     "spec.yaml:6:14: networks.front.subnet6: 'fd42:db8:10::1/64' is not an IPv6 network: host bits must be "
     "zero (did you mean 'fd42:db8:10::/64'?)"),
    ("subnet6 too small", DUAL.replace("fd42:db8:10::/64", "fd42:db8:10::/125"),
     "spec.yaml:6:14: networks.front.subnet6: 'fd42:db8:10::/125' is too small: the prefix length must be at "
     "most 124"),
    ("subnet6 with a zone", DUAL.replace("fd42:db8:10::/64", "fd42:db8:10::%eth0/64"),
     "spec.yaml:6:14: networks.front.subnet6: 'fd42:db8:10::%eth0/64' is not an IPv6 network: a subnet has no "
     "zone"),
    ("subnet6 link-local", DUAL.replace("fd42:db8:10::/64", "fe80::/64"),
     "spec.yaml:6:14: networks.front.subnet6: 'fe80::/64' overlaps the link-local block fe80::/10: use a global "
     "or unique-local block"),
    ("subnet6 multicast", DUAL.replace("fd42:db8:10::/64", "ff05::/64"),
     "spec.yaml:6:14: networks.front.subnet6: 'ff05::/64' overlaps the multicast block ff00::/8: use a global "
     "or unique-local block"),
    ("subnet6 loopback", DUAL.replace("fd42:db8:10::/64", "'::/120'"),
     "spec.yaml:6:14: networks.front.subnet6: '::/120' overlaps the unspecified address ::/128: use a global "
     "or unique-local block"),
    ("subnet6 IPv4-mapped", DUAL.replace("fd42:db8:10::/64", "'::ffff:10.0.0.0/120'"),
     "spec.yaml:6:14: networks.front.subnet6: '::ffff:10.0.0.0/120' overlaps the IPv4-mapped block "
     "::ffff:0:0/96: use a global or unique-local block"),
    ("gateway6 outside", _dual(gateway6="fd42:db8:11::1"),
     "spec.yaml:7:15: networks.front.gateway6: fd42:db8:11::1 is outside the subnet fd42:db8:10::/64"),
    ("gateway6 subnet-router anycast", _dual(gateway6="'fd42:db8:10::'"),
     "spec.yaml:7:15: networks.front.gateway6: fd42:db8:10:: is the subnet-router anycast address of "
     "fd42:db8:10::/64"),
    ("gateway6 IPv4", _dual(gateway6="10.1.0.1"),
     "spec.yaml:7:15: networks.front.gateway6: '10.1.0.1' is not an IPv6 address"),
    ("subnet6 overlap", DUAL.replace("containers:\n", "  back:\n    subnet: 10.2.0.0/24\n    enable_ipv6: true\n"
                                     "    subnet6: fd42:db8:10:0:1::/80\n"),
     "spec.yaml:10:14: networks.back.subnet6: fd42:db8:10:0:1::/80 overlaps fd42:db8:10::/64 of network 'front'"),
    ("aux IPv6 outside subnet6", _dual(aux_addresses="['fd42:db8:99::9']"),
     "spec.yaml:7:21: networks.front.aux_addresses.0: fd42:db8:99::9 is outside the subnet fd42:db8:10::/64"),
    ("aux IPv6 on an IPv4-only network", V4_ONLY + "    aux_addresses: {r: 'fd42::9'}\n",
     "spec.yaml:5:24: networks.front.aux_addresses.r: fd42::9 is an IPv6 address but network 'front' has no "
     "IPv6: set enable_ipv6: true and subnet6"),
    ("ipv6_address on an IPv4-only network",
     V4_ONLY + "containers:\n  web:\n    networks:\n      front: {ipv6_address: 'fd42::10'}\n",
     "spec.yaml:8:29: containers.web.networks.front.ipv6_address: network 'front' has no IPv6: set enable_ipv6: "
     "true and subnet6"),
    ("ipv6_address not an address", DUAL + "  web:\n    networks:\n      front: {ipv6_address: 10.1.0.10}\n",
     "spec.yaml:10:29: containers.web.networks.front.ipv6_address: '10.1.0.10' is not an IPv6 address"),
    ("ipv6_address with a zone", DUAL + "  web:\n    networks:\n      front: {ipv6_address: 'fd42:db8:10::5%eth0'}\n",
     "spec.yaml:10:29: containers.web.networks.front.ipv6_address: 'fd42:db8:10::5%eth0' is not an IPv6 address"),
    ("ipv6_address outside subnet6", DUAL + "  web:\n    networks:\n      front: {ipv6_address: 'fd42:db8:11::5'}\n",
     "spec.yaml:10:29: containers.web.networks.front.ipv6_address: fd42:db8:11::5 is outside the subnet "
     "fd42:db8:10::/64"),
    ("ipv6_address is the gateway6", DUAL + "  web:\n    networks:\n      front: {ipv6_address: 'fd42:db8:10::1'}\n",
     "spec.yaml:10:29: containers.web.networks.front.ipv6_address: fd42:db8:10::1 is the gateway of network "
     "'front'"),
    ("ipv6_address is the subnet-router anycast address",
     DUAL + "  web:\n    networks:\n      front: {ipv6_address: 'fd42:db8:10::'}\n",
     "spec.yaml:10:29: containers.web.networks.front.ipv6_address: fd42:db8:10:: is the subnet-router anycast "
     "address of fd42:db8:10::/64"),
    ("ipv6_address is an aux address",
     _dual(aux_addresses="['fd42:db8:10::9']") + "  web:\n    networks:\n      front: {ipv6_address: 'fd42:db8:10::9'}\n",
     "spec.yaml:11:29: containers.web.networks.front.ipv6_address: fd42:db8:10::9 is reserved in aux_addresses "
     "of network 'front'"),
    ("ipv6_address used twice",
     DUAL + "  web:\n    networks: {front: {ipv6_address: 'fd42:db8:10::5'}}\n"
     "  db:\n    networks: {front: {ipv6_address: 'fd42:db8:10::5'}}\n",
     "spec.yaml:11:38: containers.db.networks.front.ipv6_address: fd42:db8:10::5 is already used by container "
     "'web'"),
    ("subnet6 pool too small",
     DUAL.replace("fd42:db8:10::/64", "fd42:db8:10::/124") + "".join(f"  c{i}: {{networks: [front]}}\n"
                                                                     for i in range(15)),
     "spec.yaml:3:3: networks.front: 15 containers are attached but the subnet fd42:db8:10::/124 has only 14 "
     "free addresses"),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_ipv6_spec_reports_exactly_one_located_problem(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_the_ipv6_pool_counts_aux_addresses_and_the_gateway_but_no_broadcast() -> None:
    """/124 holds 16 addresses: minus the subnet-router anycast one, gateway6 and one
    IPv6 aux address, 13 containers fit and a 14th does not."""
    network = DUAL.replace("fd42:db8:10::/64", "fd42:db8:10::/124") + ""
    network = network.replace("containers:\n", "    aux_addresses: ['fd42:db8:10::9', 10.1.0.9]\ncontainers:\n")
    attach = "".join(f"  c{i}: {{networks: [front]}}\n" for i in range(13))
    load_spec_text(network + attach, FILE)
    assert problems(network + attach + "  c13: {networks: [front]}\n") == [
        "spec.yaml:3:3: networks.front: 14 containers are attached but the subnet fd42:db8:10::/124 has only 13 "
        "free addresses"]


def test_ipv6_overlaps_are_found_whichever_block_is_larger() -> None:
    def net(name: str, index: int, subnet6: str) -> str:
        return f"  {name}: {{subnet: 10.{index}.0.0/24, enable_ipv6: true, subnet6: '{subnet6}'}}\n"
    text = "version: 1\nnetworks:\n" + "".join([
        net("a", 1, "fd42:0:0:2::/64"), net("b", 2, "fd42:9::/32"), net("c", 3, "fd42:0:0:3::/64"),
        net("big", 4, "fd42::/48"), net("small", 5, "fd42:9:7::/80"), net("same", 6, "fd42:9::/32"),
        net("far", 7, "2001:db8::/48"),
    ])
    assert [p.split(": ", 2)[2] for p in problems(text)] == [
        "fd42::/48 overlaps fd42:0:0:2::/64 of network 'a'",
        "fd42::/48 overlaps fd42:0:0:3::/64 of network 'c'",
        "fd42:9:7::/80 overlaps fd42:9::/32 of network 'b'",
        "fd42:9::/32 overlaps fd42:9:7::/80 of network 'small'",  # problems come sorted by location, then text
        "fd42:9::/32 overlaps fd42:9::/32 of network 'b'",
    ]


def test_ipv4_and_ipv6_subnets_are_indexed_apart() -> None:
    """An IPv6 block whose number lies in an IPv4 block overlaps nothing."""
    text = ("version: 1\nnetworks:\n  a: {subnet: 192.168.0.0/24, enable_ipv6: true, subnet6: '::a01:0/120'}\n"
            "  b: {subnet: 10.0.0.0/8}\n")
    assert load_spec_text(text, FILE).network("a").subnet6 == IPv6Network("::a01:0/120")


# --- published ports ------------------------------------------------------------------------

PUBLISHER = "  web:\n    networks: [front]\n    ports: ['8080:80', {entry}]\n"  # the entry at column 24


@pytest.mark.parametrize(("network", "entry", "expected"), [
    (V4_ONLY + "containers:\n", "'[2001:db8::1]:8081:80'",
     "spec.yaml:8:24: containers.web.ports.1: [2001:db8::1]:8081/tcp publishes on IPv6 but container 'web' has no IPv6 "
     "network to forward it to (enable_ipv6 on a network that is not internal)"),
    (V4_ONLY + "containers:\n", "':::8081:80'",
     "spec.yaml:8:24: containers.web.ports.1: [::]:8081/tcp publishes on IPv6 but container 'web' has no IPv6 "
     "network to forward it to (enable_ipv6 on a network that is not internal)"),
    (DUAL, "'[2001:db8::1]:8080:81'",
     "spec.yaml:10:24: containers.web.ports.1: host port [2001:db8::1]:8080/tcp is already published by "
     "containers.web.ports.0 (spec.yaml:10:13)"),
    (DUAL, "'[::]:8080:81'",
     "spec.yaml:10:24: containers.web.ports.1: host port [::]:8080/tcp is already published by "
     "containers.web.ports.0 (spec.yaml:10:13)"),
], ids=["IPv6 address, IPv4-only container", "IPv6 wildcard, IPv4-only container", "IPv6 address vs both wildcards",
        "IPv6 wildcard vs both wildcards"])
def test_ports_published_on_ipv6_need_an_ipv6_network_and_clash_per_ip_version(network, entry, expected):
    assert problems(network + PUBLISHER.format(entry=entry)) == [expected]


def test_a_container_on_an_ipv6_network_publishes_on_either_wildcard_and_on_ipv6_addresses() -> None:
    entries = "['0.0.0.0:8080:80', '[::]:8080:80', '[2001:db8::5]:8081:80', '2001:db8::6:8082:80', 8083:80]"
    spec = load_spec_text(DUAL + f"  web:\n    networks: [front]\n    ports: {entries}\n", FILE)
    assert [str(m.host_ip) for m in spec.container("web").ports] == [
        "0.0.0.0", "::", "2001:db8::5", "2001:db8::6", "None"]


def test_an_ipv4_only_container_publishes_without_host_ip_on_ipv4() -> None:
    spec = load_spec_text(V4_ONLY + "containers:\n  web:\n    networks: [front]\n    ports: ['8080:80']\n", FILE)
    assert spec.container("web").ports[0].host_ip is None


def test_an_ipv6_port_on_an_internal_ipv6_network_has_no_way_out() -> None:
    text = (DUAL.replace("containers:\n", "    internal: true\n  out:\n    subnet: 10.2.0.0/24\ncontainers:\n")
            + "  web:\n    networks: [front, out]\n    ports: ['[2001:db8::1]:8080:80']\n")
    assert problems(text) == [
        "spec.yaml:13:13: containers.web.ports.0: [2001:db8::1]:8080/tcp publishes on IPv6 but container 'web' has no IPv6 "
        "network to forward it to (enable_ipv6 on a network that is not internal)"]
