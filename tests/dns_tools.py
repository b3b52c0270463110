"""Two small DNS programs for the resolver's kernel tests, run with `ip netns exec`.

    python3 tests/dns_tools.py ask SERVER NAME TYPE udp|tcp
        prints {"rcode": "NOERROR", "answers": [...]} of one query to SERVER:53
    python3 tests/dns_tools.py upstream ADDRESS NAME ANSWER
        serves ADDRESS:53 (UDP and TCP): NAME A ANSWER, NXDOMAIN for anything else;
        prints "ready" once both sockets are bound
"""

from __future__ import annotations

import json
import socket
import sys
import threading

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset


def ask(server: str, name: str, rdtype: str, transport: str) -> None:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if transport == "tcp" else dns.query.udp
    reply = send(query, server, timeout=10)
    answers = sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)
    print(json.dumps({"rcode": dns.rcode.to_text(reply.rcode()), "answers": answers}))


def upstream(address: str, name: str, answer: str) -> None:
    def reply_to(wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        reply = dns.message.make_response(query)
        question = query.question[0]
        if question.name == dns.name.from_text(name) and question.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", answer))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply.to_wire()

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((address, 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((address, 53))
    tcp.listen(8)

    def serve_tcp() -> None:
        while True:
            connection, _ = tcp.accept()
            with connection:
                size = int.from_bytes(connection.recv(2), "big")
                wire = b""
                while len(wire) < size:
                    wire += connection.recv(size - len(wire))
                out = reply_to(wire)
                connection.sendall(len(out).to_bytes(2, "big") + out)

    threading.Thread(target=serve_tcp, daemon=True).start()
    print("ready", flush=True)
    while True:
        wire, client = udp.recvfrom(65535)
        udp.sendto(reply_to(wire), client)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"ask": ask, "upstream": upstream}[command](*args)
