"""The API's dry run plans as a round does: on the round's snapshot, with every host the
executor holds kept out of the decisions (`Holds.keep_off`), not only dropped afterwards."""

from __future__ import annotations

from pathlib import Path

from tests.api.server import build
from ulm.api.bus import EventBus
from ulm.api.local import DaemonActions
from ulm.model import Move, PowerOn


def _moves(actions: tuple[dict[str, object], ...]) -> list[tuple[object, object, object]]:
    return [(a["vm"], a["src"], a["dst"]) for a in actions if a["kind"] == "move"]


def test_a_dry_run_picks_another_destination_than_a_held_host(tmp_path: Path) -> None:
    daemon = build(tmp_path)
    api = DaemonActions(daemon, EventBus())
    free = api.plan_now("op", dry_run=True)
    first = _moves(free.action_list)
    assert first and first[0][1] == "h1"  # h1 is overloaded: a web VM leaves it
    held = str(first[0][2])
    daemon.executor.holds.take("bg", [PowerOn(held, "an earlier plan's wake")])
    preview = api.plan_now("op", dry_run=True)
    moves = _moves(preview.action_list)
    # kept off: the VM goes elsewhere (admit alone would only have dropped the move)
    assert moves and all(dst != held for _, _, dst in moves), (moves, preview.problems)
    assert not any("held by an unfinished action" in p for p in preview.problems)
    # and it is the plan a round makes under the same holds
    snap = daemon.planning_snapshot(daemon.clock.now())
    round_plan = daemon.executor.holds.plan(snap, daemon.policy, daemon.clock.now())
    assert [(a.vm, a.src, a.dst) for a in round_plan.actions if isinstance(a, Move)] == moves
    daemon.executor.holds.release_plan("bg")
