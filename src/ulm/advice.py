"""When a new round's advice is the advice already waiting for an operator.

In advise mode every round plans again. If the new plan moves the same VMs between the same
hosts (and powers the same hosts on or off) as the newest plan still proposed, the store keeps
that plan -- its id, its state READY -- so that an operator has more than one interval to read
and approve it; only a different (or no) advice supersedes it. One rule, used by the store.

The comparison ignores order: the scheduler may order the same moves differently when loads
move a little, and every action is re-checked when the plan is applied anyway. The kept plan's
actions stay in their stored order, because an operator skips actions by their 1-based place
(`POST plans/{id}/apply {"skip": [...]}`) on a page that may have been drawn rounds ago.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Key = tuple[str, str, str, str]


def key(action: Mapping[str, Any]) -> Key:
    """What the advice is about: the kind and VM, source, destination (or the host)."""
    if action["kind"] == "move":
        return ("move", str(action["vm"]), str(action["src"]), str(action["dst"]))
    return (str(action["kind"]), str(action.get("host", "")), "", "")


def same_actions(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> bool:
    """The same actions, in any order (an empty advice is never the same: it supersedes)."""
    return bool(new) and Counter(map(key, old)) == Counter(map(key, new))


def refreshed(old: Mapping[str, Any], new: Mapping[str, Any], seen_at: float) -> dict[str, Any]:
    """The kept plan's body: the new round's figures (loads, decisions, problems, efficacy,
    each action's reason and size) with the actions in the old body's order, `created_at`
    the old one (when this advice was first given) and `seen_at` the round that gave it
    again. Requires `same_actions(old["actions"], new["actions"])`."""
    fresh: dict[Key, list[dict[str, Any]]] = {}
    for a in new["actions"]:
        fresh.setdefault(key(a), []).append(dict(a))
    actions = [fresh[key(a)].pop(0) for a in old["actions"]]
    return {**new, "actions": actions, "created_at": old["created_at"], "seen_at": seen_at}


def seen_at(body: Mapping[str, Any], created_at: float) -> float:
    """When a plan was last given as the advice: its last round's time, else its creation."""
    return float(body.get("seen_at", created_at))
