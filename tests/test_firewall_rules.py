"""The firewall as rendered from specs (pure), and what the desired state derives for it."""

from __future__ import annotations

import dataclasses
import subprocess
from ipaddress import ip_address, ip_network

import pytest

from reconciler.errors import PrerequisiteError
from reconciler.kernel import nft
from reconciler.render import firewall
from reconciler.spec.loader import load_spec_text
from reconciler.spec.ports import PortMapping, parse_port
from reconciler.spec.types import NetworkSpec
from reconciler.state.desired import (
    bridge_ports, build_desired, forwarding_needed, publications, route_localnet, veth_name,
)
from reconciler.state.ipam import assign_addresses
from reconciler.state.model import HOST_NS, Firewall, Route, State, Sysctl, Veth
from reconciler.state.planner import plan
from tests.conftest import sh

SPEC = """\
version: 1
networks:
  front: {bridge: br-front, subnet: 10.1.0.0/24}
  back: {bridge: br-back, subnet: 10.2.0.0/24, masquerade: false, icc: false}
  sealed: {bridge: br-sealed, subnet: 10.3.0.0/24, internal: true}
containers:
  web:
    networks: [front]
    ports: ["8080:80", "127.0.0.1:5353:53/udp", "9000-9001:7000-7001"]
  api:
    networks: [sealed, back]
    ports: ["8443:443"]
  db:
    networks: [back, sealed]
"""


def desired(text: str = SPEC) -> State:
    return build_desired(load_spec_text(text, "spec.yaml"), State())


def ruleset(text: str = SPEC) -> str:
    return next(o for o in desired(text).objects.values() if isinstance(o, Firewall)).ruleset


def chain(rules: str, family: str, name: str) -> list[str]:
    """The statements of one chain of a normalized ruleset."""
    found, current = [], None
    for line in rules.splitlines():
        if line.startswith("table "):
            current_family = line.split()[1]
        elif line.startswith("chain "):
            current = (current_family, line.split()[1])
        elif line == "}":
            current = None
        elif current == (family, name) and not line.startswith("type "):
            found.append(line)
    return found


def test_published_ports_become_dnat_rules_to_the_container_address_on_its_gateway_network():
    rules = ruleset()
    assert chain(rules, "inet", "published") == [
        "tcp dport 8080 dnat ip to 10.1.0.2:80",
        "ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.1.0.2:53",
        "tcp dport 9000-9001 dnat ip to tcp dport map { 9000 : 10.1.0.2 . 7000, 9001 : 10.1.0.2 . 7001 }",
        "tcp dport 8443 dnat ip to 10.2.0.2:443",  # api's first network is internal: back carries its ports
    ]
    assert chain(rules, "inet", "prerouting") == ["fib daddr type local jump published"]
    assert chain(rules, "inet", "output") == ["fib daddr type local jump published"]


FULL_RANGES = """\
version: 1
networks:
  front: {bridge: br-front, subnet: 10.1.0.0/24}
containers:
  a:
    networks: [front]
    ports: ["127.0.0.2:1-65535:1-65535", "127.0.0.2:1-65535:1-65535/udp"]
  b:
    networks: [front]
    ports: ["127.0.0.1:1-65535:1-65535", "127.0.0.1:1-65535:1-65535/udp", "198.51.100.7:53:53/udp"]
"""


def test_a_range_on_the_same_ports_is_one_rule_whatever_its_size():
    """A DNAT that names no port keeps it, so four full ranges render as four rules."""
    rules = ruleset(FULL_RANGES)
    assert chain(rules, "inet", "published") == [
        "ip daddr 127.0.0.2 tcp dport 1-65535 dnat ip to 10.1.0.2",
        "ip daddr 127.0.0.2 udp dport 1-65535 dnat ip to 10.1.0.2",
        "ip daddr 127.0.0.1 tcp dport 1-65535 dnat ip to 10.1.0.3",
        "ip daddr 127.0.0.1 udp dport 1-65535 dnat ip to 10.1.0.3",
        "ip daddr 198.51.100.7 udp dport 53 dnat ip to 10.1.0.3",
    ]
    assert len(rules) < 2000


