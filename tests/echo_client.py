"""The client for tests/echo_server.py: prints the address the server saw, or exits 1.

    python3 tests/echo_client.py tcp|udp HOST PORT [TIMEOUT]
"""

from __future__ import annotations

import socket
import sys
import urllib.request


def main() -> int:
    protocol, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
    try:
        if protocol == "tcp":
            url_host = f"[{host}]" if ":" in host else host
            with urllib.request.urlopen(f"http://{url_host}:{port}/", timeout=timeout) as response:
                print(response.read().decode())
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(timeout)
            sock.sendto(b"?", (host, port))
            print(sock.recv(2048).decode())
    except OSError as error:
        print(f"no answer: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
