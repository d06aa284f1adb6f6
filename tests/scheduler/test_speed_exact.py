"""The speed-ups of issue 14 §2 decide what the code before them decided: LR-MC's compiled
fit (numpy's choice whenever it decides), and the consolidation loop's shortcuts (the same
events and moves as the plain loop)."""

from __future__ import annotations

import numpy as np

from ulm.model import HostState
from ulm.policy import resolve_policy
from ulm.scheduler import emptying, loops, scan, working
from ulm.scheduler.correlation import decided, r2_each
from ulm.scheduler.filters import N_REASONS
from ulm.scheduler.placement import params
from ulm.scheduler.selection import _mc_lstsq
from ulm.scheduler.state import State
from ulm.sim.results import mode_policy
from ulm.snapshot import Snapshot


def _lstsq_r2(data: np.ndarray, k: int) -> float:
    y = data[k]
    x = np.column_stack([np.ones(data.shape[1]), np.delete(data, k, axis=0).T])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    total = ((y - y.mean()) ** 2).sum()
    return float(1.0 - (resid @ resid) / total) if total > 0 else 0.0


def test_compiled_fit_within_its_bound_and_numpys_choice() -> None:
    rng = np.random.default_rng(5)
    taken = 0
    for trial in range(400):
        k = int(rng.integers(2, 12))
        base = rng.random(30)
        # MIPS-sized histories, some strongly correlated with each other (the hard case)
        data = (rng.random((k, 30)) * 0.3 + np.outer(rng.random(k), base)) * 2500.0
        if trial % 5 == 0:
            data[1] = data[0] * 0.5 + 1e-9 * rng.random(30)  # nearly collinear
        rows = np.arange(k, dtype=np.int64)
        r2, err = r2_each(data, rows)
        ref = np.array([_lstsq_r2(data, j) for j in range(k)])
        fin = np.isfinite(err)
        assert (np.abs(r2 - ref)[fin] <= err[fin]).all()
        pick = decided(r2, err)
        if pick >= 0:
            taken += 1
            vms = np.arange(k, dtype=np.int64) + 100
            assert vms[pick] == _mc_lstsq(data, vms, vms.tolist())
    assert taken > 200  # it decides most hosts


def test_two_vms_are_left_to_numpy() -> None:
    # R^2 of each of two VMs on the other is the same in exact arithmetic: a tie only
    # numpy's rounding breaks, so the compiled fit must not decide it
    rng = np.random.default_rng(1)
    data = rng.random((2, 30)) * 1000.0
    assert decided(*r2_each(data, np.arange(2, dtype=np.int64))) == -1
    const = np.vstack([np.full(30, 500.0), rng.random(30)])  # a flat history: no variance
    assert not np.isfinite(r2_each(const, np.arange(2, dtype=np.int64))[1][0])


def _tight(seed: int, n_hosts: int = 60) -> Snapshot:
    """Hosts about full of RAM (honest mode reserves it): most drains cannot fit."""
    rng = np.random.default_rng(seed)
    n_vms = n_hosts * 4
    size = rng.choice([2500.0, 2000.0, 1000.0, 500.0], n_vms)
    hist = np.clip(rng.normal(0.2, 0.1, (n_vms, 30)), 0, 1) * size[:, None]
    hosts = np.repeat(np.arange(n_hosts), 4)
    hosts[rng.random(n_vms) < 0.1] = rng.integers(0, n_hosts)
    return Snapshot(
        taken_at=1e6, host_names=tuple(f"h{i}" for i in range(n_hosts)),
        host_cpu=np.where(np.arange(n_hosts) % 2, 3720.0, 5320.0),
        host_mem=np.full(n_hosts, 4096.0 if seed % 2 else 8192.0),
        host_cores=np.full(n_hosts, 4), host_state=(HostState.ON,) * n_hosts,
        vm_names=tuple(f"v{i}" for i in range(n_vms)), vm_host=hosts, vm_cpu_size=size,
        vm_mem_size=rng.choice([613.0, 870.0, 1740.0], n_vms), vm_cpu=hist[:, -1].copy(),
        vm_mem=np.full(n_vms, 256.0), vm_history=hist)


