"""`ulm doctor`: does every part of a deployment answer? Read-only probes, each with a deadline.

Each probe returns a `Check` (data: component, target, ok, detail, seconds); the CLI renders
them. Probes run in parallel on a bounded pool and each has its own deadline, so one mute host
costs its deadline once, not once per host. Nothing is written anywhere: the store is opened
read-only, libvirt read-only, BMCs are asked for their power state only.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable
from dataclasses import dataclass

from ulm.config import Config
from ulm.redact import redact

#: A clock this far from the controller's breaks leases and the staleness of samples.
MAX_SKEW_S = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    component: str  # store, libvirt, munin, bmc, clock
    target: str  # host name, or the store
    ok: bool
    detail: str
    seconds: float


def _timed(component: str, target: str, probe: Callable[[], str]) -> Check:
    t0 = time.monotonic()
    try:
        detail, ok = probe(), True
    except Exception as exc:  # any failure of a probe is its answer, never the doctor's crash
        detail, ok = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc), False
    return Check(component, target, ok, redact(detail.strip().splitlines()[0] if detail else ""),
                 time.monotonic() - t0)


def _store(cfg: Config) -> Callable[[], str]:
    def probe() -> str:
        from ulm.store import Store

        store = Store.open(cfg.store.url, mode="read")
        try:
            rev = store.found.revision if store.found is not None else "?"
            return f"{store.engine.dialect.name}, schema {rev}"
        finally:
            store.close()
    return probe


def _db_clock(cfg: Config) -> Callable[[], str]:
    def probe() -> str:
        from sqlalchemy import text

        from ulm.store import Store

        store = Store.open(cfg.store.url, mode="read")
        try:
            if store.engine.dialect.name != "postgresql":
                return "same machine (SQLite)"
            with store.engine.connect() as conn:
                t0 = time.time()
                db = float(conn.execute(text("SELECT extract(epoch from now())")).scalar_one())
                t1 = time.time()
            skew = db - (t0 + t1) / 2
            if abs(skew) > MAX_SKEW_S:
                raise RuntimeError(f"database clock {skew:+.1f} s off the controller's")
            return f"database clock {skew:+.2f} s"
        finally:
            store.close()
    return probe


def _libvirt(uri: str, timeout_s: float) -> Callable[[], str]:
    def probe() -> str:
        import libvirt

        conn = libvirt.openReadOnly(uri)
        if conn is None:
            raise RuntimeError("libvirt refused the connection")
        try:
            with_keepalive = 0
            try:
                conn.setKeepAlive(max(1, int(timeout_s / 3)), 3)
                with_keepalive = 1
            except libvirt.libvirtError:
                pass  # local and test connections have no keepalive
            host = conn.getHostname()
            doms = len(conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
            v = conn.getLibVersion()
            ka = "" if with_keepalive else ", no keepalive"
            return (f"{host}: libvirt {v // 1000000}.{v // 1000 % 1000}.{v % 1000}, "
                    f"{doms} running domain{'s' if doms != 1 else ''}{ka}")
        finally:
            conn.close()
    return probe


def _munin(address: str, timeout_s: float) -> Callable[[], str]:
    def probe() -> str:
        from ulm.collect.munin import MuninClient

        answer = MuninClient(address, timeout_s).query("list")
        plugins = set(" ".join(answer["list"]).split())
        missing = {"cpu", "memory"} - plugins
        if missing:
            raise RuntimeError(f"{address}: plugin{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(sorted(missing))} missing")
        return f"{address}: cpu and memory plugins"
    return probe


def _bmc(cfg: Config, host: str) -> Callable[[], str]:
    def probe() -> str:
        from ulm.power.factory import driver

        p = cfg.host(host).power
        assert p is not None
        # The probe for drivers without a power state (Wake-on-LAN): unknown, not a guess.
        state = driver(p, lambda: False, host).state()
        return f"{p.driver} {p.address or p.mac}: power {state.value}"
    return probe


def probes(cfg: Config) -> list[tuple[str, str, Callable[[], str]]]:
    t = cfg.collect.timeout_s
    out: list[tuple[str, str, Callable[[], str]]] = [
        ("store", "store", _store(cfg)), ("clock", "store", _db_clock(cfg))]
    for h in cfg.hosts:
        out.append(("libvirt", h.name, _libvirt(h.libvirt_uri, t)))
        if h.munin:
            out.append(("munin", h.name, _munin(h.munin, t)))
        if h.power is not None:
            out.append(("bmc", h.name, _bmc(cfg, h.name)))
    return out


def run(cfg: Config, workers: int = 16) -> list[Check]:
    """Every probe, in parallel; one that outlives its deadline is reported as such (its thread
    is left to finish on its own: libvirt calls cannot be interrupted)."""
    deadline = cfg.collect.timeout_s + 1.0
    todo = probes(cfg)
    pool = cf.ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))),
                                 thread_name_prefix="doctor")
    try:
        futures = [(c, tgt, pool.submit(_timed, c, tgt, p)) for c, tgt, p in todo]
        checks: list[Check] = []
        t0 = time.monotonic()
        for component, target, fut in futures:
            try:
                checks.append(fut.result(timeout=max(0.0, deadline - (time.monotonic() - t0))))
            except cf.TimeoutError:
                checks.append(Check(component, target, False,
                                    f"no answer within {deadline:.0f} s", deadline))
        return checks
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
