"""Published-port parsing (Compose short syntax) and the clash check over many ports."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.render import firewall
from reconciler.spec.ports import PortError, PortMapping, parse_port
from reconciler.spec.types import NetworkSpec
from reconciler.spec.values import PortIndex, port_clashes
from tests.docker_vectors import load_vectors


@pytest.mark.parametrize(("text", "expected"), [
    ("8080:80", PortMapping(None, 8080, 8080, 80, "tcp")),
    ("0.0.0.0:8080:80", PortMapping(IPv4Address("0.0.0.0"), 8080, 8080, 80, "tcp")),  # IPv4 only, as in Docker
    ("[::1]:8080:80", PortMapping(IPv6Address("::1"), 8080, 8080, 80, "tcp")),
    ("::1:8080:80", PortMapping(IPv6Address("::1"), 8080, 8080, 80, "tcp")),
    ("[2001:db8::5]:80:80/udp", PortMapping(IPv6Address("2001:db8::5"), 80, 80, 80, "udp")),
    ("[::]:80:80", PortMapping(IPv6Address("::"), 80, 80, 80, "tcp")),
    (":::80:80", PortMapping(IPv6Address("::"), 80, 80, 80, "tcp")),
    ("[::ffff:127.0.0.1]:8080:80", PortMapping(IPv4Address("127.0.0.1"), 8080, 8080, 80, "tcp")),
    ("127.0.0.1:5353:53/udp", PortMapping(IPv4Address("127.0.0.1"), 5353, 5353, 53, "udp")),
    ("8000-8002:9000-9002", PortMapping(None, 8000, 8002, 9000, "tcp")),
    ("53:53/UDP", PortMapping(None, 53, 53, 53, "udp")),
    (" 1:65535/tcp ", PortMapping(None, 1, 1, 65535, "tcp")),
])
def test_parse(text, expected):
    assert parse_port(text) == expected


def overlaps(a: PortMapping, b: PortMapping) -> bool:
    """The brute-force reference for the loader's clash index: whether two mappings claim
    a common host port and protocol on a common address of an IP version both publish on
    (no host IP: every address of both versions; 0.0.0.0 or ::: every address of one)."""
    same_address = a.host_address is None or b.host_address is None or a.host_address == b.host_address
    return (
        bool(set(a.families) & set(b.families)) and same_address and a.protocol == b.protocol
        and a.host_first <= b.host_last and b.host_first <= a.host_last
    )


def test_ranges_map_one_to_one_by_an_offset_and_str_round_trips():
    mapping = parse_port("198.51.100.7:8000-8002:9000-9002/udp")
    assert (mapping.offset, mapping.container_last) == (1000, 9002)
    assert parse_port("1-65535:1-65535").offset == 0
    assert parse_port(str(mapping)) == mapping
    assert str(parse_port("8080:80")) == "8080:80/tcp"


@pytest.mark.parametrize("text", [80, "80", ":80", "1.2.3.4::80", "a:b", "1-2:3", "1:2/icmp", "[::1]80:80",
                                  "[::1", "[::1]:1:2:3", "[::1]:80", "[fe80::1%eth0]:1:1", "fe80::1%2:1:1",
                                  "99999:1", "5-4:5-4", "1.2.3:1:1", "1:2:3:4"])
def test_rejected(text):
    with pytest.raises(PortError):
        parse_port(text)


mappings = st.builds(
    lambda ip, first, length, protocol: PortMapping(ip, first, first + length, 1, protocol),
    st.sampled_from([None, IPv4Address("127.0.0.1"), IPv4Address("198.51.100.7"), IPv4Address("0.0.0.0"),
                     IPv6Address("::"), IPv6Address("::1"), IPv6Address("2001:db8::5")]),
    st.integers(1, 60), st.integers(0, 5), st.sampled_from(["tcp", "udp"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(mappings, max_size=12))
def test_the_clash_check_reports_exactly_the_entries_overlapping_one_accepted_before(entries):
    """An entry is accepted unless it overlaps an accepted earlier one: so one clash is
    reported once, against an entry that stays."""
    published = [(("containers", "c", "ports", index), mapping) for index, mapping in enumerate(entries)]
    accepted: list[int] = []
    expected = set()
    for index, mapping in enumerate(entries):
        if any(overlaps(entries[earlier], mapping) for earlier in accepted):
            expected.add(index)
        else:
            accepted.append(index)
    reported = list(port_clashes(published))
    assert {path[3] for path, _, _ in reported} == expected
    for path, mapping, earlier in reported:
        assert earlier[3] in accepted and earlier[3] < path[3] and overlaps(mapping, entries[earlier[3]])


def _clashes(*entries: str) -> list[tuple[int, int]]:
    """(index, index of the earlier entry it clashes with) for each clashing entry."""
    published = [(("containers", "c", "ports", index), parse_port(text)) for index, text in enumerate(entries)]
    return [(path[3], earlier[3]) for path, _, earlier in port_clashes(published)]


@pytest.mark.parametrize(("entries", "expected"), [
    (("0.0.0.0:80:80", "[::]:80:80"), []),  # one wildcard per IP version
    (("0.0.0.0:80:80", ":::80:80", "80:80"), [(2, 0)]),  # no host IP: both wildcards
    (("80:80", "[::]:80:80"), [(1, 0)]),
    (("[::]:80:80", "[::1]:80:80"), [(1, 0)]),
    (("[::1]:80:80", "80:80"), [(1, 0)]),
    (("[::1]:80:80", "::1:80:81"), [(1, 0)]),
    (("[::1]:80:80", "0.0.0.0:80:80", "127.0.0.1:80:80"), [(2, 1)]),
    (("[::1]:80:80", "[2001:db8::5]:80:80", "[::ffff:127.0.0.1]:80:80", "127.0.0.1:80:80/udp"), []),
    (("[::ffff:127.0.0.1]:80:80", "127.0.0.1:80:80"), [(1, 0)]),
])
def test_ports_clash_per_ip_version(entries, expected):
    assert _clashes(*entries) == expected


def _spec_strings() -> list[dict]:
    vectors = [v for v in load_vectors("ports") if isinstance(v["input"].get("spec"), str)]
    assert len(vectors) >= 9  # the vectors the brief names: TestPartPortSpecIPV6/*, ...Full, ...EmptyContainerPort/*
    return vectors


@pytest.mark.parametrize("vector", _spec_strings(), ids=lambda vector: vector["name"])
def test_docker_port_spec_vectors(vector):
    """Docker's parse of each entry: the host IP, host port and container port of each
    port it maps; an entry Docker gives no host port (one it would pick at random) and
    one Docker rejects are errors here."""
    expected = vector["expected"]
    mappings = expected.get("mappings", [])
    if "error" in expected or any(not m["host_port"] for m in mappings):
        with pytest.raises(PortError):
            parse_port(vector["input"]["spec"])
        return
    mapping = parse_port(vector["input"]["spec"])
    ports = [
        {"port": f"{mapping.container_first + i}/{mapping.protocol}",
         "host_ip": "" if mapping.host_ip is None else str(mapping.host_ip),
         "host_port": str(mapping.host_first + i)}
        for i in range(mapping.host_last - mapping.host_first + 1)
    ]
    assert ports == mappings


def test_the_clash_check_costs_per_range_not_per_port():
    """Four full ranges on two addresses do not clash; a fifth on every address does;
    and a full range takes a handful of index nodes, not one per port."""
    full = [parse_port(f"{ip}:1-65535:1-65535/{protocol}") for ip in ("127.0.0.1", "127.0.0.2")
            for protocol in ("tcp", "udp")]
    published = [(("containers", "c", "ports", index), m) for index, m in enumerate([*full, parse_port("8080:80")])]
    assert [(path[3], earlier[3]) for path, _, earlier in port_clashes(published)] == [(4, 0)]
    index = PortIndex()
    index.add(1, 65535, ("containers", "c", "ports", 0))
    assert len(index.tree) <= 17


def test_a_port_on_0_0_0_0_renders_as_one_without_host_ip():
    """0.0.0.0 is kept in the mapping (IPv4 only, for the firewall to tell apart) but
    names no one address: the DNAT matches no destination address, as before."""
    network = NetworkSpec("front", "front", IPv4Network("10.1.0.0/24"), IPv4Address("10.1.0.1"))

    def published(entry: str) -> tuple[list[str], tuple[str, ...]]:
        publication = firewall.Publication(network, IPv4Address("10.1.0.5"), (parse_port(entry),), "vh-front")
        ruleset, elements = firewall.split_elements(firewall.normalize(firewall.render([network], [publication], [])))
        return [line for line in ruleset.splitlines() if "dnat ip to " in line], elements

    assert published("0.0.0.0:8080:80") == published("8080:80") == (
        ["meta nfproto ipv4 dnat ip to tcp dport map @published_ip_tcp"], ("published_ip_tcp 8080 : 10.1.0.5 . 80",))
    assert published("127.0.0.1:8080:80") == (["dnat ip to ip daddr . tcp dport map @published_ip_daddr_tcp"],
                                              ("published_ip_daddr_tcp 127.0.0.1 . 8080 : 10.1.0.5 . 80",))
