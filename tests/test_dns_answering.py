"""The embedded DNS server's answers and config (reconciler.dns.answering, .config): pure.

The name tables are built by hand here: the scope itself (which names a container sees)
belongs to name discovery and is tested there.
"""

from __future__ import annotations

from ipaddress import ip_address

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from reconciler.dns.answering import ANSWERED, FAILED, FORWARDED, NXDOMAIN, TTL, decide, encode
from reconciler.dns.config import NameTable, NamespaceConfig, ndots_set, resolver_config, upstreams
from reconciler.render import resolvconf
from reconciler.spec.loader import load_spec_text

B4, B6, C4 = ip_address("172.31.1.3"), ip_address("fd42:1::3"), ip_address("172.31.1.4")
TABLE = NameTable.of([("b", [B4, B6]), ("Web", [B4]), ("web", [C4]), ("c", [C4])])
KNOWN = frozenset({"b", "web", "c", "d"})  # d: in another namespace's scope only


def ask(name: str, rdtype: str = "A", config: NamespaceConfig = NamespaceConfig(TABLE)):
    query = dns.message.make_query(name, rdtype)
    decision = decide(dns.message.from_wire(query.to_wire()), config, KNOWN)
    if decision.reply is None:
        return decision.result, None, None
    reply = dns.message.from_wire(decision.reply.to_wire())  # what goes on the wire
    assert reply.id == query.id and reply.question == query.question
    answers = sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)
    return decision.result, dns.rcode.to_text(reply.rcode()), answers


@pytest.mark.parametrize("name", ["b", "b.", "B", "B."])
def test_a_name_in_scope_is_answered_whatever_its_case_and_trailing_dot(name):
    assert ask(name) == (ANSWERED, "NOERROR", ["172.31.1.3"])


def test_aaaa_gives_the_ipv6_addresses():
    assert ask("b", "AAAA") == (ANSWERED, "NOERROR", ["fd42:1::3"])


def test_a_name_without_an_address_of_the_asked_version_gets_an_empty_answer_not_a_forward():
    assert ask("c", "AAAA") == (ANSWERED, "NOERROR", [])


def test_an_alias_shared_by_several_containers_gives_all_their_addresses():
    assert ask("WEB") == (ANSWERED, "NOERROR", ["172.31.1.3", "172.31.1.4"])


def test_answers_are_authoritative_with_recursion_available_and_ttl_600():
    reply = decide(dns.message.make_query("b", "A"), NamespaceConfig(TABLE), KNOWN).reply
    assert reply.flags & dns.flags.AA and reply.flags & dns.flags.RA and reply.flags & dns.flags.QR
    assert reply.answer[0].ttl == TTL


@pytest.mark.parametrize("address, name", [(B4, "b."), (B6, "b."), (C4, "web.")])
def test_ptr_gives_the_first_name_of_an_address_in_scope(address, name):
    assert ask(dns.reversename.from_address(str(address)).to_text(), "PTR") == (ANSWERED, "NOERROR", [name])


def test_ptr_of_an_address_not_in_scope_is_forwarded():
    assert ask("9.1.31.172.in-addr.arpa.", "PTR") == (FORWARDED, None, None)


def test_a_name_of_another_namespaces_scope_is_nxdomain_and_never_forwarded():
    assert ask("d") == (NXDOMAIN, "NXDOMAIN", [])
    assert ask("D.", "AAAA") == (NXDOMAIN, "NXDOMAIN", [])


@pytest.mark.parametrize("name, rdtype", [("example.com", "A"), ("single", "A"), ("example.com", "MX")])
def test_a_name_nobody_in_the_spec_has_is_forwarded(name, rdtype):
    assert ask(name, rdtype) == (FORWARDED, None, None)


def test_other_types_for_a_name_in_scope_get_an_empty_answer():
    assert ask("b", "MX") == (ANSWERED, "NOERROR", [])


def test_with_ndots_set_a_single_label_name_not_in_scope_gets_an_empty_answer_like_docker():
    config = NamespaceConfig(TABLE, ndots_set=True)
    assert ask("single", "A", config) == (ANSWERED, "NOERROR", [])
    assert ask("example.com", "A", config) == (FORWARDED, None, None)
    assert ask("single", "MX", config) == (FORWARDED, None, None)