def test_a_changed_range_moved_to_other_ports_is_described_without_listing_every_port():
    before = desired(SPEC.replace('"9000-9001:7000-7001"', '"9000-9999:7000-7999"'))
    after = desired(SPEC.replace('"9000-9001:7000-7001"', '"9000-9999:7001-8000"'))
    (action,) = plan(after, before).actions
    assert action.reason == (
        "replace the tables: 1 rule(s) to add, 1 to remove: "
        "+ inet published: tcp dport 9000-9999 dnat ip to tcp dport map "
        "{ 9000 : 10.1.0.2 . 7001, 9001 : 10.1.0.2 . 7002, 9002 : 10.1.0.2 . 7003, ... (997 more) }; "
        "- inet published: tcp dport 9000-9999 dnat ip to tcp dport map "
        "{ 9000 : 10.1.0.2 . 7000, 9001 : 10.1.0.2 . 7001, 9002 : 10.1.0.2 . 7002, ... (997 more) }"
    )


def test_abbreviate_keeps_short_sets_and_statements_without_sets():
    assert firewall.abbreviate("tcp dport 80 accept") == "tcp dport 80 accept"
    assert firewall.abbreviate("tcp dport { 1, 2, 3 } accept") == "tcp dport { 1, 2, 3 } accept"
    assert firewall.abbreviate("tcp dport { 1, 2, 3, 4 } accept", shown=2) == "tcp dport { 1, 2, ... (2 more) } accept"


def test_masquerade_internal_and_isolation_rules_per_network():
    rules = ruleset()
    assert chain(rules, "inet", "postrouting") == [
        'ip saddr 10.1.0.0/24 oifname != "br-front" masquerade',
        'oifname "br-front" ct status dnat ip saddr 10.1.0.0/24 masquerade',
        'oifname "br-front" ip saddr 127.0.0.0/8 masquerade',
        'oifname "br-back" ct status dnat ip saddr 10.2.0.0/24 masquerade',  # masquerade: false, but it publishes
        'oifname "br-back" ip saddr 127.0.0.0/8 masquerade',
    ]
    forward = chain(rules, "inet", "forward")
    assert forward[:4] == [
        'oifname "br-front" ct state established,related accept',
        'oifname "br-front" iifname "br-front" accept',
        'oifname "br-front" ct status dnat accept',
        'oifname "br-front" drop',
    ]
    assert forward[-2:] == ['oifname "br-sealed" drop', 'iifname "br-sealed" drop']
    assert chain(rules, "inet", "guard") == [
        'iifname "br-front" ip daddr 127.0.0.0/8 drop', 'iifname "br-back" ip daddr 127.0.0.0/8 drop',
    ]


def test_icc_false_drops_port_to_port_frames_except_to_and_from_published_container_ports():
    api, db = veth_name("api", "back"), veth_name("db", "back")
    assert chain(ruleset(), "bridge", "forward") == [
        f'oifname "{api}" ip daddr 10.2.0.2 tcp dport 443 accept',
        f'iifname "{api}" ip saddr 10.2.0.2 tcp sport 443 accept',
        f'iifname "{api}" drop',
        f'iifname "{db}" drop',
    ]


def test_without_icc_false_there_is_no_bridge_table_and_without_ports_no_nat_chains():
    text = SPEC.replace(", icc: false", "").replace('    ports: ["8443:443"]\n', "")
    text = text.replace('    ports: ["8080:80", "127.0.0.1:5353:53/udp", "9000-9001:7000-7001"]\n', "")
    rules = ruleset(text)
    assert "table bridge" not in rules
    assert "published" not in rules and "guard" not in rules and "prerouting" not in rules
    assert chain(rules, "inet", "postrouting") == ['ip saddr 10.1.0.0/24 oifname != "br-front" masquerade']


