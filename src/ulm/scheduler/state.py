"""The scheduler's working state for one call of `schedule`.

`schedule` is a pure function: this state is created from the snapshot at the start of the call
and never escapes it. It is mutable on purpose — a move updates a few rows of the per-host sums
in O(W) instead of copying 50,000-element columns — which is what lets a 5,000-host cluster be
planned in seconds. `ulm.snapshot.View` is the immutable equivalent for callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.model import HostState, PowerCurve
from ulm.policy import Demand, Policy
from ulm.scheduler import gates, groups, masks, scan, tally, working
from ulm.scheduler.detectors import lr_lines
from ulm.scheduler.limits import tolerance
from ulm.snapshot import Snapshot

PINNED_LABEL = gates.PINNED_LABEL
GROUP_LABEL = groups.ANTI_LABEL


@dataclass(frozen=True, slots=True)
class VmLists:
    ram: list[float]  # memory size (MiB)
    demand: list[float]  # CPU each VM needs at its destination


@dataclass(eq=False)
class State:
    snap: Snapshot
    policy: Policy
    now: float
    vm_cpu: F64  # current CPU demand per VM (units): what the detectors see
    demand: F64  # CPU each VM needs at its destination (units): what placement reserves
    mem: F64  # memory each VM needs at its destination (MiB); 0 where RAM does not limit
    vm_hist: F64  # V x W demand history (units), 0 where no sample
    vm_host: I64  # working placement
    host_cur: F64  # current CPU used per host (units), incl. measured non-VM overhead
    host_hist: F64  # H x W used history (units)
    host_mem: F64  # memory reserved per host (MiB)
    #: memory in use per host (MiB), the VMs' `vm_mem` in the working placement: what memory
    #: pressure is judged on, by the detector and by placement alike
    host_mem_use: F64
    host_count: I64  # VMs per host
    host_busy: I64  # migrations touching the host (in flight + planned)
    fixed: list[str]  # per VM: why ULM may not move it ("" = movable)
    fixed_mask: B  # per VM: fixed[v] != ""
    #: per VM: held even by a drain for maintenance (`gates`: not the cool-down, the daily
    #: per-VM limit or `pin_critical`)
    drain_mask: B
    gated: B  # per VM: held only by those gates (an explain row says so)
    prio: I64 | None  # per VM: `ulm.priority` rank (None: no VM has one)
    biggest: F64  # per host: RAM of its biggest VM (MiB), for LR's migration horizon
    maintenance: B  # per host: in maintenance (drained, never a destination)
    vm_len: I64  # per VM: valid history samples (detectors.valid_length)
    host_len: I64  # per host: valid history samples, kept up to date by add/remove
    #: per host: CPU fraction at the start of the round, as allocated (requests capped at one
    #: core, at most the host). CloudSim's decisions that read `host.getUtilizationOfCpu()`
    #: (PABFD's baseline power, which hosts are under-loaded or switched off) see this
    #: figure all round, however the working placement changes.
    start_util: F64
    #: LR only (else empty): the OLS line through each host's / VM's newest 10 samples as
    #: (mean, slope). A prediction is linear in the data, so "host plus VM" is the sum of the
    #: two lines: testing a VM against every candidate host costs a few vector operations
    #: instead of a 10-column regression per host (the simulator tests ~30,000 VMs a day).
    host_lr: F64
    vm_lr: F64
    start_watts: F64  # compat only (else empty): power at `start_util`, PABFD's baseline
    # Inputs of the compiled placement scan (`ulm.scheduler.scan`), fixed for the call:
    scan_params: F64  # the policy's numbers, laid out as `scan.P_*`
    host_num: F64  # 4 x H: CPU capacity, CPU of one core, cores, memory capacity
    vm_num: F64  # V x 7, columns `scan.DEMAND`...: demand, memory to reserve, vCPUs, valid
    # history samples, current CPU, memory size, memory in use
    host_curve: I64  # per host: its row in curve_x/curve_w, -1 = no power model
    curve_x: F64  # power curves' breakpoints (CPU fraction), one row per curve, padded
    curve_w: F64  # ... and the watts there
    curve_len: I64  # breakpoints per curve
    member: B  # V x G: VM in anti-affinity group g (G = 0 without groups)
    together: B  # V x T: VM in keep-together group t (T = 0 without groups; `groups`)
    #: per VM: may not move alone (fixed, or a keep-together mate): relief and balancing
    solo_mask: B
    masks: masks.Masks  # label rules, CPU compatibility, destination back-off (per class)
    #: per host: ON and its own figures are fresh. A host whose figures went stale is
    #: neither a source nor a destination: nothing is decided from figures nobody measured.
    usable: B

    @cached_property
    def lists(self) -> VmLists:
        """Per-VM columns as Python lists, for rules that compare a few VMs at a time."""
        return VmLists(self.snap.vm_mem_size.tolist(), self.demand.tolist())

    @cached_property
    def key_lists(self) -> dict[str, list[float]]:
        """The keyed selection rules' keys as lists, each made on its first use
        (`selection.KEYED`; a VM's key does not change while a plan is made)."""
        return {}

    @cached_property
    def none_fixed(self) -> B:
        """Per VM, all False: "nothing excluded" for the compiled selection's masks."""
        return np.zeros(self.snap.n_vms, np.bool_)

    @property
    def V(self) -> tuple[Any, ...]:
        """Per-VM inputs of the compiled kernels (see `scan`); the arrays, not copies."""
        m = self.masks
        return (self.vm_num, self.vm_lr, self.vm_hist, self.snap.vm_host, self.member,
                m.vm_class, m.deny, m.prefer, self.together)

    @property
    def H(self) -> tuple[Any, ...]:
        return (self.usable, self.host_num, self.host_curve, self.curve_x, self.curve_w,
                self.curve_len, self.start_watts)

    @property
    def S(self) -> tuple[Any, ...]:
        """The working state the kernels change in place."""
        return (self.host_cur, self.host_hist, self.host_mem, self.host_count, self.host_busy,
                self.host_len, self.host_lr, self.biggest, self.vm_host, self.host_mem_use)

    @classmethod
    def of(cls, snap: Snapshot, policy: Policy, now: float) -> State:
        hist = tally.zero_nan(np.ascontiguousarray(snap.vm_history, np.float64))
        placed = snap.vm_host >= 0
        on = snap.vm_host[placed]
        n_h = snap.n_hosts
        cur = np.bincount(on, weights=snap.vm_cpu[placed], minlength=n_h)
        host_hist = tally.sum_rows(hist, snap.vm_host, n_h)
        cur, host_hist = _with_measured(snap, cur, host_hist)
        compat = policy.compat == "cloudsim"
        curves = _power_table(snap.host_power, tuple(snap.power_curves.items()))
        start_util = _start_util(snap)
        demand = snap.vm_cpu if compat else estimate(snap.vm_history, snap.vm_cpu, policy.demand)
        mem = snap.vm_mem_size if policy.placement.respect_memory else np.zeros(snap.n_vms)
        inflight = snap.vm_migrating_to >= 0
        host_mem = np.bincount(on, weights=mem[placed], minlength=n_h)
        busy = np.zeros(n_h, np.int64)
        vm_len = tally.valid_lengths(hist)
        prio = gates.priorities(snap)
        fixed = gates.fixed_reasons(snap, policy, now, prio)
        together = groups.membership(groups.keep_together(snap, policy))
        if inflight.any():
            dst = snap.vm_migrating_to[inflight]
            # A migration in flight holds its resources on both ends until it completes.
            cur = cur + np.bincount(dst, weights=snap.vm_cpu[inflight], minlength=n_h)
            host_mem = host_mem + np.bincount(dst, weights=mem[inflight], minlength=n_h)
            np.add.at(busy, dst, 1)
            np.add.at(busy, snap.vm_host[inflight], 1)
        return cls(
            snap=snap, policy=policy, now=now, vm_cpu=snap.vm_cpu, demand=demand, mem=mem,
            vm_hist=hist, vm_host=snap.vm_host.copy(), host_cur=cur, host_hist=host_hist,
            host_mem=host_mem,
            host_mem_use=np.bincount(on, weights=snap.vm_mem[placed], minlength=n_h),
            host_count=np.bincount(on, minlength=n_h).astype(np.int64),
            host_busy=busy, fixed=fixed.why, fixed_mask=fixed.mask,
            drain_mask=fixed.drain_mask, gated=fixed.gated, prio=prio,
            biggest=tally.biggest(snap.vm_host, snap.vm_mem_size.astype(np.float64), n_h),
            maintenance=_maintenance(snap),
            vm_len=vm_len, host_len=tally.valid_lengths(host_hist),
            start_util=start_util,
            host_lr=_lr_lines(host_hist, policy), vm_lr=_lr_lines(hist, policy),
            # compat only (else empty): PABFD's baseline, fixed for the round
            start_watts=(tally.watts(start_util, *curves) if compat else np.zeros(0)),
            scan_params=_scan_params(policy),
            host_num=np.stack([snap.host_cpu, snap.host_core_cpu, snap.host_cores,
                               snap.host_mem]).astype(np.float64),
            vm_num=np.stack([demand, mem, snap.vm_vcpus, vm_len, snap.vm_cpu, snap.vm_mem_size,
                             snap.vm_mem], axis=1).astype(np.float64),
            member=groups.membership(groups.anti_affinity(snap, policy)),
            together=together, solo_mask=fixed.mask | groups.solo(together),
            masks=masks.build(snap, policy, now),
            host_curve=curves[0], curve_x=curves[1], curve_w=curves[2], curve_len=curves[3],
            usable=snap.host_on & ~snap.host_stale if snap.host_stale.any() else snap.host_on,
        )

    # -- reading ------------------------------------------------------------------------------

    def vms_on(self, host: int) -> I64:
        return np.flatnonzero(self.vm_host == host)

    def utilisation(self) -> F64:
        return self.host_cur / self.snap.host_cpu

    # -- changing -----------------------------------------------------------------------------

    def remove(self, vm: int) -> None:
        """Takes the VM off its working host (selection: 'as if it had left')."""
        working.remove(vm, self.V, self.S)

    def add_back(self, vm: int, host: int) -> None:
        """Undoes `remove`: the VM stays where it was, with its current load."""
        working.add(vm, host, self.V, self.S, True)

    def add(self, vm: int, host: int) -> None:
        """Puts the VM on `host`, charged its *estimated* demand: what the host must absorb."""
        working.add(vm, host, self.V, self.S, False)

    def take_slots(self, src: int, dst: int) -> None:
        """A planned migration holds a slot on both ends."""
        self.host_busy[src] += 1
        self.host_busy[dst] += 1


def estimate(history: F64, current: F64, rule: Demand) -> F64:
    """A VM's CPU demand from its window: never below what it uses now."""
    if rule.estimator == "current" or history.shape[1] == 0:
        return current.copy()
    window = history[:, -rule.window:]
    have = ~np.isnan(window).all(axis=1)
    est = current.copy()
    if not have.any():
        return est
    win = window[have]
    if rule.estimator == "mean":
        value = np.nanmean(win, axis=1)
    elif rule.estimator == "max":
        value = np.nanmax(win, axis=1)
    elif rule.estimator == "percentile":
        value = nan_percentile(win, rule.percentile)
    else:
        value = _ewma(win, rule.alpha)
    est[have] = np.maximum(value, current[have])
    return est


def nan_percentile(win: F64, q: float) -> F64:
    """`np.nanpercentile(win, q, axis=1)` (linear method) for rows with at least one sample.

    numpy falls back to a Python loop per row when NaNs are present (1,500 rows, 288 times a
    simulated day: most of a day's run time); this sorts once and interpolates as numpy does,
    to the last bit (its `_lerp`, including the form it uses past the midpoint).
    """
    data = np.sort(win, axis=1)  # NaNs sort last
    n = (~np.isnan(win)).sum(axis=1)
    at = (n - 1) * (q / 100.0)
    below = np.floor(at)
    lo = np.maximum(below.astype(np.int64), 0)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    rows = np.arange(len(win))
    a, b = data[rows, lo], data[rows, hi]
    t = at - below
    diff = b - a
    return np.asarray(np.where(t >= 0.5, b - diff * (1 - t), a + diff * t))


def _ewma(win: F64, alpha: float) -> F64:
    out = np.full(win.shape[0], np.nan)
    for col in win.T:
        ok = ~np.isnan(col)
        out = np.where(ok & np.isnan(out), col, out)
        out = np.where(ok & ~np.isnan(out), alpha * col + (1 - alpha) * out, out)
    return np.asarray(np.nan_to_num(out))


def _with_measured(snap: Snapshot, cur: F64, hist: F64) -> tuple[F64, F64]:
    """Where a host measures its own CPU, that figure wins: it includes the hypervisor's work.

    Only the non-VM part (measured minus the VMs' sum, never negative) is kept as a fixed
    overhead, so moving a VM still moves its load.
    """
    meas = snap.host_measured
    if snap.host_stale.any():  # a stale figure is not a measurement (the host is not used)
        meas = np.where(snap.host_stale[:, None], np.nan, meas)
    if meas.size == 0 or np.isnan(meas).all():
        return cur, hist
    width = hist.shape[1]
    m = meas[:, -width:] if meas.shape[1] >= width else np.pad(
        meas, ((0, 0), (width - meas.shape[1], 0)), constant_values=np.nan)
    units = m * snap.host_cpu[:, None]
    over_hist = np.where(np.isnan(units), 0.0, np.maximum(units - hist, 0.0))
    now = units[:, -1]
    over_now = np.where(np.isnan(now), 0.0, np.maximum(now - cur, 0.0))
    return cur + over_now, hist + over_hist


def _scan_params(policy: Policy) -> F64:
    """The policy's numbers as the compiled scan reads them (per-question slots left 0)."""
    p = np.zeros(scan.N_PARAMS)
    rule, pl, slots = policy.overload, policy.placement, policy.gates.max_concurrent_per_host
    p[scan.P_COMPAT] = float(policy.compat == "cloudsim")
    p[scan.P_CPU_OC], p[scan.P_MEM_OC] = pl.cpu_overcommit, pl.mem_overcommit
    p[scan.P_CAP_AFTER] = np.nan if pl.max_cpu_after is None else pl.max_cpu_after
    p[scan.P_DETECTOR] = scan.DETECTOR[rule.detector]
    p[scan.P_THRESHOLD], p[scan.P_SAFETY] = rule.threshold, rule.safety
    p[scan.P_MIN_LR], p[scan.P_MIN_IQR] = rule.min_history_lr, rule.min_history_iqr
    p[scan.P_FALLBACK] = rule.fallback_threshold
    p[scan.P_SUSTAIN], p[scan.P_WINDOW] = rule.sustain, rule.window
    p[scan.P_MEM_THRESHOLD] = rule.memory_threshold
    p[scan.P_TOLERANCE] = tolerance(policy)
    p[scan.P_SHOULD] = policy.constraints.should_weight
    p[scan.P_SLOTS] = -1 if slots is None else slots
    p[scan.P_MIB_PER_S], p[scan.P_INTERVAL] = rule.migration_mib_per_s, rule.migration_interval_s
    return p


@lru_cache(maxsize=8)
def _power_table(host_power: tuple[str, ...], curves: tuple[tuple[str, PowerCurve], ...]
                 ) -> tuple[I64, F64, F64, I64]:
    """The power curves as the compiled kernels read them: one padded row of breakpoints
    (CPU fraction, watts) per curve, their lengths, and each host's row (-1: no power model).
    The same for every snapshot of one cluster: built once, not every round (the arrays are
    read-only, shared by every State)."""
    by_name = dict(curves)
    used = [name for name in dict.fromkeys(host_power) if name in by_name]
    row = {name: k for k, name in enumerate(used)}
    width = max((len(by_name[n].watts) for n in used), default=1)
    xs, ws = np.zeros((len(used) or 1, width)), np.zeros((len(used) or 1, width))
    lens = np.zeros(len(used) or 1, np.int64)
    for k, name in enumerate(used):
        watts = by_name[name].watts
        xs[k, :len(watts)] = np.linspace(0.0, 1.0, len(watts))
        ws[k, :len(watts)], lens[k] = watts, len(watts)
    host_curve = np.array([row.get(name, -1) for name in host_power], np.int64)
    table = (host_curve, xs, ws, lens)
    for a in table:
        a.flags.writeable = False
    return table


def _maintenance(snap: Snapshot) -> B:
    if HostState.MAINTENANCE not in snap.host_state:  # the usual case, without a Python loop
        return np.zeros(snap.n_hosts, np.bool_)
    return np.array([s is HostState.MAINTENANCE for s in snap.host_state], np.bool_)


def _start_util(snap: Snapshot) -> F64:
    placed = snap.vm_host >= 0
    hosts = snap.vm_host[placed]
    capped = np.minimum(snap.vm_cpu[placed], snap.host_core_cpu[hosts])
    used = np.bincount(hosts, weights=capped, minlength=snap.n_hosts)
    return np.asarray(np.minimum(used, snap.host_cpu) / snap.host_cpu)


def _lr_lines(hist: F64, policy: Policy) -> F64:
    if policy.overload.detector not in ("lr", "lrr"):
        return np.zeros((0, 2))
    return lr_lines(hist)