def test_a_query_with_two_questions_is_a_format_error():
    query = dns.message.make_query("b", "A")
    query.question.append(dns.message.make_query("c", "A").question[0])
    decision = decide(query, NamespaceConfig(TABLE), KNOWN)
    assert (decision.result, decision.reply.rcode()) == (FAILED, dns.rcode.FORMERR)


def test_another_class_is_forwarded():
    query = dns.message.make_query("b", "A", rdclass="CH")
    assert decide(query, NamespaceConfig(TABLE), KNOWN).result == FORWARDED


# --- config ---------------------------------------------------------------------------


def test_upstreams_from_the_host_file_are_asked_from_the_host_and_dns_ones_from_the_container():
    host = resolvconf.parse("nameserver 127.0.0.53\nnameserver 10.0.0.1\n")
    assert [str(s) for s in upstreams(host)] == ["host(127.0.0.53)", "host(10.0.0.1)"]
    assert [str(s) for s in upstreams(host, ("127.0.0.11", "1.1.1.1", "9.9.9.9", "8.8.8.8", "8.8.4.4"))] == [
        "1.1.1.1", "9.9.9.9", "8.8.8.8"]  # never itself; at most 3, as Docker
    assert upstreams(resolvconf.parse("")) == ()


def test_without_external_access_no_upstream_is_asked_from_the_host_namespace():
    host = resolvconf.parse("nameserver 127.0.0.53\n")
    assert upstreams(host, external_access=False) == ()
    assert [str(s) for s in upstreams(host, ("10.0.0.1",), external_access=False)] == ["10.0.0.1"]


@pytest.mark.parametrize("host, dns_opt, expected", [
    ("", (), False), ("options ndots:1\n", (), True), ("options ndots:1\n", ("edns0",), False),
    ("", ("ndots:0",), True), ("options ndots\n", (), False),
])
def test_ndots_set(host, dns_opt, expected):
    assert ndots_set(resolvconf.parse(host), dns_opt) is expected


SPEC = """\
version: 1
host: {dns_resolver: true}
networks:
  front: {subnet: 172.31.1.0/24}
  bridge: {subnet: 172.31.2.0/24}
  vault: {subnet: 172.31.3.0/24, internal: true}
containers:
  a: {networks: [front]}
  b: {networks: [front], dns_opt: ["ndots:2"]}
  locked: {networks: [vault]}
  old: {networks: [bridge]}
  j: {network_mode: "container:a"}
"""


def test_resolver_config_serves_each_namespace_that_uses_the_resolver_and_shares_equal_scopes():
    spec = load_spec_text(SPEC, "spec.yaml")
    shared = (("a", (ip_address("172.31.1.2"),)), ("b", (ip_address("172.31.1.3"),)))
    scope = {"a": shared, "b": shared, "old": (), "j": shared, "locked": ()}
    config = resolver_config(spec, resolvconf.parse("nameserver 127.0.0.53\n"), scope)
    assert sorted(config.namespaces) == ["a", "b", "locked"]  # j is served in a's namespace; old has no resolver
    assert config.namespaces["a"].table is config.namespaces["b"].table
    assert config.namespaces["b"].ndots_set and not config.namespaces["a"].ndots_set
    assert [str(s) for s in config.namespaces["a"].upstreams] == ["host(127.0.0.53)"]
    assert config.known == {"a", "b"}
    assert config.namespaces["locked"].upstreams == ()  # only on an internal network: no way out


# --- encoding -------------------------------------------------------------------------

MANY = NameTable.of([("web", [ip_address(f"172.31.{i // 250}.{i % 250 + 2}") for i in range(100)])])


def encoded(query: dns.message.Message, udp: bool) -> dns.message.Message:
    reply = decide(query, NamespaceConfig(MANY), frozenset()).reply
    return dns.message.from_wire(encode(reply, query, udp))


def test_a_reply_too_long_for_udp_is_truncated_so_that_the_client_asks_over_tcp():
    query = dns.message.make_query("web", "A")  # no EDNS: 512 bytes
    over_udp = encoded(query, udp=True)
    assert over_udp.flags & dns.flags.TC and not over_udp.answer and over_udp.id == query.id
    assert len(encoded(query, udp=False).answer[0]) == 100


def test_edns_lets_a_longer_reply_through_udp():
    query = dns.message.make_query("web", "A", use_edns=0, payload=4096)
    reply = encoded(query, udp=True)
    assert not reply.flags & dns.flags.TC and len(reply.answer[0]) == 100