def test_a_spec_without_networks_has_no_firewall():
    assert not [o for o in desired("version: 1\n").objects.values() if isinstance(o, Firewall)]


def test_rendering_is_what_nft_lists_after_normalizing():
    rendered = firewall.render(*_inputs())
    assert firewall.normalize(rendered) == ruleset()
    listed = rendered.replace("\tchain forward {", "\tchain forward { # handle 7").replace(
        "drop\n", "counter packets 3 bytes 180 drop # handle 12\n", 1)
    assert firewall.normalize(listed) == firewall.normalize(rendered.replace("drop\n", "counter drop\n", 1))


def _inputs():
    spec = load_spec_text(SPEC, "spec.yaml")
    return list(spec.networks), publications(spec, assign_addresses(spec, State())), bridge_ports(spec)


def test_replace_script_swaps_both_tables_in_one_transaction():
    script = firewall.replace_script("table inet netreconcile {\n}\n")
    assert script.splitlines()[:4] == [
        "table inet netreconcile", "delete table inet netreconcile",
        "table bridge netreconcile", "delete table bridge netreconcile",
    ]


def test_a_deleted_rule_is_one_update_that_names_it():
    want = desired()
    table = next(o for o in want.objects.values() if isinstance(o, Firewall))
    edited = dataclasses.replace(table, ruleset=table.ruleset.replace('oifname "br-front" drop\n', ""))
    live = State({**want.objects, table.key: edited})
    (action,) = plan(want, live).actions
    assert (action.op, action.kind) == ("update", "firewall")
    assert action.reason == ('replace the tables: 1 rule(s) to add, 0 to remove: + inet forward: '
                             'oifname "br-front" drop')


def test_publishing_networks_get_route_localnet_and_publishers_hairpin_mode():
    state = desired()
    sysctls = {o.setting for o in state.objects.values() if isinstance(o, Sysctl)}
    assert sysctls == {"net.ipv4.ip_forward", route_localnet("br-front"), route_localnet("br-back")}
    hairpin = {(v.container, v.network) for v in state.objects.values() if isinstance(v, Veth) and v.hairpin}
    assert hairpin == {("web", "front"), ("api", "back")}


def test_internal_networks_give_no_default_route():
    routes = {(r.netns, r.ifname, r.gateway) for r in desired().objects.values() if isinstance(r, Route)}
    assert routes == {("web", "eth0", "10.1.0.1"), ("api", "eth1", "10.2.0.1"), ("db", "eth0", "10.2.0.1")}


@pytest.mark.parametrize(("host", "networks", "expected"), [
    ("", "  a: {subnet: 10.1.0.0/24}\n", True),
    ("", "  a: {subnet: 10.1.0.0/24, internal: true}\n", False),
    ("", "", False),
    ("host: {ip_forward: true}\n", "  a: {subnet: 10.1.0.0/24, internal: true}\n", True),
    ("host: {ip_forward: false}\n", "  a: {subnet: 10.1.0.0/24}\n", False),
])
def test_ip_forward_is_set_when_a_network_needs_it_unless_the_spec_says(host, networks, expected):
    spec = load_spec_text(f"version: 1\n{host}networks:\n{networks or '  {}'}\n".replace("networks:\n  {}", "networks: {}"),
                          "spec.yaml")
    assert forwarding_needed(spec) is expected
    state = build_desired(spec, State())
    assert (("sysctl", HOST_NS, "net.ipv4.ip_forward") in state.objects) is expected


def test_a_missing_nft_command_is_an_error_naming_the_package(monkeypatch):
    monkeypatch.setattr(nft, "binary", lambda: None)
    with pytest.raises(PrerequisiteError, match=r"install the nftables package"):
        nft.require()


# --- a network of the other family (IPv6: not reachable from the spec until it accepts IPv6) ---

