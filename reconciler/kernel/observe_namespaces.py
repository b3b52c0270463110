"""Which network namespaces are netreconcile's: those its state records, still the
namespaces it made (by cookie); those it manages for another host namespace; and the
aliases (a name for another container's or the host's namespace)."""

from __future__ import annotations

import errno
import os

from reconciler.errors import KernelError
from reconciler.kernel.session import NETNS_DIR, KernelSession
from reconciler.state.model import HOST_NS, MISSING, KernelObject, NetnsAlias


def list_netns() -> set[str]:
    try:
        return {name for name in os.listdir(NETNS_DIR) if not name.startswith(".")}
    except FileNotFoundError:
        return set()


def owned_netns(session: KernelSession, record: dict[str, int], present: set[str]) -> dict[str, int]:
    """The part of the record whose namespaces are `present` and still the ones we made,
    with their cookies (a recorded cookie of 0 means: being created by us)."""
    owned = {}
    for name, cookie in record.items():
        if name not in present:
            continue
        try:
            current = session.socket(name).netns_cookie()
        except (KernelError, OSError) as error:
            # a creation cut short: the name's file exists but holds no namespace; a link put
            # in its place (never followed) is no namespace of ours either
            if cookie == 0 or getattr(error, "errno", None) == errno.ELOOP:
                session.forget(name)
                continue
            raise
        if cookie in (0, current):
            owned[name] = current
        else:
            session.forget(name)
    return owned


def netns_managed_elsewhere(session: KernelSession, names: set[str]) -> dict[str, str]:
    """Of the namespaces `names`, not ours, those netreconcile manages for another host
    namespace by that host's record: {name: host namespace, "" for the root one}."""
    found: dict[str, str] = {}
    for host, record in session.state.other_hosts_netns().items():
        for name in sorted((names & record.keys()) - found.keys()):
            if _is_recorded_namespace(session, name, record[name]):
                found[name] = host
    return found


def _is_recorded_namespace(session: KernelSession, name: str, cookie: int) -> bool:
    """Whether /run/netns/NAME is still the namespace recorded with `cookie` (0: being created)."""
    try:
        current = session.socket(name).netns_cookie()
    except (KernelError, OSError):
        return False
    finally:
        session.forget(name)  # not ours: keep no handle on it
    return cookie in (0, current)


def observe_aliases(session: KernelSession, owned: dict[str, int], aliases: dict[str, str]) -> list[KernelObject]:
    """Each alias with the container it still names (by namespace cookie), or MISSING."""
    objects: list[KernelObject] = []
    host_cookie = session.host.netns_cookie() if aliases else 0
    for name, target in sorted(aliases.items()):
        expected = host_cookie if target == HOST_NS else owned.get(target)
        objects.append(NetnsAlias(name, target if owned[name] == expected else MISSING))
    return objects
