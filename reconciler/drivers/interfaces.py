"""What the drivers' interfaces share: the sysctl writes that turn IPv6 on or off on one,
and those that give a container interface with IPv6 the quiet defaults its namespace gives
the interfaces it makes (reconciler.state.model.QUIET_IPV6). Pure."""

from __future__ import annotations

from reconciler.drivers.base import Changed
from reconciler.state.model import QUIET_IPV6


def ipv6_switch(netns: str, ifname: str, on: bool) -> tuple[str, str, str]:
    """The sysctl write that turns IPv6 on or off on one interface."""
    return (netns, f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "0" if on else "1")


def container_ipv6_settings(netns: str, ifname: str, ipv6: bool, netns_ipv6: bool, changed: Changed,
                            creating: bool) -> list[tuple[str, str, str]]:
    """IPv6 on the container interface `ifname` as its network wants (`ipv6`). A made
    interface takes its namespace's default (`netns_ipv6`), so creating writes only what
    differs from it; one turned on later was made without the quiet defaults."""
    if not changed("ipv6") or (creating and ipv6 == netns_ipv6):
        return []
    return switched_ipv6(netns, ifname, ipv6)


def switched_ipv6(netns: str, ifname: str, on: bool) -> list[tuple[str, str, str]]:
    """The sysctl writes that turn IPv6 on (quiet: QUIET_IPV6 first, so that the interface
    makes no address of its own, no DAD and no router solicitation) or off on one interface."""
    quiet = [(netns, f"/proc/sys/net/ipv6/conf/{ifname}/{setting}", value) for setting, value in QUIET_IPV6]
    return (quiet if on else []) + [ipv6_switch(netns, ifname, on)]
