"""Address and host-name text as Docker's Go code writes and checks it; pure.

Shared by the hosts file and resolv.conf renderers, which must agree: the text of an
address (Go's netip.Addr.String(), which both files are written with) and what a label
of a host or domain name may hold (RFC 1123).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

# a label of a host or domain name: letters, digits and '-', not first or last
LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def is_label(text: str) -> bool:
    return LABEL_RE.fullmatch(text) is not None


def address_text(address: IPv4Address | IPv6Address) -> str:
    """netip.Addr.String() without a zone: an IPv4-mapped IPv6 address keeps its dotted
    tail (::ffff:10.0.0.1), which Python before 3.13 prints in hex."""
    mapped = getattr(address, "ipv4_mapped", None)
    return f"::ffff:{mapped}" if mapped is not None else str(address)