def _plain_loop(st: State, p: np.ndarray, tried: np.ndarray, excluded: np.ndarray,
                headroom: float, underload: float) -> tuple[list[tuple[int, int]], list[int]]:
    """The consolidation loop as it was, in Python over `loops.drain`: every candidate
    picked by a full pass, the headroom summed afresh, every drain tried."""
    h_on, h_num = st.H[0], st.H[1]
    h_cur, h_count = st.S[0], st.S[3]
    blocked = np.zeros(len(h_cur), np.bool_)
    events, moves = [], []
    while True:
        host, best = -1, np.inf
        for h in range(len(h_cur)):
            util = h_cur[h] / h_num[0, h]
            if (not tried[h] and h_count[h] > 0 and util < underload and h_on[h]
                    and not blocked[h] and util < best):
                host, best = h, util
        if host < 0:
            return events, moves
        tried[host] = excluded[host] = True
        cap = sum(float(h_num[0, h]) for h in range(len(h_cur))
                  if h_on[h] and h_count[h] > 0 and h != host)
        if not h_cur.sum() <= (1.0 - headroom) * cap:
            events.append((host, loops.NO_HEADROOM))
            continue
        what, vms, dst, *_ = loops.drain(host, p, excluded, st.V, st.H, st.S, st.fixed_mask,
                                         1 << 62, 3)
        events.append((host, int(what)))
        if what == loops.DRAINED:
            blocked[dst] = True
            moves += [*vms.tolist(), *dst.tolist()]


def test_consolidation_shortcuts_change_nothing() -> None:
    failed = 0
    for seed in range(6):
        snap = _tight(seed)
        pol = mode_policy(resolve_policy("lr-mmt-1.2"), "honest")
        headroom = 0.0 if seed < 3 else 0.3
        pol = pol.model_copy(update={"consolidation": pol.consolidation.model_copy(
            update={"headroom": headroom, "underload_threshold": 0.9})})
        runs = []
        for compiled in (True, False):
            st = State.of(snap, pol, snap.taken_at)
            p = params(st, allow_empty=False)
            n = snap.n_hosts
            tried, excluded = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
            if compiled:
                out = emptying.consolidate(p, st.V, st.H, st.S, np.zeros(0, np.int64), tried,
                                           excluded, np.zeros(n, np.bool_), st.fixed_mask,
                                           0.9, -1, 1 << 62, headroom, 3,
                                           emptying.BY_UTILISATION, np.zeros(0, np.int64))
                events = list(zip(out[0].tolist(), out[1].tolist(), strict=True))
                moves = []
                ends = [*out[2].tolist()[1:], len(out[4])]
                for e, (_, what) in enumerate(events):
                    if what == loops.DRAINED:
                        sl = slice(int(out[2][e]), ends[e])
                        moves += [*out[4][sl].tolist(), *out[5][sl].tolist()]
            else:
                events, moves = _plain_loop(st, p, tried, excluded, headroom, 0.9)
            runs.append((events, moves, [a.copy() for a in st.S]))
        (ev_a, mv_a, s_a), (ev_b, mv_b, s_b) = runs
        assert ev_a == ev_b and mv_a == mv_b
        assert all(np.array_equal(x, y) for x, y in zip(s_a, s_b, strict=True))
        failed += sum(w == loops.NO_FIT for _, w in ev_a)
    assert failed > 20  # the shortcuts were exercised


def _cluster(seed: int, n_hosts: int, per_host: int, load: tuple[float, float],
             hot_share: float, off: tuple[int, int], host_mem: float) -> Snapshot:
    """A random cluster: `per_host` VMs a host, CPU histories ~ N(load) of their size, a
    `hot_share` of the hosts with their VMs at full size for the last 3 samples, and the
    hosts h with h % off[0] == off[1] OFF (some still hold VMs)."""
    rng = np.random.default_rng(seed)
    n_vms = n_hosts * per_host
    size = rng.choice([2500.0, 2000.0, 1000.0, 500.0], n_vms)
    hosts = rng.integers(0, n_hosts, n_vms)
    hist = np.clip(rng.normal(load[0], load[1], (n_vms, 30)), 0, 1) * size[:, None]
    hot = rng.random(n_hosts) < hot_share
    hist[hot[hosts], -3:] = size[hot[hosts], None]
    state = [HostState.OFF if h % off[0] == off[1] else HostState.ON for h in range(n_hosts)]
    return Snapshot(
        taken_at=1e6, host_names=tuple(f"h{i}" for i in range(n_hosts)),
        host_cpu=np.where(np.arange(n_hosts) % 2, 3720.0, 5320.0),
        host_mem=np.full(n_hosts, host_mem), host_cores=np.full(n_hosts, 8),
        host_state=tuple(state), vm_names=tuple(f"v{i}" for i in range(n_vms)),
        vm_host=hosts, vm_cpu_size=size, vm_mem_size=rng.choice([613.0, 870.0, 1740.0], n_vms),
        vm_cpu=hist[:, -1].copy(), vm_mem=np.full(n_vms, 512.0), vm_history=hist)


