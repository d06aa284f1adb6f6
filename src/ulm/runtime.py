"""Wiring: from a `Config` to a running daemon (store, sources, drivers, executor).

libvirt-python is imported here, when a daemon is built, not when `ulm` starts: every command
that talks to no hypervisor (plan, policy, simulate, status, maintenance, reports) runs without
it.
"""

from __future__ import annotations

import enum
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ulm.clock import WallClock
from ulm.collect.base import MetricsSource
from ulm.collect.munin import MuninSource
from ulm.config import Config
from ulm.daemon import Daemon, Mode
from ulm.drivers.base import Power
from ulm.errors import UlmError
from ulm.executor import Executor, Limits, SnapshotCheck
from ulm.jsonout import dumps
from ulm.policy import Policy, resolve_policy
from ulm.redact import redact
from ulm.store import Store
from ulm.store.opening import StoreMode

if TYPE_CHECKING:
    from ulm.drivers.libvirt import LibvirtHypervisor


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


@dataclass
class Runtime:
    cfg: Config
    policy: Policy
    store: Store
    hv: LibvirtHypervisor
    sources: list[MetricsSource]
    executor: Executor
    current: list[Policy]  # [the policy the executor re-checks against]
    readers: list[Store] = field(default_factory=list)  # the re-check's twin of the store

    def close(self) -> None:
        self.hv.close()
        self.executor.close()  # the twin its background plans wrote through
        for r in self.readers:
            r.close()
        self.store.close()


def build(cfg: Config, power: dict[str, Power] | None = None,
          store_mode: StoreMode = "write") -> Runtime:
    try:
        from ulm.collect.libvirt_source import LibvirtSource
        from ulm.drivers.libvirt import LibvirtHypervisor
    except ImportError as exc:
        raise UlmError(f"this command talks to libvirt, and {exc.msg}: install libvirt-python "
                       "(pip install libvirt-python; it needs libvirt-dev)") from None
    policy = resolve_policy(cfg.policy_ref())
    store = Store.open(cfg.store.url, mode=store_mode)  # `ulm run`: "create"
    hv = LibvirtHypervisor({h.name: h.libvirt_uri for h in cfg.hosts},
                           {h.name: h.migration_uri for h in cfg.hosts if h.migration_uri},
                           timeout_s=cfg.collect.timeout_s)
    names = [h.name for h in cfg.hosts]
    munin = cfg.collect.source == "munin"
    sources: list[MetricsSource]
    if cfg.collect.prometheus is not None:
        # Prometheus reports hosts and VMs: the collection tier is the admin's monitoring,
        # libvirt is asked only to act (migrations, and the executor's location checks).
        from ulm.collect.prometheus import from_config
        sources = [from_config(cfg.collect.prometheus,
                               {h.name: h.prometheus or h.name for h in cfg.hosts},
                               cfg.collect.stale_s, cfg.collect.timeout_s)]
    else:
        sources = [LibvirtSource(hv.conn, names, time.monotonic, host_cpu=not munin,
                                 uris=hv.uris, timeout_s=cfg.collect.timeout_s)]
    if munin:
        sources.append(MuninSource({h.name: h.munin for h in cfg.hosts if h.munin},
                                   cfg.collect.timeout_s))
    ex = cfg.executor
    limits = Limits(max_concurrent=ex.max_concurrent, max_per_host=ex.max_per_host,
                    deadline_s=ex.deadline_s, poll_s=ex.poll_s,
                    bandwidth_mib_s=ex.bandwidth_mib_s or None, auto_converge=ex.auto_converge,
                    power_timeout_s=ex.power_timeout_s, power_stagger_s=ex.power_stagger_s,
                    shutdown_grace_s=ex.shutdown_grace_s)
    current = [policy]  # the policy in force: a SIGHUP reload replaces it (`daemon` below)
    # The core's own rule on the move's hosts, cut from each round's snapshot (the daemon
    # feeds it); read from the store (its own connections) only when no round has.
    readers: list[Store] = []

    def fresh() -> Any:
        if not readers:
            readers.append(store.twin())
        return readers[0].snapshot(time.time(), cfg.collect.window, cfg.collect.stale_s)

    def started_since(since: float) -> int:  # the day's budget: counted afresh per move
        if not readers:
            readers.append(store.twin())
        return int(readers[0].migrations_since(since))

    recheck = SnapshotCheck(lambda: current[0], fresh, started_since)

    if power is None:
        from ulm.power.factory import build_power
        power = build_power(cfg, hv.reachable)
    executor = Executor(hv, WallClock(), store, limits, power=power, check=recheck,
                        manages=cfg.manages)
    return Runtime(cfg, policy, store, hv, sources, executor, current, readers)


def daemon(rt: Runtime, mode: Mode) -> Daemon:
    d = Daemon(rt.cfg, rt.policy, rt.store, rt.sources, rt.executor, WallClock(), mode)
    d.background = rt.cfg.executor.background  # plans beside the rounds ([executor] background)

    def reloaded(policy: Policy) -> None:  # the executor's re-check follows the daemon
        rt.policy = rt.current[0] = policy

    d.on_policy.append(reloaded)
    return d


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers expect from a daemon."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                               "logger": record.name, "msg": redact(record.getMessage())}
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return dumps(doc)


class RedactingFormatter(logging.Formatter):
    """The text format, with every credential blanked (a library's message may quote a URL)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(fmt: LogFormat, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.json else RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("ulm")
    root.handlers[:] = [handler]
    root.setLevel(level)
