"""Plans as text and as JSON documents; pure functions, no printing.

The human form is terraform-like: one `+`, `~` or `-` line per action with its
reason and spec location, then a summary line.
"""

from __future__ import annotations

from reconciler.state.plan import CREATE, DELETE, UPDATE, Action, Plan

SYMBOLS = {CREATE: "+", UPDATE: "~", DELETE: "-"}
STYLES = {CREATE: "green", UPDATE: "yellow", DELETE: "red"}


def action_document(action: Action) -> dict:
    document = {
        "op": action.op,
        "kind": action.kind,
        "name": action.obj.own_name,
        "description": action.obj.name,
        "reason": action.reason,
        "source": action.source,
    }
    if action.changes:
        document["changes"] = [_change_document(name, old, new) for name, old, new in action.changes]
    return document


# fields holding whole texts (a file, the firewall tables): a change shows their sizes, and
# `reason` the first difference. Whole texts made the document of one container joining
# 1000 that find each other by name 40 MB (each hosts file before and after), and 200 MB
# to print.
TEXT_FIELDS = ("content", "ruleset")


# fields holding a collection of members (the published-port map elements): a change
# lists the members added and removed, not both whole collections
MEMBER_FIELDS = ("elements",)


def _change_document(name: str, old, new) -> dict:
    if name in TEXT_FIELDS:
        return {"field": name, "from_lines": _line_count(old), "to_lines": _line_count(new)}
    if name in MEMBER_FIELDS:
        return {"field": name, "added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new))}
    return {"field": name, "from": _plain(old), "to": _plain(new)}


def _line_count(text) -> int:
    if isinstance(text, tuple):  # a file's Text (reconciler.state.model), in parts
        return sum(part.count("\n") for part in text)
    return text.count("\n") if isinstance(text, str) else 0


def plan_document(plan: Plan, **extra) -> dict:
    return {"actions": [action_document(a) for a in plan.actions], "summary": plan.counts(), **extra}


def _plain(value):
    return value if isinstance(value, (str, int, bool, float)) or value is None else str(value)


def action_line(action: Action) -> str:
    source = f"  ({action.source})" if action.source else ""
    return f"{SYMBOLS[action.op]} {action.kind} {action.obj.name}: {action.reason}{source}"


def summary_line(plan: Plan, verb: str = "Plan") -> str:
    counts = plan.counts()
    if verb == "Destroy":  # everything managed goes: what stays is no drift from a spec
        if not plan.actions:
            return "Nothing to remove: netreconcile manages nothing in this host namespace."
        return f"Destroy: {counts[DELETE]} to remove."
    if not plan.actions:
        return "No changes. The kernel matches the spec."
    return f"{verb}: {counts[CREATE]} to create, {counts[UPDATE]} to update, {counts[DELETE]} to delete."


def outcome_line(plan: Plan, destroying: bool) -> str:
    """What apply or destroy says once the plan is carried out and verified."""
    counts = plan.counts()
    if destroying:
        return f"Destroy complete: {counts[DELETE]} removed; verified."
    return f"Apply complete: {counts[CREATE]} created, {counts[UPDATE]} updated, {counts[DELETE]} deleted; verified."