def _hot(seed: int, n_hosts: int = 80) -> Snapshot:
    """About half the hosts hot, every seventh off (two of those still hold VMs)."""
    return _cluster(seed, n_hosts, 6, (0.3, 0.2), 0.5, (7, 3), 16384.0)


def _one_by_one(st: State, vms: np.ndarray, srcs: np.ndarray, p: np.ndarray,
                excluded: np.ndarray, budget: int) -> list[list[object]]:
    """Relief's placement as it was: VM after VM, each with the full scan of every host."""
    rows: list[list[object]] = [[], [], [], [], []]
    left = budget
    for vm, src in zip(vms.tolist(), srcs.tolist(), strict=True):
        if left <= 0:
            working.add(vm, src, st.V, st.S, True)
            rows[0].append(-2)
            rows[1].append([0] * N_REASONS)
            rows[2].append([0, 0, 0])
            rows[3].append([0.0, 0.0, 0.0])
            rows[4].append(0)
            continue
        _, counts, top_h, top_c, k = scan.place_one(vm, p, excluded, st.V, st.H, st.S, 3)
        dst = int(top_h[0]) if k else -1
        if k:
            working.add(vm, dst, st.V, st.S, False)
            st.take_slots(src, dst)
            left -= 1
        else:
            working.add(vm, src, st.V, st.S, True)
        rows[0].append(dst)
        rows[1].append(counts.tolist())
        rows[2].append([*top_h[:k].tolist(), *[0] * (3 - k)])
        rows[3].append([*top_c[:k].tolist(), *[0.0] * (3 - k)])
        rows[4].append(int(k))
    return rows


