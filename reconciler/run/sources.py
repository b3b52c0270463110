"""Where watch mode and sync get the spec from: a file, or a file at a git revision.

A source loads the spec when the watcher asks (on the triggers in `reload_on`), names
the files whose changes should trigger a pass, and hears how each pass ended, so that
the git source can record which commit is live.
"""

from __future__ import annotations

import datetime

from reconciler.errors import NetreconcileError, SourceError, SpecError
from reconciler.kernel.statedir import StateDir
from reconciler.run import gitsource, logs
from reconciler.spec.loader import load_spec, load_spec_text
from reconciler.spec.nodes import NodeChoice
from reconciler.spec.types import Spec

log = logs.get_logger()


class FileSource:
    """The spec file given to `watch`."""

    reload_on = frozenset({"spec"})
    must_load_at_start = True  # an invalid spec at start is an error, not something to wait out

    def __init__(self, path: str, node: NodeChoice | None = None):
        self.path = path
        self.node = node

    def load(self) -> Spec:
        return load_spec(self.path, self.node)

    def files(self) -> dict[str, str]:
        return {self.path: "spec"}

    def current(self) -> dict[str, str]:
        """What a pass's log line says of the spec it converged on."""
        return {}

    def converged(self) -> None:
        pass

    def failed(self, error: NetreconcileError) -> None:
        pass


class GitSource:
    """The spec file at the head of a branch, fetched on start, on every resync (the
    sync interval) and on SIGHUP; the commit applied and attempted last are recorded in
    the state directory."""

    reload_on = frozenset({"start", "resync", "sighup", "retry"})
    must_load_at_start = False  # the host keeps what it has until a good commit comes

    def __init__(self, repository: str, path: str, ref: str | None, state: StateDir, node: NodeChoice | None = None):
        self.repository = repository
        self.node = node
        self.path = path
        self.ref = ref
        self.state = state
        self.revision: gitsource.Revision | None = None  # the last valid one: what passes converge on
        self.spec: Spec | None = None
        self.attempt: tuple[str | None, str | None] = (None, None)  # the newest commit tried, and its error

    def load(self) -> Spec:
        applied = self.revision.commit if self.revision else (self.state.git_record() or {}).get("applied")
        try:
            revision = gitsource.fetch(self.repository, self.path, self.ref, self.state.git_cache, applied)
        except SourceError as error:
            self._attempted(None, str(error))  # no commit was read: the error is the fetch's
            raise
        if revision.rewritten_from:
            log.warning("sync: the branch's history was rewritten: its head does not descend from the applied "
                        "commit; following it", ref=revision.ref, applied=revision.rewritten_from[:12],
                        commit=revision.commit[:12])
        if self.revision is not None and revision.commit == self.revision.commit and self.spec is not None:
            self.attempt = (revision.commit, None)
            return self.spec
        try:
            spec = load_spec_text(revision.text, revision.display_name, self.node)
        except SpecError as error:
            self._attempted(revision.commit, f"invalid spec: {error}")
            raise
        self.revision, self.spec = revision, spec
        self.attempt = (revision.commit, None)
        return spec

    def files(self) -> dict[str, str]:
        return {}

    def current(self) -> dict[str, str]:
        return {"commit": self.revision.commit[:12]} if self.revision is not None else {}

    def converged(self) -> None:
        """The kernel matches the current (last valid) commit."""
        if self.revision is not None:
            self._write(applied=self.revision.commit)

    def failed(self, error: NetreconcileError) -> None:
        self._attempted(self.revision.commit if self.revision else self.attempt[0], str(error))

    def _attempted(self, commit: str | None, error: str) -> None:
        self.attempt = (commit, error)
        self._write()

    def _write(self, applied: str | None = None) -> None:
        """Record the newest attempt (and the commit applied); times say when each first
        became what it is, so a pass that changes nothing writes nothing."""
        old = self.state.git_record() or {}
        attempted, error = self.attempt
        facts = {"repository": self.repository, "path": self.path, "ref": self.ref, "error": error,
                 # the commit the error belongs to: None for one met before any commit was read
                 "error_commit": attempted if error else None,
                 "attempted": attempted or old.get("attempted"), "applied": old.get("applied")}
        if applied is not None:
            facts.update({"applied": applied, "applied_ref": self.revision.ref if self.revision else None})
        if all(old.get(key) == value for key, value in facts.items()):
            return
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        record = {**old, **facts, "attempted_at": now}
        if facts["applied"] != old.get("applied"):
            record["applied_at"] = now
        self.state.write_git_record(record)


def git_status(state: StateDir) -> dict | None:
    """The `"git"` part of `status`: applied and attempted commit and the last error."""
    record = state.git_record()
    if record is None:
        return None
    return {"applied": record.get("applied"), "attempted": record.get("attempted"), "error": record.get("error"),
            "error_commit": record.get("error_commit"),
            "repository": record.get("repository"), "path": record.get("path"),
            "applied_at": record.get("applied_at"), "attempted_at": record.get("attempted_at")}
