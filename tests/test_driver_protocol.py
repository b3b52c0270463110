"""Every registered driver implements the whole driver protocol (reconciler.drivers.base):
a method added to the protocol and forgotten in one driver fails here, not in the middle
of a command on a spec that uses that driver."""

from __future__ import annotations

import inspect

from reconciler import drivers
from reconciler.drivers.base import NetworkDriver


def test_every_driver_has_every_method_and_attribute_of_the_protocol():
    wanted = {name for name, member in vars(NetworkDriver).items()
              if not name.startswith("_") and (inspect.isfunction(member) or name in NetworkDriver.__annotations__)}
    wanted |= set(NetworkDriver.__annotations__)
    assert {"read_options", "network_objects", "max_attachments", "used_interfaces", "name",
            "always_internal", "default_mtu", "chooses_subnet"} <= wanted
    assert len(drivers.DRIVERS) >= 3
    for name, driver in drivers.DRIVERS.items():
        missing = sorted(member for member in wanted if not hasattr(driver, member))
        assert not missing, f"driver {name} lacks {missing}"


def test_the_spec_reads_the_drivers_network_defaults_from_the_protocol():
    """The MTU and internal defaults of a network come from its driver's declared attributes."""
    from reconciler.spec.loader import load_spec_text

    spec = load_spec_text(
        "version: 1\nnodes: {a: {address: 198.51.100.1}}\nnetworks:\n"
        "  lan: {subnet: 10.88.0.0/24}\n  mesh: {driver: overlay, subnet: 10.89.0.0/24}\n"
        "containers: {c: {node: a, networks: [lan, mesh]}}\n", "spec.yaml")
    for network in spec.networks:
        driver = drivers.driver_for(network.driver)
        assert (network.mtu, network.internal) == (driver.default_mtu, driver.always_internal)
