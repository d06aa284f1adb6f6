"""The daemon's upkeep beside the plan: maintenance bookings stepped on, retention (between
rounds, not in them), the BMCs' power meters. Functions of the daemon `d`, kept apart to keep
`daemon.py` short."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ulm.maintenance import BookingView, Step, return_home, step
from ulm.model import Plan
from ulm.snapshot import Snapshot

if TYPE_CHECKING:
    from ulm.daemon import Daemon

log = logging.getLogger("ulm.daemon")


def advance_maintenance(d: Daemon, snap: Snapshot, now: float) -> bool:
    """Moves every booking on by one step; runs its power actions in enforce mode."""
    changed = False
    speed = d.store.migration_speed()
    _, held = d.executor.holds.held()
    for b in d.store.bookings(active_only=True):
        view = BookingView(b.id, b.host, b.start, b.end, b.power_off, b.status)
        nxt = step(view, snap, d.policy, now, speed)
        if b.host in held and (nxt.actions or nxt.status != b.status):
            # A background plan's move off (or onto) the host has not closed yet, though the
            # collection may already show the VM on its destination: the next round decides,
            # once its outcome is recorded (a power-off now would be refused as held).
            log.debug("maintenance #%d on %s: waits for unfinished actions", b.id, b.host)
            continue
        if nxt.actions and d.mode.value == "enforce":
            plan = Plan(snap.id, d.policy.digest, now, nxt.actions)
            plan_id = d.store.save_plan(plan, "maintenance")
            result = d.apply(plan, plan_id)
            if any(o.status.value != "done" for o in result.outcomes):
                detail = "; ".join(o.detail for o in result.outcomes)
                d.conditions.begin(f"maintenance:{b.id}",
                                   f"maintenance #{b.id} on {b.host}: {detail}")
                d.store.set_booking(b.id, b.status, f"power action failed: {detail}")
                continue
            d.conditions.end(f"maintenance:{b.id}")
        elif nxt.actions:
            # not a failure, but the same every round until someone acts: said once
            d.conditions.begin(f"would:{b.id}", f"maintenance #{b.id} on {b.host} would "
                               f"{nxt.actions[0].kind} (mode {d.mode.value})", logging.INFO)
            continue
        d.conditions.end(f"would:{b.id}")
        if nxt.status == "draining" and b.status != "draining":
            i = snap.host_index[b.host]
            d.store.set_home_vms(b.id, [snap.vm_names[k] for k in range(snap.n_vms)
                                        if snap.vm_host[k] == i])
        if nxt.status == "done" and b.return_home and b.home_vms:
            if bool(snap.host_stale[snap.host_index[b.host]]):
                # Just back: no fresh figure of its own yet, so it is no destination this
                # round. The booking closes (and its VMs come home) once it has one.
                continue
            nxt = _return_home(d, b, snap, now, nxt)
        if (nxt.status, nxt.detail) != (b.status, b.detail):
            if nxt.status == "blocked" or nxt.late:
                log.warning("maintenance #%d on %s: %s", b.id, b.host, nxt.detail)
            else:
                log.info("maintenance #%d on %s: %s", b.id, b.host, nxt.detail)
            d.store.set_booking(b.id, nxt.status, nxt.detail)
            changed = changed or nxt.status != b.status
    return changed


def _return_home(d: Daemon, b: Any, snap: Snapshot, now: float, nxt: Step) -> Step:
    moves, issues = return_home(snap, d.policy, b.host, b.home_vms, now)
    problems = [str(p) for p in issues]  # rendered here, at the edge: conditions and logs
    d.conditions.track(f"return-home:{b.id}", {
        p: f"maintenance #{b.id} on {b.host}: {p}" for p in problems})
    if moves and d.mode.value == "enforce":
        plan = Plan(snap.id, d.policy.digest, now, tuple(moves))
        result = d.apply(plan, d.store.save_plan(plan, "maintenance"))
        done = sum(1 for o in result.outcomes if o.status.value == "done")
        return Step(nxt.status, f"{nxt.detail}; {done} of {len(b.home_vms)} VM(s) "
                    f"returned home{'; ' + '; '.join(problems) if problems else ''}")
    return nxt


#: Rows one retention step touches at most, in its own transaction: at 10,000 VMs an hour of
#: raw samples is ~660,000 rows (~11,000 a round). Small, so that a step never keeps another
#: writer (the background executor's journal, SQLite's one write lock) waiting long.
RETAIN_ROWS_PER_STEP = 5_000
#: Time kept free before the next round: no step starts later than this before it.
RETAIN_MARGIN_S = 1.0


def retain(d: Daemon, until: float) -> int:
    """Downsamples and expires old samples once per bucket, off the round path: between two
    rounds, in steps of at most `RETAIN_ROWS_PER_STEP` rows (each its own transaction), for
    as long as the time to the next round (`until`, on the daemon's clock) allows. At least
    one step is taken, so that a daemon whose rounds fill the interval still keeps up.
    Returns the steps taken."""
    c = d.cfg.collect
    now = d.clock.now()
    if now - d._retained_at < c.bucket_s:
        return 0
    # the work is real time whatever the clock says (a simulated clock does not move here)
    end = time.monotonic() + max(until - now - RETAIN_MARGIN_S, 0.0)
    steps, longest = 0, 0.0
    while True:
        t0 = time.monotonic()
        step = d.store.retention_step(now, c.raw_keep_s, c.bucket_s, c.keep_s,
                                      RETAIN_ROWS_PER_STEP)
        steps += 1
        longest = max(longest, time.monotonic() - t0)
        if step.downsampled or step.expired:
            log.debug("retention: %d raw samples downsampled, %d expired", step.downsampled,
                      step.expired)
        if step.done:
            d._retained_at = now
            break
        if time.monotonic() + longest > end:  # the next step might not end in time
            log.info("retention: more after the next round (%d step(s) done)", steps)
            break
    return steps


def meter(d: Daemon, now: float) -> None:
    """Reads the power meter of every BMC that has one, every `power_interval_s`.

    A BMC that fails is left alone for ten intervals (a dead BMC must not slow every
    round); one without a meter is not asked again until the daemon restarts.
    """
    every = d.cfg.collect.power_interval_s
    if every <= 0 or now - d._metered_at < every:
        return
    d._metered_at = now
    readings: dict[str, float] = {}
    for host, driver in getattr(d.executor, "power", {}).items():
        read = getattr(driver, "reading_w", None)
        if read is None or d._meter_quiet.get(host, float("-inf")) > now:
            continue
        try:
            watts = read()
        except Exception as exc:  # a PowerError names the host and BMC, never a secret
            d.conditions.begin(f"meter:{host}", f"power reading of {host} failed: {exc}")
            d._meter_quiet[host] = now + 10 * every
            continue
        d.conditions.end(f"meter:{host}", f"power reading of {host} works again")
        if watts is None:
            d._meter_quiet[host] = float("inf")
            log.info("%s: the BMC has no power meter; energy uses the power model", host)
            continue
        readings[host] = watts
    d.store.add_power_readings(now, readings)

