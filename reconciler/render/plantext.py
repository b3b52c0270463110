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
        "name": action.obj.name,
        "reason": action.reason,
        "source": action.source,
    }
    if action.changes:
        document["changes"] = [
            {"field": name, "from": _plain(old), "to": _plain(new)} for name, old, new in action.changes
        ]
    return document


def plan_document(plan: Plan, **extra) -> dict:
    return {"actions": [action_document(a) for a in plan.actions], "summary": plan.counts(), **extra}


def _plain(value):
    return value if isinstance(value, (str, int, bool, float)) or value is None else str(value)


def action_line(action: Action) -> str:
    source = f"  ({action.source})" if action.source else ""
    return f"{SYMBOLS[action.op]} {action.kind} {action.obj.name}: {action.reason}{source}"


def summary_line(plan: Plan, verb: str = "Plan") -> str:
    counts = plan.counts()
    if not plan.actions:
        return "No changes. The kernel matches the spec."
    return f"{verb}: {counts[CREATE]} to create, {counts[UPDATE]} to update, {counts[DELETE]} to delete."
