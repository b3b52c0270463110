"""The registry of network drivers: the spec's `driver:` value -> the driver module's driver.

Adding a driver is one module in this package (implementing reconciler.drivers.base's
NetworkDriver) and one entry in `DRIVERS`; the loader accepts the names listed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.drivers.base import NetworkDriver
from reconciler.drivers.bridge import BRIDGE
from reconciler.drivers.macvlan import MACVLAN
from reconciler.drivers.overlay import OVERLAY
from reconciler.spec.types import ContainerSpec, NetworkSpec

DRIVERS: dict[str, NetworkDriver] = {driver.name: driver for driver in (BRIDGE, MACVLAN, OVERLAY)}


def names() -> tuple[str, ...]:
    """The `driver:` values the spec accepts."""
    return tuple(DRIVERS)


def driver_for(name: str) -> NetworkDriver:
    return DRIVERS[name]


def driver_of_kind(kind: str) -> NetworkDriver:
    """The driver that owns kernel objects of `kind`."""
    return next(driver for driver in DRIVERS.values() if any(k.kind == kind for k in driver.kinds()))


def parse_mark(alias: str) -> tuple[NetworkDriver, tuple[str, ...]] | None:
    """The driver whose mark `alias` is, with the mark (link kind, identity...), else None."""
    for driver in DRIVERS.values():
        mark = driver.parse_mark(alias)
        if mark is not None:
            return driver, mark
    return None


def driver_of_link_kind(link_kind: str) -> NetworkDriver | None:
    """The driver that creates host links of `link_kind` (for the pending-links journal)."""
    return next((driver for driver in DRIVERS.values() if link_kind and link_kind in driver.link_kinds), None)


def driver_of_container_link_kind(link_kind: str) -> NetworkDriver | None:
    """The driver whose attachments are links of `link_kind` inside the container."""
    return next((driver for driver in DRIVERS.values() if link_kind and link_kind == driver.container_link_kind),
                None)


def through_host(network_driver: str) -> bool:
    """Whether the traffic of networks of driver `network_driver` goes through the host's IP stack."""
    return DRIVERS[network_driver].through_host


def host_gateway_network(container: ContainerSpec, networks: Mapping[str, NetworkSpec]) -> NetworkSpec | None:
    """The network whose gateway an extra_hosts `host-gateway` names: the container's first
    one whose driver puts a gateway anywhere (an overlay network has none); None: none."""
    return next((networks[a.network] for a in container.networks
                 if a.network in networks and not DRIVERS[networks[a.network].driver].always_internal), None)