def _relief_question(snap: Snapshot, pol: object, hot: float
                     ) -> tuple[State, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The state with the VMs of the hosts above `hot` (and of the off ones) taken off, as
    relief's selection leaves it; those hosts excluded."""
    st = State.of(snap, pol, snap.taken_at)  # type: ignore[arg-type]
    p = params(st)
    excluded = np.zeros(snap.n_hosts, np.bool_)
    excluded[np.flatnonzero(st.host_cur / snap.host_cpu > hot)] = True
    vms = np.flatnonzero(excluded[snap.vm_host] | ~snap.host_on[snap.vm_host])
    vms = vms[::2].astype(np.int64)  # hot hosts' VMs, and the off hosts'
    for v in vms.tolist():
        st.remove(v)
    return st, p, excluded, vms, snap.vm_host[vms].astype(np.int64)


def test_relief_scans_only_candidates_and_decides_the_same() -> None:
    """`loops.place_many` scans only the hosts that are on and not excluded
    (`loops.candidates`) and counts the rest: the same destinations, rejections, top hosts
    and working state as placing VM after VM with the full scan of every host."""
    checked = 0
    for seed in range(4):
        snap = _hot(seed)
        for name, mode in (("ulm", "honest"), ("lr-mmt-1.2", "compat"), ("seed", "honest")):
            pol = mode_policy(resolve_policy(name), mode)
            runs = []
            for compiled in (True, False):
                st, p, excluded, vms, srcs = _relief_question(snap, pol, 0.8)
                budget = len(vms) - 3
                if compiled:
                    out = loops.place_many(vms, srcs, p, excluded, st.V, st.H, st.S, budget, 3)
                    rows = [a.tolist() for a in out]
                else:
                    rows = _one_by_one(st, vms, srcs, p, excluded, budget)
                runs.append((rows, [a.copy() for a in st.S]))
            (rows_a, s_a), (rows_b, s_b) = runs
            assert rows_a == rows_b, (seed, name, mode)
            assert all(np.array_equal(x, y) for x, y in zip(s_a, s_b, strict=True))
            checked += sum(d >= 0 for d in rows_a[0])
    assert checked > 50  # VMs were placed, not only refused


def _crowded(seed: int, n_hosts: int = 120) -> Snapshot:
    """Most hosts hot and the rest nearly full: most of relief's VMs fit nowhere, a few do
    (each placement changes a candidate host), in a few memory sizes; every ninth host off."""
    return _cluster(seed, n_hosts, 8, (0.45, 0.25), 0.6, (9, 4),
                    8192.0 if seed % 2 else 16384.0)


def test_a_vm_proven_to_fit_nowhere_gets_the_counts_of_its_full_scan() -> None:
    """Relief's shortcut (`nowhere`): VMs that take their counts from two earlier VMs' scans
    instead of scanning get the same destinations (none), counts and top hosts, and leave the
    same working state, as the full scan of every host for every VM; with the CPU cap after
    the move below the overcommit (ulm) and above it, the threshold detector (thr-mmt),
    migration slots, memory not reserved. The shortcut must have been taken, and the scan run
    for others."""
    taken, scanned = 0, 0
    for seed in range(4):
        snap = _crowded(seed)
        for name, part, change in (("ulm", "gates", {}), ("thr-mmt-0.8", "gates", {}),
                                   ("ulm", "gates", {"max_concurrent_per_host": 2}),
                                   ("ulm", "placement", {"cpu_overcommit": 0.75}),
                                   ("ulm", "placement", {"respect_memory": False})):
            pol = mode_policy(resolve_policy(name), "honest")
            pol = pol.model_copy(update={part: getattr(pol, part).model_copy(update=change)})
            mode, slots = "honest", change
            runs = []
            for compiled in (True, False):
                st, p, excluded, vms, srcs = _relief_question(snap, pol, 0.9)
                budget = len(vms) - 5
                if compiled:
                    k, top = len(vms), 3
                    out = (np.full(k, -3, np.int64), np.zeros((k, N_REASONS), np.int64),
                           np.zeros((k, top), np.int64), np.zeros((k, top)),
                           np.zeros(k, np.int64))
                    hits = np.zeros(1, np.int64)
                    loops._place_seq(vms, srcs, p, excluded, st.V, st.H, st.S, budget, False,
                                     *out, hits)
                    rows = [a.tolist() for a in out]
                    taken += int(hits[0])
                    scanned += sum(d != -2 for d in rows[0]) - int(hits[0])
                    assert hits[0] > 0, (seed, name, mode, slots)
                else:
                    rows = _one_by_one(st, vms, srcs, p, excluded, budget)
                runs.append((rows, [a.copy() for a in st.S]))
            (rows_a, s_a), (rows_b, s_b) = runs
            assert rows_a == rows_b, (seed, name, mode, slots)
            assert all(np.array_equal(x, y) for x, y in zip(s_a, s_b, strict=True))
            assert any(d >= 0 for d in rows_a[0])  # placements changed the candidates too
    assert taken > 200 and scanned > 200


def test_a_demand_at_a_hosts_cpu_limit_to_the_last_bit_is_compared_as_the_scan_does() -> None:
    """VMs whose demand is the roomiest candidate host's "CPU full" threshold tau itself, or
    one unit in the last place either side: the sorted taus cannot tell those apart, the
    record must compare that host exactly (`nowhere._over`) and count it as the scan does."""
    taken = 0
    for seed in range(4):
        snap = _crowded(seed)
        pol = mode_policy(resolve_policy("ulm"), "honest")
        runs = []
        for compiled in (True, False):
            st, p, excluded, vms, srcs = _relief_question(snap, pol, 0.9)
            hosts = np.flatnonzero(~excluded & snap.host_on)
            tau = (p[scan.P_CPU_OC] + p[scan.P_TOLERANCE]) * snap.host_cpu[hosts] \
                - st.S[0][hosts]
            top = float(tau.max())  # above every other host's: each VM fits nowhere
            at = (np.nextafter(top, -np.inf), top, np.nextafter(top, np.inf))
            for j, vm in enumerate(vms.tolist()):
                st.V[0][vm, scan.DEMAND] = at[j % 3]
            if compiled:
                k = len(vms)
                out = (np.full(k, -3, np.int64), np.zeros((k, N_REASONS), np.int64),
                       np.zeros((k, 3), np.int64), np.zeros((k, 3)), np.zeros(k, np.int64))
                hits = np.zeros(1, np.int64)
                loops._place_seq(vms, srcs, p, excluded, st.V, st.H, st.S, k, False, *out,
                                 hits)
                rows = [a.tolist() for a in out]
                taken += int(hits[0])
            else:
                rows = _one_by_one(st, vms, srcs, p, excluded, len(vms))
            runs.append(rows)
        assert runs[0] == runs[1], seed
    assert taken > 100
