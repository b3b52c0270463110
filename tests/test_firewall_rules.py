"""The firewall as rendered from specs (pure), and what the desired state derives for it."""

from __future__ import annotations

import dataclasses
import subprocess
from ipaddress import ip_address, ip_network

import pytest

from reconciler.errors import PrerequisiteError, SpecError
from reconciler.kernel import nft
from reconciler.render import firewall
from reconciler.drivers.bridge import veth_name
from reconciler.spec.loader import load_spec_text
from reconciler.spec.ports import PortMapping, parse_port
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.state.desired import (
    bridge_ports, build_desired, firewall_objects, forwarding_needed, gateway_attachment, hairpin_attachments,
    publications, route_localnet,
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


def firewall_of(text: str = SPEC) -> Firewall:
    return next(o for o in desired(text).objects.values() if isinstance(o, Firewall))


def ruleset(text: str = SPEC) -> str:
    return firewall_of(text).ruleset


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
    """A single port is an element of a map looked up by one rule; a range is a rule."""
    rules = ruleset()
    assert chain(rules, "inet", "published") == [
        "meta nfproto ipv4 dnat ip to tcp dport map @published_ip_tcp",
        "dnat ip to ip daddr . udp dport map @published_ip_daddr_udp",
        "meta nfproto ipv4 tcp dport 9000-9001 dnat ip to tcp dport map { 9000 : 10.1.0.2 . 7000, 9001 : 10.1.0.2 . 7001 }",
    ]
    assert firewall_of().elements == (
        "published_ip_daddr_udp 127.0.0.1 . 5353 : 10.1.0.2 . 53",
        "published_ip_tcp 8080 : 10.1.0.2 . 80",
        "published_ip_tcp 8443 : 10.2.0.2 . 443",  # api's first network is internal: back has them
    )
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
        "dnat ip to ip daddr . udp dport map @published_ip_daddr_udp",
        "ip daddr 127.0.0.2 tcp dport 1-65535 dnat ip to 10.1.0.2",
        "ip daddr 127.0.0.2 udp dport 1-65535 dnat ip to 10.1.0.2",
        "ip daddr 127.0.0.1 tcp dport 1-65535 dnat ip to 10.1.0.3",
        "ip daddr 127.0.0.1 udp dport 1-65535 dnat ip to 10.1.0.3",
    ]
    assert firewall_of(FULL_RANGES).elements == ("published_ip_daddr_udp 198.51.100.7 . 53 : 10.1.0.3 . 53",)
    assert len(rules) < 2000


