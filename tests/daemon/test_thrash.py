"""Anti-thrash per VM in the daemon's own loop: enforce mode on SimCluster, each VM's moves
today read from the store's journal (and its last migration's duration from the outcomes)
every round, a VM at its daily limit kept where it is when its new host turns hot."""

from __future__ import annotations

from pathlib import Path

from tests.daemon.fakes import HOT_TOML, world
from ulm.daemon import Mode
from ulm.policy import parse_policy

PLACEMENT = {"x": "hA", "y": "hA", "z": "hB", "w": "hC"}
CPU = {"x": 2.0, "y": 1.5, "z": 0.1, "w": 0.1}  # hA at 3.5/4: x (the hungriest) goes to hB


def _moves(results: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [(m.vm, m.src, m.dst) for r in results if r.plan is not None and r.result is not None
            for m in r.plan.moves]


def test_a_vm_at_its_daily_limit_stays_when_its_new_host_turns_hot(tmp_path: Path) -> None:
    policy = parse_policy(HOT_TOML + "max_moves_per_vm_per_day = 1\n", "<thrash>")
    w = world(tmp_path, PLACEMENT, hosts=("hA", "hB", "hC"), mode=Mode.enforce,
              policy=policy, vm_cpu=CPU, rounds=12)
    first = w.rounds(5)
    assert _moves(first) == [("x", "hA", "hB")]
    snap = w.daemon._snapshot(w.clock.now())
    x = snap.vms[snap.vm_index["x"]]
    assert x.moves_today == 1 and x.last_move_s is not None and x.last_move_s >= 0
    w.source.vm_cpu["z"] = 1.5  # hB at 3.5/4 now: x would be the one to leave again
    later = w.rounds(7)
    assert _moves(later) == [("z", "hB", "hA")]  # hA: 1.5 + 1.5 = 75 %, not above
    rows = [d.outcome for r in later if r.plan is not None for d in r.plan.decisions
            if d.vm == "x"]
    assert "kept: moved 1 times today (limit 1)" in rows
    assert w.cluster.placement["x"] == "hB"


def test_without_the_limit_the_same_vm_moves_again(tmp_path: Path) -> None:
    w = world(tmp_path, PLACEMENT, hosts=("hA", "hB", "hC"), mode=Mode.enforce,
              vm_cpu=CPU, rounds=12)
    first = w.rounds(5)
    w.source.vm_cpu["z"] = 1.5
    assert [m[0] for m in _moves(first + w.rounds(7))] == ["x", "x"]
