"""A server for traffic tests: answers every request with the client's address.

    python3 tests/echo_server.py tcp|udp BIND_ADDRESS PORT

TCP speaks HTTP (any GET gets the client address as its body); UDP answers each
datagram with the client address. An IPv6 BIND_ADDRESS (`::` included) serves IPv6
only. Run it inside a namespace with `ip netns exec`.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import sys


class EchoHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer looks up its own FQDN here: a DNS query that times out in a sandbox
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class QuietServer6(QuietServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def main() -> None:
    protocol, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ipv6 = ":" in address
    if protocol == "tcp":
        (QuietServer6 if ipv6 else QuietServer)((address, port), EchoHandler).serve_forever()
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
    if ipv6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    while True:
        _, client = sock.recvfrom(2048)
        sock.sendto(client[0].encode(), client)


if __name__ == "__main__":
    main()