def test_a_changed_range_moved_to_other_ports_is_described_without_listing_every_port():
    before = desired(SPEC.replace('"9000-9001:7000-7001"', '"9000-9999:7000-7999"'))
    after = desired(SPEC.replace('"9000-9001:7000-7001"', '"9000-9999:7001-8000"'))
    (action,) = plan(after, before).actions
    assert action.reason == (
        "replace the tables: 1 rule(s) to add, 1 to remove: "
        "+ inet published: meta nfproto ipv4 tcp dport 9000-9999 dnat ip to tcp dport map "
        "{ 9000 : 10.1.0.2 . 7001, 9001 : 10.1.0.2 . 7002, 9002 : 10.1.0.2 . 7003, ... (997 more) }; "
        "- inet published: meta nfproto ipv4 tcp dport 9000-9999 dnat ip to tcp dport map "
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
    assert firewall.split_elements(firewall.normalize(rendered)) == (ruleset(), firewall_of().elements)
    listed = rendered.replace("\tchain forward {", "\tchain forward { # handle 7").replace(
        "drop\n", "counter packets 3 bytes 180 drop # handle 12\n", 1)
    assert firewall.normalize(listed) == firewall.normalize(rendered.replace("drop\n", "counter drop\n", 1))


def _inputs():
    spec = load_spec_text(SPEC, "spec.yaml")
    return list(spec.networks), publications(spec, assign_addresses(spec, State()), {}), bridge_ports(spec)


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

    assert firewall.load_script(action.obj.ruleset, action.obj.elements, action.changes).startswith(
        firewall.delete_script())  # a rule changed: the tables are replaced whole, elements included


def test_a_moved_port_is_one_update_of_the_map_elements_not_a_table_reload():
    before, after = desired(), desired(SPEC.replace('"8080:80"', '"8090:80"'))
    (action,) = plan(after, before).actions
    assert (action.op, action.kind) == ("update", "firewall")
    assert [name for name, _, _ in action.changes] == ["elements"]
    assert action.reason == ("update the published-port maps: 1 element(s) to add, 1 to remove: "
                             "+ published_ip_tcp 8090 : 10.1.0.2 . 80; - published_ip_tcp 8080 : 10.1.0.2 . 80")
    # one transaction that touches the two elements only: no table is declared or deleted
    assert firewall.load_script(action.obj.ruleset, action.obj.elements, action.changes) == (
        "delete element inet netreconcile published_ip_tcp { 8080 }\n"
        "add element inet netreconcile published_ip_tcp { 8090 : 10.1.0.2 . 80 }\n"
    )


def test_an_element_deleted_by_hand_is_one_update_that_adds_it_back():
    want = desired()
    table = firewall_of()
    live = State({**want.objects, table.key: dataclasses.replace(table, elements=table.elements[1:])})
    (action,) = plan(want, live).actions
    assert (action.op, action.kind, [name for name, _, _ in action.changes]) == ("update", "firewall", ["elements"])
    assert firewall.load_script(action.obj.ruleset, action.obj.elements, action.changes) == (
        "add element inet netreconcile published_ip_daddr_udp { 127.0.0.1 . 5353 : 10.1.0.2 . 53 }\n")


def test_a_created_firewall_loads_its_tables_and_all_their_elements_in_one_script():
    table = firewall_of()
    script = firewall.load_script(table.ruleset, table.elements)
    assert script.startswith(firewall.replace_script(table.ruleset))
    assert script.endswith(
        "add element inet netreconcile published_ip_daddr_udp { 127.0.0.1 . 5353 : 10.1.0.2 . 53 }\n"
        "add element inet netreconcile published_ip_tcp { 8080 : 10.1.0.2 . 80, 8443 : 10.2.0.2 . 443 }\n")


def test_map_elements_are_read_from_nfts_wrapped_listing_in_any_order():
    listed = firewall.normalize(
        "table inet netreconcile {\n\tmap published_ip_tcp {\n\t\ttype inet_service : ipv4_addr . inet_service\n"
        "\t\telements = { 8443 : 10.2.0.2 . 443,\n\t\t\t     8080 : 10.1.0.2 . 80 }\n\t}\n\n"
        "\tmap published_ip6_tcp {\n\t\ttype inet_service : ipv6_addr . inet_service\n"
        "\t\telements = { 80 : fd42:1::2 . 80 }\n\t}\n}\n")
    assert firewall.split_elements(listed) == (
        "table inet netreconcile {\nmap published_ip_tcp {\ntype inet_service : ipv4_addr . inet_service\n}\n"
        "map published_ip6_tcp {\ntype inet_service : ipv6_addr . inet_service\n}\n}\n",
        ("published_ip6_tcp 80 : fd42:1::2 . 80", "published_ip_tcp 8080 : 10.1.0.2 . 80",
         "published_ip_tcp 8443 : 10.2.0.2 . 443"),
    )


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


# --- dual stack: the IPv6 side of the same rules (Spec built directly, as the reader would) ---

def dual_stack(name: str, number: int, **options) -> NetworkSpec:
    return NetworkSpec(name, f"br-{name}", ip_network(f"10.{number}.0.0/24"), ip_address(f"10.{number}.0.1"),
                       enable_ipv6=True, subnet6=ip_network(f"fd42:{number}::/64"),
                       gateway6=ip_address(f"fd42:{number}::1"), **options)


def ports(*entries: tuple) -> tuple[PortMapping, ...]:
    """(host_ip or None, host port, container port[, protocol]) as PortMappings."""
    return tuple(PortMapping(None if host is None else ip_address(host), port, port, target, *protocol)
                 for host, port, target, *protocol in entries)


FRONT = dual_stack("front", 1)
V4ONLY = NetworkSpec("v4only", "br-v4only", ip_network("10.2.0.0/24"), ip_address("10.2.0.1"))
SEALED = dual_stack("sealed", 3, internal=True)
DUAL_SPEC = Spec("spec.yaml", networks=(FRONT, V4ONLY, SEALED), containers=(
    ContainerSpec("web", (Attachment("front"),), ports=ports(
        (None, 8080, 80), ("0.0.0.0", 8081, 81), ("::", 8082, 82), ("2001:db8::7", 5353, 53, "udp"),
        ("127.0.0.1", 8443, 443),
    )),
    ContainerSpec("old", (Attachment("v4only"),), ports=ports((None, 9090, 90))),
    # its IPv4 default route is through v4only, its IPv6 one through front (the only IPv6 network)
    ContainerSpec("mixed", (Attachment("sealed"), Attachment("v4only", gw_priority=1), Attachment("front")),
                  ports=ports((None, 7070, 70))),
    ContainerSpec("quiet", (Attachment("front"), Attachment("sealed"))),
))
ADDRESSES = {
    ("web", "front"): ip_address("10.1.0.2"), ("old", "v4only"): ip_address("10.2.0.2"),
    ("mixed", "sealed"): ip_address("10.3.0.2"), ("mixed", "v4only"): ip_address("10.2.0.3"),
    ("mixed", "front"): ip_address("10.1.0.3"), ("quiet", "front"): ip_address("10.1.0.4"),
    ("quiet", "sealed"): ip_address("10.3.0.3"),
}
ADDRESSES6 = {
    ("web", "front"): ip_address("fd42:1::2"), ("mixed", "sealed"): ip_address("fd42:3::2"),
    ("mixed", "front"): ip_address("fd42:1::3"), ("quiet", "front"): ip_address("fd42:1::4"),
    ("quiet", "sealed"): ip_address("fd42:3::3"),
}


def dual_render(spec: Spec = DUAL_SPEC) -> str:
    return firewall.render(list(spec.networks), publications(spec, ADDRESSES, ADDRESSES6), bridge_ports(spec))


def dual_ruleset(spec: Spec = DUAL_SPEC) -> str:
    return firewall.normalize(dual_render(spec))


def with_networks(spec: Spec, **changes) -> Spec:
    return dataclasses.replace(spec, networks=tuple(dataclasses.replace(n, **changes) for n in spec.networks))


def test_a_port_is_published_per_family_to_the_address_of_that_family():
    """An entry without host IP is published on both families, 0.0.0.0 on IPv4 only, ::
    on IPv6 only; an entry without one host address matches only its family."""
    rules, elements = firewall.split_elements(dual_ruleset())
    assert chain(rules, "inet", "published") == [
        "meta nfproto ipv4 dnat ip to tcp dport map @published_ip_tcp",
        "dnat ip to ip daddr . tcp dport map @published_ip_daddr_tcp",
        "meta nfproto ipv6 dnat ip6 to tcp dport map @published_ip6_tcp",
        "dnat ip6 to ip6 daddr . udp dport map @published_ip6_daddr_udp",
    ]
    assert sorted(elements, key=lambda element: (element.split(" ", 1)[0].startswith("published_ip6"), element)) == [
        "published_ip_daddr_tcp 127.0.0.1 . 8443 : 10.1.0.2 . 443",
        "published_ip_tcp 7070 : 10.2.0.3 . 70",
        "published_ip_tcp 8080 : 10.1.0.2 . 80",
        "published_ip_tcp 8081 : 10.1.0.2 . 81",
        "published_ip_tcp 9090 : 10.2.0.2 . 90",  # old has no IPv6: no IPv6 binding
        "published_ip6_daddr_udp 2001:db8::7 . 5353 : fd42:1::2 . 53",
        "published_ip6_tcp 7070 : fd42:1::3 . 70",
        "published_ip6_tcp 8080 : fd42:1::2 . 80",
        "published_ip6_tcp 8082 : fd42:1::2 . 82",
    ]


def test_a_publication_is_one_container_family_on_that_familys_gateway_network():
    found = [(p.port, p.network.name, str(p.address), [m.host_first for m in p.mappings])
             for p in publications(DUAL_SPEC, ADDRESSES, ADDRESSES6)]
    assert found == [
        (veth_name("web", "front"), "front", "10.1.0.2", [8080, 8081, 8443]),  # none, 0.0.0.0, 127.0.0.1
        (veth_name("web", "front"), "front", "fd42:1::2", [8080, 8082, 5353]),  # none, ::, 2001:db8::7
        (veth_name("old", "v4only"), "v4only", "10.2.0.2", [9090]),
        (veth_name("mixed", "v4only"), "v4only", "10.2.0.3", [7070]),
        (veth_name("mixed", "front"), "front", "fd42:1::3", [7070]),
    ]


def test_the_gateway_network_of_a_family_is_the_best_non_internal_network_carrying_it():
    mixed = DUAL_SPEC.container("mixed")
    assert gateway_attachment(DUAL_SPEC, mixed).network == "v4only"
    assert gateway_attachment(DUAL_SPEC, mixed, family=6).network == "front"
    assert gateway_attachment(DUAL_SPEC, DUAL_SPEC.container("old"), family=6) is None
    quiet = DUAL_SPEC.container("quiet")
    assert gateway_attachment(DUAL_SPEC, quiet, family=6).network == "front"  # sealed is internal
    tie = dataclasses.replace(quiet, networks=(Attachment("front"), Attachment("other")))
    spec = dataclasses.replace(DUAL_SPEC, networks=DUAL_SPEC.networks + (dual_stack("other", 4),))
    assert gateway_attachment(spec, tie, family=6).network == "front"  # the first listed on a tie


def test_each_familys_gateway_veth_of_a_publisher_is_in_hairpin_mode():
    hairpin = {c.name: hairpin_attachments(DUAL_SPEC, c) for c in DUAL_SPEC.containers}
    assert hairpin == {"web": {"front"}, "old": {"v4only"}, "mixed": {"v4only", "front"}, "quiet": set()}
    v6_only_ports = dataclasses.replace(DUAL_SPEC.container("mixed"), ports=ports(("::", 7070, 70)))
    assert hairpin_attachments(DUAL_SPEC, v6_only_ports) == {"front"}


def test_a_dual_stack_subnet_is_masqueraded_per_family_and_hairpin_per_published_family():
    assert chain(dual_ruleset(), "inet", "postrouting") == [
        'ip saddr 10.1.0.0/24 oifname != "br-front" masquerade',
        'oifname "br-front" ct status dnat ip saddr 10.1.0.0/24 masquerade',
        'oifname "br-front" ip saddr 127.0.0.0/8 masquerade',
        'ip6 saddr fd42:1::/64 oifname != "br-front" masquerade',
        'oifname "br-front" ct status dnat ip6 saddr fd42:1::/64 masquerade',
        'ip saddr 10.2.0.0/24 oifname != "br-v4only" masquerade',
        'oifname "br-v4only" ct status dnat ip saddr 10.2.0.0/24 masquerade',
        'oifname "br-v4only" ip saddr 127.0.0.0/8 masquerade',
    ]  # sealed is internal: nothing of it leaves, nothing is published to it


def test_masquerade6_false_routes_ipv6_but_keeps_its_hairpin_and_ipv4_nat():
    postrouting = chain(dual_ruleset(with_networks(DUAL_SPEC, masquerade6=False)), "inet", "postrouting")
    assert 'ip6 saddr fd42:1::/64 oifname != "br-front" masquerade' not in postrouting
    assert postrouting[:2] == [
        'ip saddr 10.1.0.0/24 oifname != "br-front" masquerade',
        'oifname "br-front" ct status dnat ip saddr 10.1.0.0/24 masquerade',
    ]
    assert 'oifname "br-front" ct status dnat ip6 saddr fd42:1::/64 masquerade' in postrouting
    no_nat = chain(dual_ruleset(with_networks(DUAL_SPEC, masquerade=False)), "inet", "postrouting")
    assert not [rule for rule in no_nat if "!=" in rule]  # masquerade: false turns off both families


def test_forward_and_guard_rules_are_the_same_with_and_without_ipv6():
    """They name interfaces, not addresses, so they keep networks apart and internal
    networks in for both families (the guard is about 127.0.0.0/8: IPv4 only)."""
    ipv4_only = with_networks(DUAL_SPEC, enable_ipv6=False, subnet6=None, gateway6=None)
    for name in ("forward", "guard"):
        assert chain(dual_ruleset(), "inet", name) == chain(dual_ruleset(ipv4_only), "inet", name), name
    forward = chain(dual_ruleset(), "inet", "forward")
    assert not [rule for rule in forward if " ip " in f" {rule}" or "ip6" in rule]
    assert 'iifname "br-sealed" drop' in forward
    assert chain(dual_ruleset(), "inet", "guard") == [
        'iifname "br-front" ip daddr 127.0.0.0/8 drop', 'iifname "br-v4only" ip daddr 127.0.0.0/8 drop',
    ]


def test_icc_false_lets_each_familys_published_container_ports_through():
    spec = dataclasses.replace(DUAL_SPEC, networks=(dataclasses.replace(FRONT, icc=False), V4ONLY, SEALED))
    web, mixed, quiet = (veth_name(name, "front") for name in ("web", "mixed", "quiet"))
    assert chain(dual_ruleset(spec), "bridge", "forward") == [
        f'oifname "{web}" ip daddr 10.1.0.2 tcp dport 80 accept',
        f'iifname "{web}" ip saddr 10.1.0.2 tcp sport 80 accept',
        f'oifname "{web}" ip daddr 10.1.0.2 tcp dport 81 accept',
        f'iifname "{web}" ip saddr 10.1.0.2 tcp sport 81 accept',
        f'oifname "{web}" ip daddr 10.1.0.2 tcp dport 443 accept',
        f'iifname "{web}" ip saddr 10.1.0.2 tcp sport 443 accept',
        f'oifname "{web}" ip6 daddr fd42:1::2 tcp dport 80 accept',
        f'iifname "{web}" ip6 saddr fd42:1::2 tcp sport 80 accept',
        f'oifname "{web}" ip6 daddr fd42:1::2 tcp dport 82 accept',
        f'iifname "{web}" ip6 saddr fd42:1::2 tcp sport 82 accept',
        f'oifname "{web}" ip6 daddr fd42:1::2 udp dport 53 accept',
        f'iifname "{web}" ip6 saddr fd42:1::2 udp sport 53 accept',
        f'oifname "{mixed}" ip6 daddr fd42:1::3 tcp dport 70 accept',
        f'iifname "{mixed}" ip6 saddr fd42:1::3 tcp sport 70 accept',
        f'iifname "{web}" drop',
        f'iifname "{mixed}" drop',
        f'iifname "{quiet}" drop',
    ]


def test_route_localnet_only_for_bridges_with_ipv4_publications():
    v6_only = dataclasses.replace(DUAL_SPEC, containers=(
        dataclasses.replace(DUAL_SPEC.container("web"), ports=ports(("::", 8082, 82))),))
    sysctls = {o.setting for o in firewall_objects(v6_only, ADDRESSES, ADDRESSES6) if isinstance(o, Sysctl)}
    assert sysctls == set()
    assert chain(dual_ruleset(v6_only), "inet", "guard") == []
    postrouting = chain(dual_ruleset(v6_only), "inet", "postrouting")
    assert 'oifname "br-front" ct status dnat ip6 saddr fd42:1::/64 masquerade' in postrouting
    assert not [rule for rule in postrouting if "ct status dnat ip saddr" in rule or "127.0.0.0/8" in rule]
    sysctls = {o.setting for o in firewall_objects(DUAL_SPEC, ADDRESSES, ADDRESSES6) if isinstance(o, Sysctl)}
    assert sysctls == {route_localnet("br-front"), route_localnet("br-v4only")}


LOOPBACK6_SPEC = """\
version: 1
networks:
  front:
    subnet: 10.1.0.0/24
    enable_ipv6: true
    subnet6: "fd42:1::/64"
containers:
  web:
    networks: [front]
    ports:
      - "8080:80"
      - "[::1]:8081:81"
"""


def test_a_port_on_ipv6_loopback_is_refused_at_its_line_saying_why():
    """The kernel does not deliver a DNATed container's replies to ::1 (no route_localnet
    in IPv6; measured in a throwaway namespace: the SYN reaches the container, its SYN-ACK
    reaches the host and is un-NATed to ::1, and never reaches the input hook)."""
    with pytest.raises(SpecError) as caught:
        load_spec_text(LOOPBACK6_SPEC, "spec.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith("spec.yaml:12:9: containers.web.ports.1: a port cannot be published on ::1: "
                                   "IPv6 has no route_localnet")
    assert "publish on 127.0.0.1 or on one of the host's IPv6 addresses" in str(problem)
    load_spec_text(LOOPBACK6_SPEC.replace("[::1]", "[2001:db8::1]"), "spec.yaml")


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
@pytest.mark.parametrize("icc", [True, False], ids=["icc", "no-icc"])
def test_the_kernel_lists_a_dual_stack_ruleset_as_rendered(sandbox, icc):
    """nft accepts the rules of both families and lists them back as rendered (a throwaway namespace)."""
    netns = sandbox.name("fw6")
    sh(f"ip netns add {netns}")
    rendered = dual_render(with_networks(DUAL_SPEC, icc=icc))
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rendered, text=True, check=True)
    listed = sh(f"ip netns exec {netns} nft list ruleset")  # a new namespace: only the rendered tables
    assert ("table bridge" in listed) is not icc
    assert "meta nfproto ipv6 dnat ip6 to tcp dport map @published_ip6_tcp" in listed
    assert "8080 : fd42:1::2 . 80" in listed
    assert firewall.split_elements(firewall.normalize(listed)) == firewall.split_elements(firewall.normalize(rendered))
