"""The read side: the store's contents as the API's response models (for routes and pages).

Everything comes from the typed `Store` API. `events` merges plans, outcomes, bookings and
power events of the recent plans (the cost is one query per plan searched, bounded by
`PLANS_SEARCHED`) with the events that only exist as events (conditions that began or ended,
migrations and power actions started, leader changes, what the API did): the store's `events`
table, which the event bus writes in bulk (`ulm.api.bus`), and what the bus has not written
yet — so History shows what happened before a restart too.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from ulm import advice, planview
from ulm.api import models as m
from ulm.api.actions import NotFound
from ulm.api.bus import KEPT_ELSEWHERE, row_of, saved_kind
from ulm.api.hostview import cpu_series, host_rows, mem_series, next_windows, power_of
from ulm.budget import day_start
from ulm.calendar import Period
from ulm.energy import account
from ulm.errors import UlmError
from ulm.policy import Policy, resolve_policy
from ulm.problems import Problem, ProblemKind, from_data
from ulm.scheduler.gates import cooldowns, moves_today
from ulm.store.events import EventRow

PLANS_SEARCHED = 200
PAST_PLANS = 50  # the plans whose moves the estimates and the risk "failed recently" read


class Reader:
    def __init__(self, store: Any, cfg: Any, clock: Callable[[], float] = time.time,
                 bus: Any = None) -> None:
        self.store = store
        self.cfg = cfg
        self.clock = clock
        self.bus = bus  # `ulm.api.bus.EventBus`: its recent events join `events`

    def snapshot(self) -> Any:
        c = self.cfg.collect
        return self.store.snapshot(self.clock(), c.window, c.stale_s)

    # -- cluster -------------------------------------------------------------------------------

    def hosts(self) -> list[m.HostOut]:
        snap = self.snapshot()
        on: dict[str, list[str]] = defaultdict(list)
        load: dict[str, float] = defaultdict(float)
        for v in snap.vms:
            on[v.host].append(v.name)
            load[v.host] += v.load.cpu
        active = self.store.bookings(active_only=True)
        booked = {b.host: b.id for b in active}
        windows, power = next_windows(active, self.clock()), power_of(self.cfg)
        return [m.HostOut(
            name=h.name, state=h.state.value, cores=h.cores, cpu_capacity=h.capacity.cpu,
            mem_mib=h.capacity.mem_mib,
            cpu_measured=h.cpu_history[-1] if h.cpu_history else None,
            cpu_vms=load[h.name] / h.capacity.cpu if h.capacity.cpu else 0.0,
            vms=on[h.name], labels=dict(h.labels), power_curve=h.power, on_since=h.on_since,
            empty_since=h.empty_since, power_cycles_24h=h.power_cycles_24h,
            booking=booked.get(h.name), quarantine=why,
            power_driver=power.get(h.name, ("", ""))[0],
            power_address=power.get(h.name, ("", ""))[1], next_maintenance=windows.get(h.name))
            for h, why in zip(snap.hosts, snap.host_quarantine, strict=True)]

    def vms(self, host: str = "") -> list[m.VMOut]:
        snap = self.snapshot()
        return [m.VMOut(name=v.name, host=v.host, vcpus=v.vcpus, cpu=v.load.cpu,
                        mem_mib=v.size.mem_mib, stale=v.stale, managed=v.migratable,
                        last_moved_at=v.last_moved_at, history=list(v.history),
                        state=v.state.value, cooldown_left_s=left)
                for v, left in zip(snap.vms, self._cooling(snap), strict=True)
                if not host or v.host == host]

    def _cooling(self, snap: Any) -> list[float]:
        """Seconds of each VM's cool-down left: the gates' own rule (`cooldowns`: the
        policy in force now, growth with today's moves), 0 for a VM never moved."""
        now = self.clock()
        policy = (self.policy() or Policy()).effective(now)[0]
        wait = cooldowns(snap, policy, moves_today(snap, policy, now))
        with np.errstate(invalid="ignore"):
            left = np.nan_to_num(snap.vm_last_moved + wait - now, nan=0.0)
        return [float(x) for x in np.maximum(left, 0.0)]

    def host_cpu(self, name: str, since: float) -> m.CpuSeries:
        """Bucketed to at most `hostview.MAX_POINTS` points over [since, now]."""
        return cpu_series(name, host_rows(self.store, name, since), since, self.clock())

    def host_mem(self, name: str, since: float) -> m.MemSeries:
        rows = host_rows(self.store, name, since)
        total = {h.name: h.capacity.mem_mib for h in self.snapshot().hosts}.get(name, 0.0)
        return mem_series(name, rows, total, since, self.clock())

    # -- plans ---------------------------------------------------------------------------------

    @staticmethod
    def summary(r: Any, state: str = "READY") -> m.PlanSummary:
        return m.PlanSummary(id=r.id, created_at=r.created_at, mode=r.mode, status=r.status,
                             actions=len(r.plan["actions"]), problems=len(r.plan["problems"]),
                             state=state)

    def _states(self, records: list[Any]) -> list[str]:
        """Each plan's state (`planview.state`): one journal read for all of them."""
        open_ = Counter(e.plan_id for e in self.store.open_entries())
        newest = self.store.plans(1)
        top = newest[0].created_at if newest else 0.0  # a plan of the same second is no newer
        # an advice kept round after round (`ulm.advice`) is as new as the last round that gave it
        return [planview.state(r.status, open_[r.id],
                               top > advice.seen_at(r.plan, r.created_at)).value
                for r in records]

    def plans(self, limit: int) -> list[m.PlanSummary]:
        records = self.store.plans(limit)
        return [self.summary(r, s) for r, s in zip(records, self._states(records), strict=True)]

    def rows(self, body: dict[str, Any], live: bool = False) -> list[m.PlanRowOut]:
        """The plan's actions with their load, estimate and risks (`ulm.planview.rows`), from
        the moves the store measured and the migrations that failed, of the recent plans;
        `live` (a plan that may still be approved): with each VM's state now, too."""
        past: list[tuple[float, float]] = []
        failed: dict[str, float] = {}
        for r in self.store.plans(PAST_PLANS):
            mem = {a.get("vm"): float(a.get("mem_mib") or 0.0) for a in r.plan["actions"]}
            for o in self.store.outcomes(r.id):
                if o["kind"] != "move":
                    continue
                if o["status"] == "done" and mem.get(o["vm"]):
                    past.append((mem[o["vm"]], o["finished_at"] - o["started_at"]))
                elif o["status"] == "failed":
                    failed[o["dst"]] = max(failed.get(o["dst"], 0.0), o["finished_at"])
        ex = self.cfg.executor
        states = {v.name: v.state for v in self.snapshot().vms} if live else None
        return [m.PlanRowOut(**{**asdict(w), "risks": [asdict(f) for f in w.risks]})
                for w in planview.rows(body, ex.bandwidth_mib_s, ex.deadline_s, past, failed,
                                       states)]

    def resolve(self, plan_id: str) -> str:
        """`latest` is the newest plan."""
        if plan_id != "latest":
            return plan_id
        newest = self.store.plans(1)
        if not newest:
            raise NotFound("no plan in the store yet")
        return str(newest[0].id)

    def plan(self, plan_id: str) -> m.PlanDetail:
        try:
            r = self.store.plan(self.resolve(plan_id))
        except UlmError as exc:
            raise NotFound(str(exc).split(" (")[0]) from None
        body = r.plan
        state = self._states([r])[0]
        return m.PlanDetail(
            **self.summary(r, state).model_dump(),
            rows=self.rows(body, live=state == planview.PlanState.READY),
            snapshot_id=body["snapshot_id"],
            policy_digest=body["policy_digest"],
            action_list=[_action(i, a) for i, a in enumerate(body["actions"], 1)],
            decisions=[_decision(d) for d in body["decisions"]],
            problem_list=list(body["problems"]),
            efficacy={k: float(v) for k, v in body["efficacy"].items()},
            outcomes=[_outcome(o) for o in self.store.outcomes(r.id)])

    def decisions(self, vm: str, limit: int) -> m.DecisionsOut:
        records = self.store.plans(limit)
        out = []
        for r in records:
            moves = [_action(i, a) for i, a in enumerate(r.plan["actions"], 1)
                     if a.get("vm") == vm]
            for d in r.plan["decisions"]:
                if d["vm"] == vm:
                    out.append(m.VMDecision(plan_id=r.id, created_at=r.created_at, mode=r.mode,
                                            status=r.status, decision=_decision(d), moves=moves))
        return m.DecisionsOut(vm=vm, plans_searched=len(records), decisions=out)

    # -- maintenance, energy, events -----------------------------------------------------------

    def maintenance(self, all_: bool) -> list[m.BookingOut]:
        return [m.BookingOut(id=b.id, host=b.host, start=b.start, end=b.end,
                             power_off=b.power_off, reason=b.reason, status=b.status,
                             detail=b.detail, return_home=b.return_home,
                             home_vms=list(b.home_vms))
                for b in self.store.bookings(active_only=not all_)]

    def energy(self, since: float, until: float, step: float) -> m.EnergyOut:
        samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for s in self.store.host_samples(0.0):
            if s.cpu is not None and s.ts <= until:
                samples[s.name].append((s.ts, float(s.cpu)))
        events = [(e["ts"], e["host"], e["action"]) for e in self.store.power_events()
                  if e["result"] == "done" and e["ts"] <= until]
        # As `ulm report energy`: a raw reading holds for two metering intervals.
        hold = 2 * self.cfg.collect.power_interval_s
        readings = {h: [(ts, w, res or hold) for ts, w, res in rows if ts <= until]
                    for h, rows in self.store.power_readings(0.0).items()}
        curves = self.cfg.curves()
        rep = account(since, until, samples, events, curves, readings)
        series: list[m.EnergyPoint] = []
        if step > 0:
            t = since
            while t < until and len(series) < 1000:
                b = account(t, min(t + step, until), samples, events, curves, readings)
                series.append(m.EnergyPoint(ts=t, kwh=b.kwh, always_on_kwh=b.always_on_kwh))
                t += step
        d = rep.to_dict()
        return m.EnergyOut(**{k: v for k, v in d.items() if k != "hosts"},
                           hosts=[m.HostEnergyOut(**h) for h in d["hosts"]],  # type: ignore
                           series=series)

    def all_events(self) -> list[m.EventOut]:
        out: list[m.EventOut] = []
        for r in self.store.plans(PLANS_SEARCHED):
            out.append(m.EventOut(ts=r.created_at, kind="plan", subject=r.id, plan_id=r.id,
                                  detail=f"{r.mode} plan, {len(r.plan['actions'])} action(s), "
                                         f"{r.status}"))
            for o in self.store.outcomes(r.id):
                what = (f"{o['vm']} {o['src']} -> {o['dst']}" if o["kind"] == "move"
                        else f"{o['kind']} {o['host']}")
                out.append(m.EventOut(ts=o["finished_at"], kind="outcome",
                                      subject=o["vm"] or o["host"], plan_id=r.id,
                                      about=[n for n in (o["vm"], o["src"], o["dst"],
                                                         o["host"]) if n],
                                      severity="error" if o["status"] == "failed" else "info",
                                      detail=f"{what}: {o['status']}"
                                             f"{' — ' + o['detail'] if o['detail'] else ''}"))
        for b in self.store.bookings():
            out.append(m.EventOut(ts=b.start, kind="maintenance", subject=b.host, about=[b.host],
                                  severity="warning" if b.status == "blocked" else "info",
                                  booking_id=b.id, detail=f"#{b.id} {b.status}: {b.detail}"))
        for e in self.store.power_events():
            out.append(m.EventOut(ts=e["ts"], kind="power", subject=e["host"], about=[e["host"]],
                                  severity="error" if e["result"] == "failed" else "info",
                                  detail=f"power {e['action']}: {e['result']}"
                                         f"{' — ' + e['detail'] if e['detail'] else ''}"))
        return out

    def saved_events(self, n: int, kind: str, about: str) -> tuple[list[m.EventOut], int]:
        """The newest `n` events of the store's `events` table and the bus's not yet written
        (matching `kind` and `about`), and how many match in all."""
        def read() -> tuple[list[EventRow], int]:
            return self.store.events(  # type: ignore[no-any-return]
                n, 0, kind, about, exclude=KEPT_ELSEWHERE)

        if self.bus is None:
            (rows, total), pending = read(), []
        else:
            (rows, total), pending = self.bus.settled(read)
        extra = [r for r in (row_of(e) for e in pending if saved_kind(e.kind))
                 if r.matches(kind, about)]
        return [_event(r) for r in [*rows, *extra]], total + len(extra)

    def events(self, offset: int, limit: int, kind: str = "", about: str = "") -> m.EventsPage:
        """Newest first; `kind` and `about` (a VM or host name) narrow them down. The page
        needs at most `offset + limit` of each source: the table is read no further."""
        events = [e for e in self.all_events() if (not kind or e.kind == kind)
                  and (not about or about in e.about)]
        saved, n_saved = self.saved_events(offset + limit, kind, about)
        events = sorted([*events, *saved], key=lambda e: e.ts, reverse=True)
        return m.EventsPage(events=events[offset:offset + limit], total=len(events) - len(saved)
                            + n_saved, offset=offset, limit=limit)

    def policy(self) -> Policy | None:
        """The config's policy (None if it cannot be read: the daemon reports that)."""
        try:
            return resolve_policy(self.cfg.policy_ref())
        except Exception:  # a broken policy file is the daemon's to report; the page goes on
            return None

    def overview(self, mode: str) -> m.OverviewOut:
        now = self.clock()
        policy = self.policy() or Policy()
        midnight = day_start(policy, now)  # the day the migration budget counts
        c = self.cfg.collect
        snap = self.store.snapshot(now, c.window, c.stale_s, day_start=midnight)
        states = Counter(h.state.value for h in snap.hosts)
        newest = self.store.plans(1)
        problems = list(newest[0].plan["problems"]) if newest else []
        spent = self.day_budget_spent(midnight)
        if spent is not None and str(spent) not in problems:
            problems.insert(0, str(spent))
        problems += [f"maintenance #{b.id} on {b.host} is blocked: {b.detail}"
                     for b in self.store.bookings(active_only=True) if b.status == "blocked"]
        problems += [f"{h.name} is {h.state.value}: ULM does not know why it is silent"
                     for h in snap.hosts if h.state.value == "unknown"]
        stale = sum(1 for v in snap.vms if v.stale)
        flying = sum(1 for e in self.store.open_entries()
                     if e.action.kind == "move" and e.state == "started")
        use = [h.cpu_measured if h.cpu_measured is not None else h.cpu_vms
               for h in self.hosts() if h.state == "on"]
        today = self.energy(min(midnight, now), now, 0.0) if now > midnight else None
        return m.OverviewOut(now=now, mode=mode, hosts=dict(states), vms=len(snap.vms),
                             stale_vms=stale, migrations_today=snap.migrations_today,
                             migration_budget=policy.effective(now)[0].gates
                             .max_migrations_per_day, problems=problems,
                             latest_plan=(self.summary(newest[0], self._states(newest)[0])
                                          if newest else None),
                             in_flight=flying, imbalance=_spread(use),
                             energy_today_kwh=today.kwh if today else 0.0,
                             energy_today_always_on_kwh=today.always_on_kwh if today else 0.0,
                             next_event=self.next_event(now))

    def day_budget_spent(self, midnight: float) -> Problem | None:
        """The last round's DAY_BUDGET problem, if that round ran today: a round that plans
        nothing stores no plan, so the newest stored plan may not say it (the round's event
        does, with its problems as data; from the bus, else the store after a restart)."""
        body: Any = None
        recent = [e for e in self.bus.recent() if e.kind == "round"] if self.bus else []
        if recent:
            body = recent[-1].data
        else:
            try:
                rows, _ = self.store.events(1, 0, "round")
            except Exception:  # an older store without the table's rows: nothing to say
                rows = []
            body = rows[0].body if rows else None
        if not isinstance(body, dict) or float(body.get("ts") or 0.0) < midnight:
            return None
        inner = body.get("data")
        issues = inner.get("issues") if isinstance(inner, dict) else None
        for d in issues if isinstance(issues, list) else []:
            p = from_data(d) if isinstance(d, dict) else None
            if p is not None and p.kind is ProblemKind.DAY_BUDGET:
                return p
        return None

    def next_event(self, now: float) -> m.NextEvent | None:
        """The soonest of: a booking that starts or ends, the calendar's next period."""
        found: list[m.NextEvent] = []
        for b in self.store.bookings(active_only=True):
            if b.start > now:
                found.append(m.NextEvent(ts=b.start, what=f"maintenance #{b.id} on {b.host} "
                                                          "starts (drain first)"))
            elif b.end > now:
                found.append(m.NextEvent(ts=b.end, what=f"maintenance #{b.id} on {b.host} "
                                                        "ends (host back)"))
        change = _next_period(self.policy(), now)
        if change is not None:
            found.append(change)
        return min(found, key=lambda e: e.ts) if found else None


def _spread(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)


_PERIOD_TEXT = {Period.OFFICE: "office hours begin",
                Period.PRE_OFFICE: "hosts wake for office hours",
                Period.NIGHT: "night: packing and powering off may start"}


def _next_period(policy: Policy | None, now: float) -> m.NextEvent | None:
    """When the policy's calendar next changes period (5-minute steps, a week ahead)."""
    cal = policy.calendar if policy is not None else None
    if cal is None:
        return None
    here = cal.period(now)
    t = now - now % 300 + 300
    while t < now + 7 * 86400:
        p = cal.period(t)
        if p is not here:
            return m.NextEvent(ts=t, what=_PERIOD_TEXT[p])
        t += 300
    return None


def _event(r: EventRow) -> m.EventOut:
    return m.EventOut(ts=r.ts, kind=r.kind, subject=r.vm or r.host, about=r.about,
                      plan_id=r.plan_id, detail=r.text, severity=r.severity)


def _action(seq: int, a: dict[str, Any]) -> m.ActionOut:
    return m.ActionOut(seq=seq, kind=a["kind"], vm=a.get("vm", ""), src=a.get("src", ""),
                       dst=a.get("dst", ""), host=a.get("host", ""), reason=a.get("reason", ""),
                       mem_mib=float(a.get("mem_mib", 0.0)))


def _decision(d: dict[str, Any]) -> m.DecisionOut:
    return m.DecisionOut(vm=d["vm"], host=d["host"], trigger=d["trigger"], outcome=d["outcome"],
                         rejections=dict(d["rejections"]),
                         top_scores=[(str(h), float(s)) for h, s in d["top_scores"]])


def _outcome(o: dict[str, Any]) -> m.OutcomeOut:
    return m.OutcomeOut(seq=o["seq"], kind=o["kind"], vm=o["vm"], src=o["src"], dst=o["dst"],
                        host=o["host"], status=o["status"], detail=o["detail"],
                        started_at=o["started_at"], finished_at=o["finished_at"])
