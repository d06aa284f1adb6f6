"""`Store`: the typed API the daemon, the executor and the CLI use; SQL lives only here.

SQLite by default, in WAL mode (readers never block the single writer, the daemon) with a busy
timeout; PostgreSQL by URL (`postgresql+psycopg://...`). How a store is opened (read-only,
read-write, or created / upgraded, and never on data that is not ULM's) is ulm.store.opening.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, insert, select, update

from ulm.collect.base import Collection
from ulm.errors import UlmError
from ulm.executor import Fenced, JournalEntry, Outcome
from ulm.model import Action, Move, Plan, PowerCurve, PowerOff, PowerOn
from ulm.store import plans as plan_rows
from ulm.store import retention as aging
from ulm.store import schema as t
from ulm.store import writes
from ulm.store.bookings import Bookings
from ulm.store.events import Events, migrations_since, moves_by_vm
from ulm.store.inventory import Inventory
from ulm.store.lease import Lease, fenced_intent
from ulm.store.lease import holder as lease_holder
from ulm.store.opening import MIGRATIONS, Probe, StoreMode, open_engine, sqlite_write_pragmas
from ulm.store.records import (
    Booking,
    PlanRecord,
    action,
    action_dict,
    action_from_dict,
    actions_of,
    plan_from_body,
)
from ulm.store.rowread import read_rows
from ulm.store.rows import HostRow, SampleRow, VMRow, build_snapshot
from ulm.store.span import Span
from ulm.store.window import read_recent

__all__ = ["MIGRATIONS", "Booking", "PlanRecord", "Store", "action_from_dict", "actions_of",
           "fenced_intent", "plan_from_body"]


class Store(Bookings, Events):
    def __init__(self, engine: Engine, found: Probe | None = None) -> None:
        self.engine = engine
        self.found = found  # what the target was before it was opened (`ulm store init`)
        self._fence: Lease | None = None
        self._fenced_by: Store | None = None  # a twin follows the fence of the store it copies
        self._span = Span()  # the snapshot's window rows, kept between reads (ulm.store.span)
        self._inventory = Inventory()  # the inventory as last written (ulm.store.inventory)

    @classmethod
    def open(cls, url: str, *, mode: StoreMode) -> Store:
        """`read`: an existing store at head, read-only; `write`: read-write; `create` (the
        daemon, `ulm store init|upgrade`): may also create or upgrade it (ulm.store.opening)."""
        engine, found = open_engine(url, mode)
        return cls(engine, found)

    def close(self) -> None:
        self.engine.dispose()

    # -- collection ----------------------------------------------------------------------------

    def add_collection(self, col: Collection, managed: Any = None) -> None:
        """Inventory and samples of one collection round, in one transaction (bulk
        statements: ulm.store.writes; only the inventory rows that changed)."""
        with self.engine.begin() as c:
            pending = writes.add_collection(c, col, managed, self._inventory)
        self._inventory.commit(pending)  # committed: what the next round compares with

    def set_host_meta(self, meta: Mapping[str, tuple[Mapping[str, str], PowerCurve | None]]
                      ) -> None:
        """What the config says of each host: its labels and power curve (the daemon, at
        start). A host never collected gets its row now, unreachable and never seen (UNKNOWN
        in a snapshot, as a host that does not answer), so that its labels are there."""
        with self.engine.begin() as c:
            for name, (labels, curve) in meta.items():
                values: dict[str, Any] = {"labels": dict(labels),
                                          "power": curve.name if curve else ""}
                if not c.execute(update(t.hosts).where(t.hosts.c.name == name)
                                 .values(**values)).rowcount:
                    c.execute(insert(t.hosts).values(name=name, cpu=1.0, cores=1, mem_mib=0.0,
                                                     reachable=False, error="not collected yet",
                                                     last_seen=0.0, **values))
                if curve is not None:
                    pm = t.power_models
                    c.execute(delete(pm).where(pm.c.name == curve.name))
                    c.execute(insert(pm).values(name=curve.name, watts=list(curve.watts)))

    def mark_moved(self, vm: str, host: str, ts: float) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.vms).where(t.vms.c.name == vm).values(host=host,
                                                                    last_moved_at=ts))
        self._inventory.forget("vms", vm)

    def snapshot(self, now: float, window: int, stale_s: float,
                 gone_s: float | None = None, day_start: float | None = None) -> Any:
        """The cluster as the scheduler sees it: inventory + the last `window` samples, and
        the migrations started since `day_start` (`ulm.budget.day_start`; default: UTC
        midnight)."""
        gone = gone_s if gone_s is not None else max(10 * stale_s, 600.0)
        with self.engine.connect() as c:
            # the rows' own tuples, columns in the dataclasses' order (10,000 `_asdict` cost
            # more than the query), each distinct JSON text decoded once (`rowread`)
            host_rows = read_rows(c, t.hosts, HostRow, list(HostRow.__dataclass_fields__))
            vm_rows = read_rows(c, t.vms, VMRow, list(VMRow.__dataclass_fields__),
                                t.vms.c.last_seen >= now - gone)
            since = now - max(window, 1) * max(stale_s, 1.0) * 2
            running = {v.host for v in vm_rows}
            recent = read_recent(c, now, window, stale_s, since, [v.name for v in vm_rows],
                                 [h.name for h in host_rows],
                                 [h.name for h in host_rows if h.name not in running],
                                 self._span)
            down = {b.host for b in self._bookings(c) if b.status in ("draining", "down")}
            all_events = c.execute(select(t.power_events).order_by(t.power_events.c.ts)).all()
            named = {h.power for h in host_rows if h.power}
            curves = [PowerCurve(r.name, tuple(float(w) for w in r.watts)) for r in c.execute(
                select(t.power_models).where(t.power_models.c.name.in_(named)))]
            start = now - now % 86400 if day_start is None else day_start
            today = migrations_since(c, start)
            per_vm = moves_by_vm(c, start, start - 86400)
        events = [(r.ts, r.host, r.action) for r in all_events if r.result == "done"]
        last_power = {host: action for _, host, action in events}
        off = {h for h, action in last_power.items() if action == "off"}
        # A host whose last wake failed is not woken again and again: it is reported, left
        # UNKNOWN until it answers, and the next round wakes another one.
        last_try = {r.host: (r.action, r.result) for r in all_events if r.result != "skipped"}
        failed = {h for h, (action, result) in last_try.items()
                  if action == "on" and result == "failed"}
        return build_snapshot(now, host_rows, vm_rows, recent, window, stale_s, down,
                              off - failed, events, since, curves, today, per_vm)

    def retention(self, now: float, raw_keep_s: float = 86400.0, bucket_s: float = 3600.0,
                  keep_s: float = 90 * 86400.0) -> tuple[int, int]:
        """Raw samples older than `raw_keep_s` become `bucket_s` averages; averages older than
        `keep_s` go. All of it, in one transaction. Returns (rows downsampled, rows deleted)."""
        with self.engine.begin() as c:
            done = aging.step(c, now, raw_keep_s, bucket_s, keep_s, None)
        return done.downsampled, done.expired

    def retention_step(self, now: float, raw_keep_s: float, bucket_s: float, keep_s: float,
                       max_rows: int) -> aging.RetentionStep:
        """What `retention` does, but at most about `max_rows` rows: the daemon takes one step
        a round until `done`, so no round waits on a large backlog (ulm.store.retention)."""
        with self.engine.begin() as c:
            return aging.step(c, now, raw_keep_s, bucket_s, keep_s, max_rows)

    # -- plans and outcomes --------------------------------------------------------------------

    def save_plan(self, plan: Plan, mode: str) -> str:
        """A new plan's id; in advise mode, the waiting advice's if it is the same
        (`ulm.store.plans.save`)."""
        with self.engine.begin() as c:
            return plan_rows.save(c, plan, mode)

    def withdraw_advice(self) -> int:
        """An advice-mode round with nothing to advise: the advice waiting no longer holds,
        it is superseded. Returns how many plans were."""
        with self.engine.begin() as c:
            return plan_rows.withdraw(c)

    def plans(self, limit: int = 20) -> list[PlanRecord]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.plans).order_by(t.plans.c.created_at.desc(),
                                                      t.plans.c.id.desc()).limit(limit))
            return [PlanRecord(r.id, r.created_at, r.mode, r.status, r.body) for r in rows]

    def plan(self, plan_id: str) -> PlanRecord:
        with self.engine.connect() as c:
            r = c.execute(select(t.plans).where(t.plans.c.id == plan_id)).first()
        if r is None:
            raise UlmError(f"no plan {plan_id!r} in the store (see `ulm plans`)")
        return PlanRecord(r.id, r.created_at, r.mode, r.status, r.body)

    def set_plan_status(self, plan_id: str, status: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.plans).where(t.plans.c.id == plan_id).values(status=status))

    def record_outcome(self, plan_id: str, seq: int, o: Outcome) -> None:
        a = o.action
        with self.engine.begin() as c:
            c.execute(insert(t.outcomes).values(
                plan_id=plan_id, seq=seq, kind=a.kind,
                vm=a.vm if isinstance(a, Move) else "", src=a.src if isinstance(a, Move) else "",
                dst=a.dst if isinstance(a, Move) else "",
                host=a.host if isinstance(a, PowerOn | PowerOff) else "",
                status=o.status.value, detail=o.detail, started_at=o.started_at,
                finished_at=o.finished_at))
            if isinstance(a, Move) and o.status.value == "done":
                c.execute(update(t.vms).where(t.vms.c.name == a.vm).values(
                    host=a.dst, last_moved_at=o.finished_at))
            if isinstance(a, PowerOn | PowerOff):
                c.execute(insert(t.power_events).values(
                    ts=o.finished_at, host=a.host, action="on" if isinstance(a, PowerOn)
                    else "off", driver="", result=o.status.value, detail=o.detail))
        if isinstance(a, Move):  # its row changed beside the collection: written in full next
            self._inventory.forget("vms", a.vm)

    def outcomes(self, plan_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.outcomes).where(t.outcomes.c.plan_id == plan_id)
                             .order_by(t.outcomes.c.seq))
            return [dict(r._asdict()) for r in rows]

    # -- the executor's journal (`ulm.executor.Journal`) ---------------------------------------

    def intent(self, plan_id: str, seq: int, action: Action) -> int:
        """The entry written before an action starts. While this store leads (`fence`), it is
        written only under the lease's fencing epoch, in the same statement: a controller
        that lost the lead (a standby took over while it was paused or cut off) writes
        nothing, gets `Fenced`, and so starts nothing."""
        now = time.time()
        lease = self.fence
        values = dict(plan_id=plan_id, seq=seq, kind=action.kind, payload=action_dict(action),
                      state="intent", detail="", ts=now, updated_at=now)
        with self.engine.begin() as c:
            if lease is None:
                return _new_id(c.execute(insert(t.journal).values(**values)))
            if not lease.valid():  # its own clock says the lease ran out: no database needed
                raise Fenced(lease.epoch, "its lease ran out before it was renewed")
            new = c.execute(fenced_intent(lease, values)).scalar_one_or_none()
        if new is None:
            raise Fenced(lease.epoch, "another controller leads now")
        return int(new)

    def update(self, entry: int, state: str, detail: str = "") -> None:
        with self.engine.begin() as c:
            c.execute(update(t.journal).where(t.journal.c.id == entry).values(
                state=state, detail=detail, updated_at=time.time()))

    def open_entries(self) -> list[JournalEntry]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.journal).where(t.journal.c.state.in_(("intent",
                                                                            "started")))
                             .order_by(t.journal.c.id))
            return [JournalEntry(r.id, r.plan_id, r.seq, action(r.kind, r.payload), r.state,
                                 r.ts)
                    for r in rows]

    def journal_entries(self, plan_id: str) -> list[tuple[str, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.journal).where(t.journal.c.plan_id == plan_id)
                             .order_by(t.journal.c.id))
            return [(r.kind, r.state, r.detail) for r in rows]

    # -- the daemon's lease (ulm.store.lease) ---------------------------------------------

    @property
    def fence(self) -> Lease | None:
        """The lease this store's journal writes are fenced by, while its process leads (a
        twin's, for the background executor's threads, is always its original's)."""
        return self._fenced_by.fence if self._fenced_by is not None else self._fence

    @fence.setter
    def fence(self, lease: Lease | None) -> None:
        self._fence = lease

    def twin(self) -> Store:
        """A second handle on the same database with its own connections: the daemon's lock
        heartbeat renews from its own thread, never queued behind the round's connection."""
        url = self.engine.url  # the URL object keeps the password
        # PostgreSQL: a database cut off is noticed by TCP within seconds, not minutes
        engine = create_engine(url, connect_args=dict(
            connect_timeout=5, keepalives=1, keepalives_idle=5, keepalives_interval=2,
            keepalives_count=2, tcp_user_timeout=10000)) \
            if url.get_backend_name() == "postgresql" else create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", sqlite_write_pragmas)
        twin = Store(engine)
        twin._fenced_by = self  # its journal writes carry the same (current) fence
        twin._inventory = self._inventory  # its moves' outcomes forget rows in the original's
        return twin

    def lease(self, owner: str, ttl_s: float) -> Lease:
        """The leadership lease on this store for `owner` (not yet taken)."""
        return Lease(self.engine, owner, ttl_s)

    def acquire_lock(self, owner: str, ttl_s: float) -> bool:
        """The lease taken (or kept) for `owner`, once: `ulm apply`'s and the tests' way."""
        return Lease(self.engine, owner, ttl_s).acquire() is not None

    def refresh_lock(self, owner: str, ttl_s: float) -> bool:
        with self.engine.begin() as c:
            return bool(c.execute(update(t.leases).where(
                t.leases.c.name == "leader", t.leases.c.owner == owner).values(
                expires_at=time.time() + ttl_s, renewed_at=time.time())).rowcount)

    def release_lock(self, owner: str) -> None:
        """Expires the lease if `owner` holds it (the row stays: epochs only grow)."""
        self.refresh_lock(owner, -1.0)

    def lock_holder(self) -> tuple[str, float] | None:
        """Who leads, and until when; None when nobody does (released or expired)."""
        h = lease_holder(self.engine)
        return (h.owner, h.expires_at) if h is not None and h.live(time.time()) else None

    # -- maintenance and power -----------------------------------------------------------------

    def migration_speed(self, default_mib_s: float = 100.0, last: int = 50) -> float:
        """MiB/s of the last live migrations that succeeded (RAM / wall time)."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(t.outcomes.c.finished_at - t.outcomes.c.started_at, t.vms.c.mem_mib)
                .join(t.vms, t.vms.c.name == t.outcomes.c.vm)
                .where(t.outcomes.c.kind == "move", t.outcomes.c.status == "done")
                .order_by(t.outcomes.c.id.desc()).limit(last)).all()
        secs = sum(max(float(r[0]), 0.0) for r in rows)
        mem = sum(float(r[1]) for r in rows)
        return mem / secs if rows and secs > 0 else default_mib_s

    def add_power_event(self, ts: float, host: str, action: str, driver: str, result: str,
                        detail: str = "") -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.power_events).values(ts=ts, host=host, action=action,
                                                    driver=driver, result=result, detail=detail))

    def add_power_readings(self, ts: float, watts: Mapping[str, float]) -> None:
        if watts:
            with self.engine.begin() as c:
                c.execute(insert(t.power_readings),
                          [{"ts": ts, "host": h, "watts": w} for h, w in watts.items()])

    def power_readings(self, since: float = 0.0
                       ) -> dict[str, list[tuple[float, float, float]]]:
        """host -> [(ts, watts, resolution_s)] oldest first: what the BMCs metered
        (resolution 0: one reading; else the mean over a bucket of that length)."""
        out: dict[str, list[tuple[float, float, float]]] = {}
        p = t.power_readings
        with self.engine.connect() as c:
            rows = c.execute(select(p.c.ts, p.c.host, p.c.watts, p.c.resolution_s)
                             .where(p.c.ts >= since).order_by(p.c.ts))
            for ts, host, w, res in rows:
                out.setdefault(host, []).append((float(ts), float(w), float(res)))
        return out

    def power_events(self, since: float = 0.0) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.power_events).where(t.power_events.c.ts >= since)
                             .order_by(t.power_events.c.ts))
            return [dict(r._asdict()) for r in rows]

    def host_samples(self, since: float, name: str | None = None) -> list[SampleRow]:
        """Host samples since `since` (of one host: `name`), oldest first."""
        s = t.samples.c
        one = (s.name == name,) if name is not None else ()
        with self.engine.connect() as c:
            rows = c.execute(select(s.ts, s.kind, s.name, s.host, s.cpu, s.mem_mib)
                             .where(s.kind == "host", s.ts >= since, *one).order_by(s.ts))
            return [SampleRow(**r._asdict()) for r in rows]

    def last_seen(self) -> dict[str, float]:
        """Host -> when it last answered a collection (a silent round leaves it as it was)."""
        with self.engine.connect() as c:
            return {r.name: r.last_seen for r in c.execute(
                select(t.hosts.c.name, t.hosts.c.last_seen))}

    def host_names(self) -> Sequence[str]:
        with self.engine.connect() as c:
            return [r.name for r in c.execute(select(t.hosts.c.name).order_by(t.hosts.c.name))]

    # -- export --------------------------------------------------------------------------------

    def vm_samples(self, since: float, until: float
                   ) -> list[tuple[float, str, float | None, float | None]]:
        """Raw VM samples in [since, until): (ts, vm, cpu cores busy, memory used MiB)."""
        with self.engine.connect() as c:
            return [(r.ts, r.name, r.cpu, r.mem_mib) for r in c.execute(
                select(t.samples.c.ts, t.samples.c.name, t.samples.c.cpu, t.samples.c.mem_mib)
                .where(t.samples.c.kind == "vm", t.samples.c.ts >= since,
                       t.samples.c.ts < until))]

    def vm_sizes(self) -> dict[str, tuple[int, float]]:
        """vm -> (vCPUs, memory MiB), as last seen."""
        with self.engine.connect() as c:
            return {r.name: (int(r.vcpus), float(r.mem_mib)) for r in c.execute(
                select(t.vms.c.name, t.vms.c.vcpus, t.vms.c.mem_mib))}

    def move_history(self, since: float) -> list[tuple[str, str, str, float]]:
        """Moves that ended (done or failed) since then, oldest first: the executor's back-off
        is rebuilt from them after a restart."""
        o = t.outcomes
        with self.engine.connect() as c:
            rows = c.execute(select(o.c.vm, o.c.dst, o.c.status, o.c.finished_at)
                             .where(o.c.kind == "move", o.c.status.in_(("done", "failed")),
                                    o.c.finished_at >= since).order_by(o.c.finished_at))
            return [(r.vm, r.dst, r.status, float(r.finished_at)) for r in rows]


def _new_id(res: Any) -> int:
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])
