"""Plans run in the background: the rounds go on collecting, storing and planning while a
slow migration runs, a second host is relieved meanwhile, and nothing an unfinished action
holds appears in a new plan. SimCluster on a clock only the test moves (`stepped`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.daemon.fakes import HOT
from tests.daemon.stepped import LockedCluster, SteppedClock, bg_world
from ulm.clock import Clock
from ulm.execute.holds import touches
from ulm.executor import Executor, Limits, Status
from ulm.model import Move, Plan
from ulm.store import Store


def test_rounds_go_on_and_a_second_host_is_relieved_while_a_slow_migration_runs(
        tmp_path: Path) -> None:
    w = bg_world(tmp_path, {"a1": "hA", "a2": "hA", "c1": "hC", "c2": "hC", "d1": "hD"},
                 ("hA", "hB", "hC", "hD"), HOT,
                 {"a1": 2.0, "a2": 1.5, "c1": 0.5, "c2": 1.5, "d1": 0.2})
    w.cluster.slow["a1"] = 60.0  # 512 MiB at 62.5 MiB/s x 60: about 490 s
    for _ in range(4):  # hA is hot: a1 leaves it, slowly
        w.round()
    assert w.cluster.running_jobs() == ["a1"]
    first = w.daemon.executor.holds.moves()
    assert [(m.vm, m.src) for m in first] == [("a1", "hA")]
    held = {"a1", first[0].src, first[0].dst}
    since = w.clock.now()
    w.source.vm_cpu["c1"] = 2.0  # now hC is hot too
    planned: list[Move] = []
    for _ in range(10):
        r = w.round()
        for a in r.plan.actions if r.plan is not None else ():
            vms, hosts = touches(a)
            assert not set(vms + hosts) & held, f"a new plan touches what a1 holds: {a}"
            planned += [a] if isinstance(a, Move) else []
    # Collected and stored all along: a sample of hA for every round.
    assert len({s.ts for s in w.store.host_samples(since) if s.host == "hA"}) >= 10
    # hC was relieved while a1 was still on its way.
    assert [m.vm for m in planned] == ["c1"]
    assert w.cluster.placement["c1"] == planned[0].dst
    assert w.cluster.running_jobs() == ["a1"] and w.cluster.placement["a1"] == "hA"
    # The first plan still runs (its status comes when it ends); the second has ended.
    assert sorted(r.status for r in w.store.plans(limit=100)) == ["applied", "running"]


def test_what_a_running_plan_holds_is_kept_out_of_every_other(tmp_path: Path) -> None:
    w = bg_world(tmp_path, {"a1": "hA", "b1": "hB"}, ("hA", "hB", "hC"), HOT,
                 {"a1": 0.2, "b1": 0.2})
    w.cluster.slow["a1"] = 60.0
    ex = w.daemon.executor
    w.round()  # a collection in the store: nothing to do at this load
    bg = Plan("s", "p", 0.0, (Move("a1", "hA", "hC", "t"),))
    ex.submit(bg, w.store.save_plan(bg, "enforce"))
    w.clock.quiet(ex)
    assert w.cluster.running_jobs() == ["a1"]
    # A plan that touches the held VM or a held host is cut before it is saved ...
    plan = Plan("s", "p", 0.0, (Move("a1", "hA", "hB", "t"), Move("b1", "hB", "hC", "t"),
                               Move("b1", "hB", "hA", "t")))
    admitted = ex.holds.admit(plan)
    assert admitted.actions == () and len(admitted.problems) == 3
    # ... and refused by the executor whoever hands it over (the API applies synchronously).
    api = Plan("s", "p", 0.0, (Move("b1", "hB", "hC", "t"),))
    res = ex.execute(api, w.store.save_plan(api, "enforce"))
    assert [(o.status, o.cause.value) for o in res.outcomes] == [(Status.SKIPPED, "held")]
    assert w.cluster.placement["b1"] == "hB"
    # The held VM is in flight in the next snapshot (both hosts count it; the scheduler
    # keeps it where it is).
    snap = ex.observe(w.store.snapshot(w.clock.now(), 4, 60.0))
    assert snap.host_names[int(snap.vm_migrating_to[snap.vm_index["a1"]])] == "hC"


class _Crashed:
    """The clock of a process that died: its plan thread never wakes again."""

    def __init__(self, inner: Clock, parked: threading.Event) -> None:
        self.inner, self.parked = inner, parked

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        self.parked.set()
        threading.Event().wait()


def test_a_background_plan_cut_short_by_a_crash_is_recovered(tmp_path: Path) -> None:
    """The entry is journalled before the migration starts, from the plan's thread; a
    restarted process adopts the migration and closes it. Recovery in a process whose plan
    still runs leaves that plan alone."""
    clock = SteppedClock(1_000_000.0)
    cluster = LockedCluster(clock, {"a1": "hA"}, {"a1": 512.0})
    cluster.slow["a1"] = 10.0
    url = f"sqlite:///{tmp_path}/ulm.db"
    parked = threading.Event()
    dying = Executor(cluster, _Crashed(clock, parked), Store.open(url, mode="create"),
                     Limits(poll_s=1.0))
    dying.submit(Plan("s", "p", 0.0, (Move("a1", "hA", "hB", "t"),)), "p1")
    assert parked.wait(10)  # started, then "crashed" in its first wait
    assert dying.recover() == []  # its own plan still runs: not an orphan
    store = Store.open(url, mode="write")
    assert [(e.plan_id, e.state) for e in store.open_entries()] == [("p1", "started")]
    restarted = Executor(cluster, clock, store, Limits(poll_s=1.0))
    out = restarted.recover()
    assert [(o.status, o.detail) for o in out] == [(Status.DONE, "completed while ULM was down")]
    assert cluster.placement["a1"] == "hB" and store.open_entries() == []


def test_an_api_apply_runs_in_the_background_and_the_rounds_go_on(tmp_path: Path) -> None:
    """`POST plans/{id}/apply` hands the plan to the executor as a round does: it answers
    with the outcomes when the plan ends, but holds `round_lock` only to hand it over."""
    from ulm.api.bus import EventBus
    from ulm.api.local import DaemonActions

    w = bg_world(tmp_path, {"a1": "hA", "b1": "hB"}, ("hA", "hB", "hC"), HOT,
                 {"a1": 0.2, "b1": 0.2})
    w.cluster.slow["a1"] = 60.0
    w.round()  # a collection in the store: nothing to do at this load
    advised = Plan("s", "p", 0.0, (Move("a1", "hA", "hC", "t"),))
    plan_id = w.store.save_plan(advised, "advise")
    actions = DaemonActions(w.daemon, EventBus(), w.daemon.round_lock)
    answers: list[object] = []
    api = threading.Thread(target=lambda: answers.append(actions.apply_plan(plan_id, [], "op")))
    api.start()
    for _ in range(2000):  # until the API thread has handed the plan over
        if w.daemon.executor.running:
            break
        time.sleep(0.005)
    w.clock.quiet(w.daemon.executor)
    assert w.cluster.running_jobs() == ["a1"]
    since = w.clock.now()
    rounds = 0
    while w.cluster.running_jobs():
        assert w.daemon.round_lock.acquire(timeout=10), "the API apply holds round_lock"
        try:
            r = w.round()
        finally:
            w.daemon.round_lock.release()
        rounds += 1
        assert r.plan is None or not r.plan.actions  # a1 and its hosts are held
        assert rounds < 500
    api.join(20)
    assert not api.is_alive() and rounds >= 10
    assert len({s.ts for s in w.store.host_samples(since) if s.host == "hA"}) >= rounds - 1
    (answer,) = answers
    assert answer.status == "applied" and [o.status for o in answer.outcomes] == ["done"]
    assert w.cluster.placement["a1"] == "hC" and w.store.plan(plan_id).status == "applied"


def test_a_hot_host_is_relieved_onto_a_free_host_not_one_a_migration_holds(
        tmp_path: Path) -> None:
    """The held hosts have room (the lab's case: a small VM in flight), and first-fit would
    pick them: a new plan goes to the free host instead of being cut to nothing."""
    w = bg_world(tmp_path, {"a1": "hA", "c1": "hC", "c2": "hC"}, ("hA", "hB", "hC", "hD"),
                 HOT, {"a1": 0.2, "c1": 0.2, "c2": 0.2})
    w.cluster.slow["a1"] = 60.0
    ex = w.daemon.executor
    w.round()
    bg = Plan("s", "p", 0.0, (Move("a1", "hA", "hB", "t"),))
    ex.submit(bg, w.store.save_plan(bg, "enforce"))
    w.clock.quiet(ex)
    assert w.cluster.running_jobs() == ["a1"]
    w.source.vm_cpu.update(c1=2.0, c2=1.5)  # hC is hot; hA and hB have room but are held
    planned = [a for _ in range(6) for r in [w.round()]
               for a in (r.plan.actions if r.plan is not None else ())]
    assert [(m.vm, m.src, m.dst) for m in planned if isinstance(m, Move)] == [
        ("c1", "hC", "hD")]
    assert w.cluster.running_jobs() == ["a1"]
