"""What this kernel can make that not every kernel can: 802.1Q VLAN links (module 8021q).

The kernel can make a VLAN link when the 8021q module is loaded or built in
(/proc/net/vlan/config exists) or can be loaded on demand: the module is listed in
/lib/modules/<release>/modules.dep or modules.builtin, and the kernel loads it itself on
the first request for a link of kind vlan. netreconcile never loads modules.
"""

from __future__ import annotations

import functools
import os

VLAN_PROC = "/proc/net/vlan/config"
MODULES_DIR = "/lib/modules"
VLAN_MODULE = "/8021q.ko"  # as modules.dep and modules.builtin list it (kernel/net/8021q/8021q.ko[.xz])


def vlan_supported(proc_file: str = VLAN_PROC, modules_dir: str = MODULES_DIR) -> bool:
    return os.path.exists(proc_file) or _module_listed(modules_dir)


@functools.lru_cache(maxsize=4)
def _module_listed(modules_dir: str) -> bool:
    """Whether the running kernel's module lists name 8021q: read once per process (every
    observation asks, and modules.dep is thousands of lines; a module installed later is
    seen once loaded, by /proc)."""
    release = os.uname().release
    for listing in ("modules.dep", "modules.builtin"):
        try:
            with open(os.path.join(modules_dir, release, listing), encoding="utf-8", errors="replace") as handle:
                if any(VLAN_MODULE in line for line in handle):
                    return True
        except OSError:
            continue
    return False


def unsupported_link_kinds() -> frozenset[str]:
    """The kinds of link netreconcile may be asked for that this kernel cannot make."""
    return frozenset() if vlan_supported() else frozenset({"vlan"})
