"""A container's /etc/hosts and /etc/hostname, as Docker writes them on the default bridge.

Pure: no I/O. This module owns the text of both files, the name string of the
container's own lines, the `--add-host` / Compose `extra_hosts` syntax and legacy
`--link` entries. Sources: moby/moby at v28.0.0, `libnetwork/etchosts/etchosts.go` (the
file, its defaults and record order) and `daemon/container_operations.go` /
`daemon/container_operations_unix.go` (extra-host and legacy-link records); docker/cli
`opts/hosts.go` `ValidateExtraHost` (the `--add-host` syntax). netreconcile regenerates
the whole file from the spec, so there is no connect/disconnect history here: the
file is always what Docker writes when it builds it from scratch.

After Docker's lines comes netreconcile's own: the section of names in discovery scope
(reconciler.state.discovery), between two marker comments.

Docker 28+ is emulated: the IPv6 defaults are spelled `fe00::` and `ff00::`, and
extra-host addresses are written in canonical form. Deciding the address behind
`host-gateway` is the caller's job.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.render.names import address_text, is_label

HOST_GATEWAY = "host-gateway"


class ExtraHostError(ValueError):
    """An `--add-host` / `extra_hosts` item that Docker would reject."""


@dataclass(frozen=True)
class HostEntry:
    """One line of /etc/hosts: an address and the names it carries."""

    address: str
    names: tuple[str, ...]


DEFAULT_ENTRIES = (
    HostEntry("127.0.0.1", ("localhost",)),
    HostEntry("::1", ("localhost", "ip6-localhost", "ip6-loopback")),
    HostEntry("fe00::", ("ip6-localnet",)),
    HostEntry("ff00::", ("ip6-mcastprefix",)),
    HostEntry("ff02::1", ("ip6-allnodes",)),
    HostEntry("ff02::2", ("ip6-allrouters",)),
)


def name_string(hostname: str, domainname: str | None) -> str:
    """The names on the container's own lines: the FQDN, then its first label if it has a dot."""
    fqdn = f"{hostname}.{domainname}" if domainname else hostname
    first_label, dot, _ = fqdn.partition(".")
    return f"{fqdn} {first_label}" if dot else fqdn


def render_hosts(
    *,
    own_addresses: tuple[str, ...],
    hostname: str,
    domainname: str | None,
    extra_hosts: tuple[HostEntry, ...] = (),
    links: tuple[HostEntry, ...] = (),
    ipv6: bool = False,
    discovery: str = "",
) -> str:
    """The whole /etc/hosts: localhost, IPv6 defaults, extra hosts, links, own addresses,
    then `discovery`, the section `render_discovery` gives (rendered once for all the
    containers that share it).

    With `ipv6` False (a container none of whose networks has IPv6) every IPv6 line is
    left out, the defaults included, as Docker 26+ does for a container whose IPv6
    is off. `own_addresses` come in endpoint order, each endpoint's IPv4 before its
    IPv6. Extra hosts must already have `host-gateway` replaced by an address.
    """
    own_names = tuple(name_string(hostname, domainname).split(" "))
    entries = (*DEFAULT_ENTRIES, *extra_hosts, *links, *(HostEntry(a, own_names) for a in own_addresses))
    return "".join(_lines(entries, ipv6)) + discovery


DISCOVERY_BEGIN = "# netreconcile discovery: containers on the same networks (do not edit)\n"
DISCOVERY_END = "# end of netreconcile discovery\n"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def render_discovery(records: Iterable[tuple[str, tuple[Address, ...]]], ipv6: bool) -> str:
    """The discovery section: one line per address with the names it carries, in the
    order of `records` ((name, addresses) pairs, as discovery.names_in_scope gives them),
    between the marker lines; IPv6 lines only with `ipv6`; "" when there is no line."""
    by_address: dict[Address, list[str]] = {}
    for name, addresses in records:
        for address in addresses:
            if ipv6 or address.version == 4:
                by_address.setdefault(address, []).append(name)
    if not by_address:
        return ""
    lines = (f"{address_text(address)}\t{' '.join(names)}\n" for address, names in by_address.items())
    return f"{DISCOVERY_BEGIN}{''.join(lines)}{DISCOVERY_END}"


