"""Settings of a namespace: its firewall tables (loaded with `nft`) and its sysctls."""

from __future__ import annotations

from reconciler.errors import KernelError
from reconciler.kernel import nft
from reconciler.kernel.batch import KindWriter, Operation, apply_error
from reconciler.kernel.dumps import sysctl_path
from reconciler.render import firewall
from reconciler.state.model import Firewall
from reconciler.state.plan import Action


class FirewallWriter(KindWriter):
    """The netreconcile nftables tables of a namespace (kind firewall)."""

    def operations(self) -> dict[tuple[str, str], Operation]:
        return {
            ("create", "firewall"): self._create_firewall,
            ("update", "firewall"): self._update_firewall,
            ("delete", "firewall"): self._delete_firewall,
        }

    def _create_firewall(self, actions: list[Action]) -> None:
        for action in actions:
            obj: Firewall = action.obj
            self._nft(action, firewall.load_script(obj.ruleset, obj.elements, action.changes))

    _update_firewall = _create_firewall

    def _delete_firewall(self, actions: list[Action]) -> None:
        for action in actions:
            self._nft(action, firewall.delete_script())

    def _nft(self, action: Action, script: str) -> None:
        try:
            nft.load_ruleset(self._fd(action.obj.netns), script)
        except KernelError as error:
            raise apply_error(action, None, str(error)) from error


class SysctlWriter(KindWriter):
    """Sysctls of a namespace (kind sysctl)."""

    def operations(self) -> dict[tuple[str, str], Operation]:
        return {
            ("create", "sysctl"): self._create_sysctl,
            ("update", "sysctl"): self._update_sysctl,
        }

    def _create_sysctl(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            self._sysctl(netns, [(a, sysctl_path(a.obj.setting), a.obj.value) for a in group])

    _update_sysctl = _create_sysctl