V6_NETWORK = NetworkSpec("six", "br-six", ip_network("2001:db8:6::/64"), ip_address("2001:db8:6::1"))
V6_PUBLICATION = firewall.Publication(V6_NETWORK, ip_address("2001:db8:6::5"), (
    PortMapping(None, 8080, 8080, 80),
    PortMapping(ip_address("2001:db8:ff::7"), 5353, 5353, 5353, "udp"),
    PortMapping(None, 9000, 9001, 7000),
), "vh-six")


def v6_ruleset() -> str:
    return firewall.normalize(firewall.render(
        [V6_NETWORK], [V6_PUBLICATION], [firewall.Port(dataclasses.replace(V6_NETWORK, icc=False), "vh-six")]))


def test_an_ipv6_subnet_is_masqueraded_with_ip6_matches():
    assert chain(v6_ruleset(), "inet", "postrouting") == [
        'ip6 saddr 2001:db8:6::/64 oifname != "br-six" masquerade',
        'oifname "br-six" ct status dnat ip6 saddr 2001:db8:6::/64 masquerade',
        'oifname "br-six" ip saddr 127.0.0.0/8 masquerade',
    ]


def test_ports_published_to_an_ipv6_address_dnat_with_ip6():
    assert chain(v6_ruleset(), "inet", "published") == [
        "tcp dport 8080 dnat ip6 to [2001:db8:6::5]:80",
        "ip6 daddr 2001:db8:ff::7 udp dport 5353 dnat ip6 to 2001:db8:6::5",
        "tcp dport 9000-9001 dnat ip6 to tcp dport map { 9000 : 2001:db8:6::5 . 7000, 9001 : 2001:db8:6::5 . 7001 }",
    ]
    assert chain(v6_ruleset(), "bridge", "forward") == [
        'oifname "vh-six" ip6 daddr 2001:db8:6::5 tcp dport 80 accept',
        'iifname "vh-six" ip6 saddr 2001:db8:6::5 tcp sport 80 accept',
        'oifname "vh-six" ip6 daddr 2001:db8:6::5 udp dport 5353 accept',
        'iifname "vh-six" ip6 saddr 2001:db8:6::5 udp sport 5353 accept',
        'oifname "vh-six" ip6 daddr 2001:db8:6::5 tcp dport 7000-7001 accept',
        'iifname "vh-six" ip6 saddr 2001:db8:6::5 tcp sport 7000-7001 accept',
        'iifname "vh-six" drop',
    ]


@pytest.mark.parametrize("address, keyword", [
    (ip_address("198.51.100.1"), "ip"), (ip_network("198.51.100.0/24"), "ip"),
    (ip_address("2001:db8::1"), "ip6"), (ip_network("2001:db8::/64"), "ip6"),
])
def test_the_match_keyword_follows_the_family(address, keyword):
    assert firewall.match_family(address) == keyword


def test_the_host_address_family_of_a_published_port():
    assert parse_port("8080:80").host_family is None
    assert parse_port("127.0.0.1:8080:80").host_family == 4
    assert PortMapping(ip_address("2001:db8::1"), 80, 80, 80).host_family == 6


@pytest.mark.kernel
def test_the_kernel_lists_an_ipv6_ruleset_as_rendered(sandbox):
    """nft accepts the IPv6 rules and lists them back as rendered (a throwaway namespace)."""
    netns = sandbox.name("fw6")
    sh(f"ip netns add {netns}")
    rendered = firewall.render(
        [V6_NETWORK], [V6_PUBLICATION], [firewall.Port(dataclasses.replace(V6_NETWORK, icc=False), "vh-six")])
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rendered, text=True, check=True)
    listed = "".join(sh(f"ip netns exec {netns} nft list table {family} {firewall.TABLE}") + "\n"
                     for family in firewall.FAMILIES)
    assert firewall.normalize(listed) == firewall.normalize(rendered)