def _lines(entries: Iterable[HostEntry], ipv6: bool) -> Iterable[str]:
    for entry in entries:
        version, canonical = _canonical_text(entry.address)
        if version == 4 or ipv6:
            yield f"{canonical}\t{' '.join(entry.names)}\n"


@functools.lru_cache(maxsize=4096)
def _canonical_text(text: str) -> tuple[int, str]:
    """(IP version, canonical text); cached: the same default lines are rendered for
    every container, and parsing addresses dominated rendering 1000 hosts files."""
    address = _parse_address(text)
    return address.version, address_text(address)


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if text == HOST_GATEWAY:
        raise ValueError(f"{HOST_GATEWAY!r} must be replaced by the gateway address before rendering")
    # Python accepts a "%zone" suffix; Docker's parsers do not, and it has no meaning in /etc/hosts
    if "%" in text:
        raise ValueError(f"invalid IP address: {text!r}")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"invalid IP address: {text!r}") from None


def link_entry(
    address: str, alias: str, target_name: str, target_hostname: str, target_aliases: tuple[str, ...] = ()
) -> HostEntry:
    """The parent's line for `--link target:alias`: alias, target hostname, target name, then its aliases.

    The target's name is listed only if it differs from the alias (Docker's rule);
    a name already listed is not repeated.
    """
    names = (alias, target_hostname, *((target_name,) if target_name != alias else ()), *target_aliases)
    return HostEntry(address_text(_parse_address(address)), tuple(dict.fromkeys(names)))


def parse_extra_host(item: str) -> HostEntry:
    """One `--add-host` / Compose `extra_hosts` list item: `name:ip`, `name=ip`, `name:[ip]` or `name=[ip]`.

    `=` is tried first, then the first `:` (so `h:::1` is valid), as docker/cli does.
    The address comes back canonical; `host-gateway` comes back as is.
    """
    name, separator, value = item.partition("=")
    if not separator:
        name, separator, value = item.partition(":")
    # a colon in the name would be misread by the daemon, which splits the API value at the first colon
    if not separator or not name or ":" in name:
        raise ExtraHostError(f"bad format for add-host: {_quote(item)}")
    return _extra_host(name, value)


def extra_host_from_mapping(name: str, value: str) -> HostEntry:
    """One entry of the Compose mapping form `extra_hosts: {name: ip}`."""
    if not name or ":" in name:
        raise ExtraHostError(f"bad host name in extra_hosts: {_quote(name)}")
    if not isinstance(value, str):
        raise ExtraHostError(f"invalid IP address in extra_hosts for {_quote(name)}: {value!r}")
    return _extra_host(name, value)


def _extra_host(name: str, value: str) -> HostEntry:
    # Docker would write the whitespace into the file, turning one name into several (or a new line)
    if any(character.isspace() for character in name):
        raise ExtraHostError(f"host name in add-host contains whitespace: {_quote(name)}")
    if value == HOST_GATEWAY:
        return HostEntry(HOST_GATEWAY, (name,))
    address = value[1:-1] if len(value) > 2 and value[0] == "[" and value[-1] == "]" else value
    try:
        return HostEntry(address_text(_parse_address(address)), (name,))
    except ValueError:
        raise ExtraHostError(f"invalid IP address in add-host: {_quote(address)}") from None


def _quote(text: str) -> str:
    """Like Go's %q for the texts we meet, so messages match docker/cli's."""
    return json.dumps(text, ensure_ascii=False)


def render_hostname(hostname: str) -> str:
    """/etc/hostname: the hostname alone (never the domainname) and a newline."""
    return f"{hostname}\n"


def validate_hostname(name: str) -> str | None:
    """Why `name` is not an RFC 1123 host name, or None if it is one."""
    if not name:
        return "hostname is empty"
    if len(name) > 253:
        return f"hostname {name!r} is longer than 253 characters"
    for label in name.split("."):
        if not 1 <= len(label) <= 63:
            return f"hostname {name!r} has a label of {len(label)} characters (1 to 63 allowed)"
        if not is_label(label):
            return f"hostname {name!r}: label {label!r} may hold only letters, digits and '-', not at either end"
    return None
