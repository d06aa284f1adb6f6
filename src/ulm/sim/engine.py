"""The simulation loop: the daemon's round (snapshot -> `schedule` -> execute) over a trace.

Every 300 s (at 300.1, 600.1, ... as in CloudSim, whose first event comes 0.1 s late) the
engine measures the cluster (requests interpolated from the trace), accounts the interval just
ended, builds a column-wise `Snapshot`, asks `ulm.scheduler.schedule` for a plan and starts its
migrations on the `ArrayCluster`. Migrations complete a few seconds later (RAM / bandwidth on
the `SimClock`); each completion is an instant of its own for energy and SLA, as in CloudSim.

Modes: `compat` reproduces CloudSim 3.0.3 (VMs whose demand is exactly 0 are deleted, RAM does
not limit placement, the scheduler's `compat = "cloudsim"` quirks); `honest` keeps every VM and
reserves each VM's nominal RAM on its host.

Power: by default a host without VMs is off, free and instantly back (CloudSim's model). With
`boot_s` set (honest mode), hosts have real power states (`ulm.sim.hoststates`): an empty host
draws idle power until the policy powers it off, and a power-on costs `boot_s` at full power
before the host can take VMs. `start` places the trace in time (epoch seconds of its first
sample), so that a policy's calendar — office hours, wake lead time — applies to the right days.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.budget import day_start
from ulm.calendar import Period
from ulm.clock import SimClock
from ulm.model import HostState, Move, PowerCurve, PowerOff, PowerOn
from ulm.policy import Policy
from ulm.scheduler import load_compiled, schedule
from ulm.sim.accounting import entries_of, share
from ulm.sim.cluster import ArrayCluster
from ulm.sim.hoststates import HostStates
from ulm.sim.hosttypes import vm_mips, vm_ram
from ulm.sim.initial import Start, place_initial
from ulm.sim.lowerbound import LowerBound
from ulm.sim.metrics import Meter, Totals, record
from ulm.sim.power import PowerTable
from ulm.sim.results import SimConfig as SimConfig  # re-exported: callers import them here
from ulm.sim.results import SimResult as SimResult
from ulm.sim.results import mode_policy as mode_policy
from ulm.sim.traces import INTERVAL_S, Trace
from ulm.snapshot import Snapshot

HISTORY = 30  # samples of history in each snapshot (CloudSim's PowerVm.HISTORY_LENGTH)
OFFSET_S = 0.1  # CloudSim's first scheduling event fires 0.1 s late, and so do all others


class Engine:
    def __init__(self, trace: Trace, policy: Policy, config: SimConfig) -> None:
        self.trace, self.config = trace, config
        self.compat = config.mode == "compat"
        self.policy = mode_policy(policy, config.mode)
        hosts = config.hosts
        self.hosts = hosts
        self.power = PowerTable(hosts.curves)
        n = trace.n_vms
        self.mips, self.ram = self.vm_sizes(n)
        # The 289th point copies the 288th (CloudSim's UtilizationModelPlanetLabInMemory).
        # time-major: a round reads one sample of every VM, a contiguous row
        self.util_t = np.ascontiguousarray(
            np.concatenate([trace.cpu, trace.cpu[:, -1:]], axis=1).T)
        self.mem = (None if trace.mem is None
                    else np.concatenate([trace.mem, trace.mem[:, -1:]], axis=1))
        self.host_mips, self.core_mips = hosts.mips, hosts.core_mips
        self.host_ram = hosts.ram
        self.clock = SimClock(0.0)
        self.names = np.array(trace.vm_names, dtype=object)
        self.host_names = hosts.names()
        start = self.initial_hosts()
        bw = np.array([t.bw_mbit for t in hosts.types])[hosts.kind] / 2 / 8  # MB/s
        self.cluster = ArrayCluster(self.clock, trace.vm_names, self.host_names, start,
                                    self.ram, bw)
        self.meter = Meter(self.power, hosts.kind, policy.simulation.energy, Totals())
        self.hist = np.full((n, trace.samples + 1), np.nan)
        self._vm_index = {name: i for i, name in enumerate(trace.vm_names)}
        self._host_index = {name: i for i, name in enumerate(self.host_names)}
        self._host_state = (HostState.ON,) * hosts.n
        self._host_power = tuple(c.name for c in hosts.curves)
        self._host_power_col = tuple(self._host_power[k] for k in hosts.kind)
        self._curves = {c.name: c for c in hosts.curves}
        self._cores = hosts.cores
        self.demand_series: list[tuple[float, float, float]] = []  # (time, MIPS, RAM MB)
        self.start = config.start
        self.end_s = trace.samples * INTERVAL_S  # CloudSim's SIMULATION_LIMIT for one day
        self.states = (HostStates(hosts.n, config.boot_s) if config.boot_s is not None
                       else None)
        self._pending_power: list[PowerOff | PowerOn] = []
        self.night = {"active_s": 0.0, "violation_s": 0.0}  # outside office hours
        self.power_actions = 0
        self.peak_ram = 0.0  # the highest share of a host's RAM reserved by VMs, any instant
        self._order_named: I64 | None = None
        self._day, self.migrations_today = float("-inf"), 0  # the daily budget's count
        # per VM (trace order): its moves today (the anti-thrash gates), and the moves of a
        # VM that had moved earlier the same day (what those gates are meant to cut)
        self.vm_moves_today = np.zeros(trace.n_vms, np.int64)
        self.repeat_moves = 0
        self._names_ordered: tuple[str, ...] = ()

    def vm_sizes(self, n: int) -> tuple[F64, F64]:  # a replay (ulm.replay) gives real ones
        return vm_mips(n), vm_ram(n)

    def initial_hosts(self) -> I64:  # a replay starts the VMs where they really ran
        return place_initial(self.hosts, self.power, self.mips, self.ram, self._start_rule())

    def _start_rule(self) -> Start:
        # Honest mode: every policy starts from the same cluster, VMs created first fit in
        # list order at their nominal size; compat: CloudSim's own creation per policy.
        if not self.compat or self.policy.placement.strategy == "first-fit":
            return Start("first-fit", from_idle=False)
        return Start("pabfd", from_idle=True)

    # -- measuring -----------------------------------------------------------------------------

    def requests(self, t: float) -> F64:
        """MIPS requested by every VM at `t`: the trace interpolated between its samples."""
        k = int(t // INTERVAL_S)
        frac = t - k * INTERVAL_S
        u0, u1 = self.util_t[k], self.util_t[min(k + 1, self.util_t.shape[0] - 1)]
        u = u0 + (u1 - u0) / INTERVAL_S * frac
        return np.asarray(u * self.mips * self.cluster.alive)

    def _share(self, req: F64) -> Any:
        ent = self.cluster.entries()
        return ent, share(ent, req, self.host_mips, self.core_mips)

    def _record(self, t: float, req: F64) -> None:
        ent, sh = self._share(req)
        # RAM reserved per host, incoming migrations included (they hold it on both ends)
        ram = np.bincount(ent.host, weights=self.ram[ent.vm], minlength=self.hosts.n)
        self.peak_ram = max(self.peak_ram, float((ram / self.host_ram).max(initial=0.0)))
        rule = "used" if self.compat else "vms"
        on = self.states.on if self.states is not None else None
        self.meter.set(record(t, ent, sh, self.host_mips, rule, on))
        if self.mem is not None and self.meter.last is not None:
            self._mem_over = self._memory_overloaded(t)

    def _memory_overloaded(self, t: float) -> I64:
        assert self.mem is not None
        k = int(t // INTERVAL_S)
        use = self.mem[:, k] * self.ram * self.cluster.alive
        c = self.cluster
        on = c.vm_host >= 0
        used = np.bincount(c.vm_host[on], weights=use[on], minlength=self.hosts.n)
        return np.asarray(used > self.host_ram)

    def _advance(self, t: float, req: F64) -> None:
        _, sh = self._share(req)
        last = self.meter.last
        if self.mem is not None and last is not None:
            self.meter.totals.mem_overload_s += float(
                (self._mem_over & last.host_active).sum()) * (t - last.time)
        if self.states is not None and last is not None:
            self.states.account(last.time, t, self.hosts.kind, self.power)
        tot = self.meter.totals
        before = (tot.active_s, tot.violation_s)
        self.meter.advance(sh.host_used / self.host_mips, t)
        if last is not None and self._is_night(last.time):
            self.night["active_s"] += tot.active_s - before[0]
            self.night["violation_s"] += tot.violation_s - before[1]

    def _is_night(self, t: float) -> bool:
        calendar = self.policy.calendar
        return calendar is not None and calendar.period(self.start + t) is not Period.OFFICE

    # -- one round ----------------------------------------------------------------------------

    def round(self, k: int, t: float) -> None:
        self.clock.advance_to(t)
        req = self.requests(t)
        self._advance(t, req)
        self.hist[:, k] = req
        c = self.cluster
        # CloudSim deletes a VM whose request is exactly 0; in the last round no interval
        # follows, so the deletion is unobservable and skipped (the survivors are those of
        # the day's last interval: 521 on 20110303, as in CloudSim issue #64).
        if self.compat and k < self.trace.samples - 1:
            gone = np.flatnonzero(c.alive & (req == 0))
            if len(gone):
                c.remove(gone)
        if self.states is not None:
            self._pending_power = []  # a new plan decides afresh
            self.states.tick(t, self._vms_per_host())
        alive = c.alive
        self.demand_series.append((t, float(req[alive].sum()),
                                   float(self.ram[alive].sum()) if not self.compat else 0.0))
        day = day_start(self.policy, self.start + t)
        if day != self._day:  # midnight in the policy's timezone: a new day's budget
            self._day, self.migrations_today = day, 0
            self.vm_moves_today[:] = 0
        snap = self.snapshot(k, t, req)
        plan = schedule(snap, self.policy, self.start + t, explain=False)
        moves = plan.moves
        self.execute(moves)
        self.migrations_today += len(moves)
        self.power_actions += len(plan.actions) - len(moves)
        if self.states is not None:
            self._pending_power = [a for a in plan.actions if isinstance(a, PowerOff | PowerOn)]
            self._power_ready(t)
        self._record(t, req)

    def execute(self, moves: tuple[Move, ...]) -> None:
        if not moves:
            return
        vms = np.array([self._vm_index[m.vm] for m in moves], np.int64)
        dsts = np.array([self._host_index[m.dst] for m in moves], np.int64)
        self.cluster.start_batch(vms, dsts)
        self.repeat_moves += int(np.count_nonzero(self.vm_moves_today[vms]))
        np.add.at(self.vm_moves_today, vms, 1)

    def completions(self, until: float) -> None:
        """Migrations that end before `until`: each end is an instant of its own."""
        c = self.cluster
        while (end := c.next_completion()) is not None and end < until and end <= self.end_s:
            self.clock.advance_to(end)
            req = self.requests(end)
            self._advance(end, req)
            c.complete_until(end)
            self._power_ready(end)
            self._record(end, req)

    # -- power states (boot_s set) -------------------------------------------------------------

    def _vms_per_host(self) -> I64:
        c = self.cluster
        placed = c.alive & (c.vm_host >= 0)
        return np.bincount(c.vm_host[placed], minlength=self.hosts.n)

    def _busy(self) -> B:
        """Hosts a migration in flight touches: neither end may be powered off."""
        c = self.cluster
        busy = np.zeros(self.hosts.n, np.bool_)
        busy[c.in_dst] = True
        busy[c.vm_host[c.in_vm]] = True
        return busy

    def _power_ready(self, t: float) -> None:
        """The plan's power actions on hosts no migration touches: wake-ups at once (a host
        that is off takes part in none), power-offs once the migrations emptying their hosts
        have completed (the executor's power-off stage follows the moves), emptiness
        re-checked."""
        if self.states is None or not self._pending_power:
            return
        busy = self._busy()
        ready = [a for a in self._pending_power if not busy[self._host_index[a.host]]]
        if ready:
            self._pending_power = [a for a in self._pending_power if a not in ready]
            self.states.apply(ready, self._host_index, t, self._vms_per_host(), busy)

    def snapshot(self, k: int, t: float, req: F64) -> Snapshot:
        c = self.cluster
        order = c.list_order()
        lo = max(k + 1 - HISTORY, 0)
        hist = self.hist[order, lo:k + 1]
        if hist.shape[1] < HISTORY:
            hist = np.concatenate([np.full((len(order), HISTORY - hist.shape[1]), np.nan), hist],
                                  axis=1)
        ram = self.ram[order]
        if self.compat:
            mem_use = np.zeros(len(order))
        elif self.mem is not None:
            mem_use = self.mem[order, int(t // INTERVAL_S)] * ram
        else:
            mem_use = ram
        st = self.states
        power: dict[str, Any] = {} if st is None else {
            "host_empty_since": st.empty_since + self.start,
            "host_on_since": st.on_since + self.start, "host_cycles": st.cycles(t)}
        return Snapshot(
            taken_at=self.start + t,
            host_names=self.host_names,
            host_cpu=self.host_mips,
            host_mem=self.host_ram,
            host_cores=self._cores,
            host_state=self._host_state if st is None else st.host_state(),
            host_power=self._host_power_col,
            power_curves=self._curves,
            vm_names=self._names_in(order),
            vm_host=c.vm_host[order],
            vm_cpu_size=self.mips[order],
            vm_mem_size=ram,
            vm_cpu=req[order],
            vm_mem=mem_use,
            vm_history=hist,
            vm_last_moved=c.last_moved[order] + self.start,
            name=f"sim:{self.trace.name}:{k}",
            migrations_today=self.migrations_today,
            vm_moves_today=self.vm_moves_today[order],
            vm_last_move_s=c.last_took[order],
            **power,
        )

    def _names_in(self, order: I64) -> tuple[str, ...]:
        """VM names in the cluster's list order; the order changes only when a migration ends
        or a VM stops (`ArrayCluster.list_order` returns the same array until then)."""
        if order is not self._order_named:
            self._order_named, self._names_ordered = order, tuple(self.names[order].tolist())
        return self._names_ordered

    # -- the day ------------------------------------------------------------------------------

    def run(self) -> SimResult:
        load_compiled_sim()  # once per process, like an import: not part of the run's time
        wall = time.perf_counter()
        n_rounds = self.trace.samples - 1  # events at 300.1 ... 86100.1
        t = OFFSET_S
        for k in range(1, n_rounds + 1):
            t += INTERVAL_S  # accumulated like CloudSim's event times
            self.round(k, t)
            self.completions(t + INTERVAL_S)
            if self.config.progress is not None:
                self.config.progress(k, n_rounds)
        return self.result(time.perf_counter() - wall)

    def lower_bound_kwh(self) -> float:
        lb = LowerBound(self.hosts, self.power)
        series = np.array(self.demand_series)
        if len(series) < 2:
            return 0.0
        watts = lb.series(series[:, 1], series[:, 2])
        if self.policy.simulation.energy == "max-power":
            pass  # the bound is about hosting the demand, whatever the policy charges
        dt = np.diff(series[:, 0])
        return float(((watts[:-1] + watts[1:]) * 0.5 * dt).sum() / 3.6e6)

    def result(self, wall_s: float) -> SimResult:
        tot = self.meter.totals
        extra: dict[str, Any] = {"peak_host_ram": self.peak_ram,
                                 "repeat_moves": self.repeat_moves}
        energy_j, shutdowns = tot.energy_j, tot.shutdowns
        st = self.states
        if st is not None:
            energy_j += st.boot_j
            shutdowns = st.power_offs
            always_on = (tot.energy_j + st.idle_if_on_j) / 3.6e6
            extra.update({
                "boot_s": st.boot_s, "always_on_kwh": always_on,
                "saved_kwh": always_on - energy_j / 3.6e6, "boot_kwh": st.boot_j / 3.6e6,
                "host_hours_off": st.off_s / 3600.0, "power_offs": st.power_offs,
                "wake_ups": st.wake_ups, "refused_power_offs": st.refused,
                "power_events": [(self.start + t, self.host_names[h], what)
                                 for t, h, what in st.events]})
        if self.policy.calendar is not None:
            n = self.night
            extra["night_slatah"] = (n["violation_s"] / n["active_s"] if n["active_s"]
                                     else 0.0)
        return SimResult(
            trace=self.trace.name, policy=self.policy.name, mode=self.config.mode,
            vms=self.trace.n_vms, vms_end=int(self.cluster.alive.sum()),
            energy_kwh=energy_j / 3.6e6, migrations=self.cluster.migrations,
            slatah=tot.slatah(), pdm=tot.pdm(), host_shutdowns=shutdowns,
            wall_s=wall_s, lower_bound_kwh=self.lower_bound_kwh(),
            mem_overload=tot.mem_overload_s / tot.active_s if tot.active_s else 0.0,
            extra=extra,
        )


def load_compiled_sim() -> None:
    """Loads (the first time after an install: compiles) the simulator's compiled code and
    the scheduler's (`ulm.scheduler.load_compiled`)."""
    load_compiled()
    share(entries_of(np.zeros(1, np.int64), np.ones(1, np.bool_), np.zeros(1, np.int64),
                     np.zeros(0, np.int64), np.zeros(0, np.int64)),
          np.ones(1), np.ones(1), np.ones(1))
    PowerTable((PowerCurve("flat", (1.0, 1.0)),)).watts(np.zeros(1, np.int64), np.zeros(1))


def simulate(trace: Trace, policy: Policy, config: SimConfig | None = None) -> SimResult:
    return Engine(trace, policy, config or SimConfig()).run()
