"""Host power states in the simulator: on, off, booting — what power saving really costs.

CloudSim's model (and the simulator's default) treats a host without VMs as off at once, free
of charge, and instantly back. With `SimConfig.boot_s` set, hosts instead stay on, drawing idle
power, until the policy powers them off; a power-on takes `boot_s` at the host's maximum power
before the host can take VMs. This is the daemon's own bookkeeping (empty since, on since,
power cycles in the last 24 h) fed into the same `schedule`, so a week's simulated saving
includes the cost of every wake-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.model import HostState, PowerOff, PowerOn
from ulm.sim.power import PowerTable

DAY_S = 86400.0
_CODES = (HostState.ON, HostState.OFF, HostState.WAKING)
ON, OFF, WAKING = 0, 1, 2


@dataclass(eq=False)
class HostStates:
    n: int
    boot_s: float
    state: I64 = field(init=False)
    ready_at: F64 = field(init=False)  # WAKING: when the boot completes
    empty_since: F64 = field(init=False)  # NaN while the host runs VMs
    on_since: F64 = field(init=False)
    offs: list[list[float]] = field(init=False)  # power-off times per host (24 h window)
    power_offs: int = 0
    wake_ups: int = 0
    refused: int = 0  # power-offs refused because the host was not empty (never expected)
    boot_j: float = 0.0
    off_s: float = 0.0  # host-seconds off or booting
    idle_if_on_j: float = 0.0  # what the hosts off or booting would have drawn, idle and on
    events: list[tuple[float, int, str]] = field(default_factory=list)  # (time, host, off|on)

    def __post_init__(self) -> None:
        self.state = np.zeros(self.n, np.int64)
        self.ready_at = np.full(self.n, np.nan)
        self.empty_since = np.full(self.n, np.nan)
        self.on_since = np.full(self.n, np.nan)
        self.offs = [[] for _ in range(self.n)]

    # -- what the snapshot shows ---------------------------------------------------------------

    def host_state(self) -> tuple[HostState, ...]:
        return tuple(_CODES[s] for s in self.state.tolist())

    def cycles(self, now: float) -> I64:
        return np.array([sum(1 for t in times if now - t < DAY_S) for times in self.offs],
                        np.int64)

    @property
    def on(self) -> B:
        return np.asarray(self.state == ON)

    # -- time passing ----------------------------------------------------------------------------

    def tick(self, now: float, vms_per_host: I64) -> None:
        """Boots that completed by `now`; hosts that just became empty (or busy again)."""
        done = (self.state == WAKING) & (self.ready_at <= now)
        if done.any():
            self.state[done] = ON
            self.on_since[done] = self.ready_at[done]
            self.ready_at[done] = np.nan
        busy = vms_per_host > 0
        self.empty_since[busy] = np.nan
        newly = ~busy & (self.state == ON) & np.isnan(self.empty_since)
        self.empty_since[newly] = now

    def account(self, t0: float, t1: float, kind: I64, power: PowerTable) -> None:
        """Energy of the hosts that are not on, over [t0, t1].

        A boot draws full power until `ready_at`; from then until the next instant the host is
        on but not yet in the books as such: it is charged idle power here (boot energy).
        """
        dt = t1 - t0
        if dt <= 0:
            return
        waking = self.state == WAKING
        off = self.state == OFF
        boot = np.clip(self.ready_at[waking] - t0, 0.0, dt)
        k = kind[waking]
        self.boot_j += float((power.max_watts(k) * boot + power.idle_watts(k) * (dt - boot))
                             .sum())
        dark_s = float(off.sum()) * dt + float(boot.sum())
        self.off_s += dark_s
        # always on, these hosts would have idled for the whole interval
        self.idle_if_on_j += float(power.idle_watts(kind[off | waking]).sum()) * dt

    # -- the plan's power actions -----------------------------------------------------------------

    def apply(self, actions: Sequence[PowerOff | PowerOn], index: dict[str, int], now: float,
              vms_per_host: I64, busy: B) -> None:
        """Powers hosts off (re-checked empty right before, as the executor does) and on."""
        for action in actions:
            h = index[action.host]
            if isinstance(action, PowerOff):
                if vms_per_host[h] > 0 or busy[h] or self.state[h] != ON:
                    self.refused += 1
                    continue
                self.state[h] = OFF
                self.empty_since[h] = np.nan
                self.offs[h] = [t for t in self.offs[h] if now - t < DAY_S] + [now]
                self.power_offs += 1
                self.events.append((now, h, "off"))
            elif self.state[h] == OFF:
                self.state[h] = WAKING
                self.ready_at[h] = now + self.boot_s
                self.wake_ups += 1
                self.events.append((now, h, "on"))
