"""How the embedded DNS server answers one query: pure, a message in, a decision out.

Follows Docker's resolver (moby/moby v28 `libnetwork/resolver.go` `handleQuery`,
`handleIPQuery`, `handlePTRQuery`, `handleMXQuery`):
- A and AAAA for a name in the namespace's scope: its addresses of that IP version,
  TTL 600; a name in scope without an address of that version gets an empty answer
  (NOERROR), as Docker's "IPv6 miss";
- PTR for an address in scope: the first name it is known by (the container's name);
- any other type for a name in scope: an empty answer (Docker answers MX so; no record
  of another type exists for these names);
- a name not in scope is forwarded to the upstream servers, except
  - a single-label A/AAAA name when the container's resolv.conf set ndots: an empty
    answer (Docker: "If the user sets ndots > 0 explicitly and the query is in the root
    domain don't forward it out"),
  - a name some other container in the spec is known by (it is in another namespace's
    scope): NXDOMAIN. Docker forwards it; netreconcile does not, so that a name is not
    resolvable from a container sharing no network with its owner, and the spec's names
    never leak to (or get answered by) the upstream servers.
The records of an answer are shuffled when encoded (dnspython's rdataset.to_wire), as
Docker shuffles them, so that clients taking the first spread over the containers of a
shared alias. Whether forwarding finds an answer (SERVFAIL when none does) is
decided by the server, not here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from reconciler.dns.config import NamespaceConfig, name_key

ANSWERED, NXDOMAIN, FORWARDED, FAILED = "answered", "nxdomain", "forwarded", "failed"
RESULTS = (ANSWERED, NXDOMAIN, FORWARDED, FAILED)
TTL = 600  # Docker's respTTL
MIN_UDP_PAYLOAD = 512  # what every DNS client takes over UDP
MAX_TCP_MESSAGE = 65535
_FAMILY = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}


@dataclass(frozen=True)
class Decision:
    """What to do with a query: `result` one of RESULTS; `reply` the message to send,
    None when the query goes to the upstream servers (FORWARDED)."""

    result: str
    reply: dns.message.Message | None = None


FORWARD = Decision(FORWARDED)


def decide(query: dns.message.Message, namespace: NamespaceConfig, known: frozenset[str]) -> Decision:
    """The answer to `query` from a container whose config is `namespace`; `known`: the
    name keys of every served namespace's scope."""
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1 or query.flags & dns.flags.QR:
        return Decision(FAILED, _reply(query, dns.rcode.FORMERR if query.opcode() == dns.opcode.QUERY
                                       else dns.rcode.NOTIMP))
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        return FORWARD
    key = name_key(question.name.to_text())
    if question.rdtype == dns.rdatatype.PTR:
        found = _ptr(query, question, namespace)
        if found is not None:
            return found
    addresses = namespace.table.forward.get(key)
    if addresses is not None:
        reply = _reply(query)
        family = _FAMILY.get(question.rdtype)
        found = [_address_rdata(address) for address in addresses if address.version == family]
        if found:
            reply.answer.append(dns.rrset.from_rdata_list(question.name, TTL, found))
        return Decision(ANSWERED, reply)
    if key in known:
        return Decision(NXDOMAIN, _reply(query, dns.rcode.NXDOMAIN))
    if namespace.ndots_set and question.rdtype in _FAMILY and "." not in key:
        return Decision(ANSWERED, _reply(query))
    return FORWARD


def _ptr(query: dns.message.Message, question: dns.rrset.RRset, namespace: NamespaceConfig) -> Decision | None:
    try:
        address = ip_address(dns.reversename.to_address(question.name))
    except (dns.exception.SyntaxError, ValueError):
        return None  # not a whole address under in-addr.arpa or ip6.arpa: upstream's business
    names = namespace.table.reverse.get(address)
    if not names:
        return None
    reply = _reply(query)
    reply.answer.append(dns.rrset.from_text_list(question.name, TTL, "IN", "PTR", [names[0] + "."]))
    return Decision(ANSWERED, reply)


@functools.lru_cache(maxsize=65536)
def _address_rdata(address: IPv4Address | IPv6Address) -> dns.rdata.Rdata:
    # parsing the address text is most of the cost of an answer; rdata are immutable
    rdtype = dns.rdatatype.A if address.version == 4 else dns.rdatatype.AAAA
    return dns.rdata.from_wire(dns.rdataclass.IN, rdtype, address.packed, 0, len(address.packed))


def _reply(query: dns.message.Message, rcode: int = dns.rcode.NOERROR) -> dns.message.Message:
    """A reply to `query` as Docker's createRespMsg makes it: authoritative, recursion
    available, the question echoed."""
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA | dns.flags.RA
    reply.set_rcode(rcode)
    return reply


def encode(reply: dns.message.Message, query: dns.message.Message, udp: bool) -> bytes:
    """The reply's wire form. Over UDP it must fit what the client takes (512 bytes, or
    the payload its EDNS option offers): a longer one goes without records and with TC
    set, so that the client asks again over TCP (RFC 1035 4.2.1, RFC 6891 6.2.5)."""
    limit = (max(query.payload, MIN_UDP_PAYLOAD) if query.edns >= 0 else MIN_UDP_PAYLOAD) if udp else MAX_TCP_MESSAGE
    try:
        return reply.to_wire(max_size=limit)
    except dns.exception.TooBig:
        truncated = dns.message.make_response(query)
        truncated.flags = reply.flags | dns.flags.TC
        truncated.set_rcode(reply.rcode())
        return truncated.to_wire(max_size=limit)


def failure(query: dns.message.Message, rcode: int = dns.rcode.SERVFAIL) -> dns.message.Message:
    """The reply when no upstream server answered (SERVFAIL) or too many queries are
    being forwarded (REFUSED, Docker's maxConcurrent)."""
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.RA
    reply.set_rcode(rcode)
    return reply
