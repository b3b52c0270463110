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
    assert {"read_options", "network_objects", "max_attachments", "used_interfaces", "name"} <= wanted
    assert len(drivers.DRIVERS) >= 3
    for name, driver in drivers.DRIVERS.items():
        missing = sorted(member for member in wanted if not hasattr(driver, member))
        assert not missing, f"driver {name} lacks {missing}"
