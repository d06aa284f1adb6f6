"""`Hypervisor` for libvirt: inventory and peer-to-peer live migration with a deadline.

`migrateToURI3` blocks until the migration ends, so each migration runs in a thread with its
own connection; `poll` reads the thread's result or the source's job statistics, `abort` calls
`abortJob` on the source. Peer-to-peer mode means the source libvirtd drives the migration: a
ULM that dies mid-migration leaves libvirt to finish or cancel it, and `recover()` then finds
the VM in exactly one place.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import libvirt

from ulm.drivers.base import MigrationOptions, MigrationState, MigrationStatus

_ACTIVE = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_BLOCKED)


def _tls(uri: str) -> bool:
    """qemu+tls://, or qemu://host/ (TLS is libvirt's default remote transport)."""
    scheme, _, rest = uri.partition("://")
    return scheme == "qemu+tls" or (scheme == "qemu" and not rest.startswith("/"))


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; ULM reports them itself."""


libvirt.registerErrorHandler(_quiet, None)


@dataclass
class _Job:
    vm: str
    src: str
    dst: str
    thread: threading.Thread | None = None
    error: str = ""
    aborted: bool = False
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class LibvirtHypervisor:
    """One connection per host, opened on first use and re-opened after an error."""

    def __init__(self, uris: Mapping[str, str], migration_uris: Mapping[str, str] | None = None,
                 timeout_s: float = 10.0) -> None:
        self.uris = dict(uris)
        self.migration_uris = {h: (migration_uris or {}).get(h) or u for h, u in uris.items()}
        self.timeout_s = timeout_s
        self._conns: dict[str, Any] = {}
        self._jobs: dict[str, _Job] = {}
        self._ids = itertools.count(1)

    # -- connections ---------------------------------------------------------------------------

    def conn(self, host: str) -> Any:
        c = self._conns.get(host)
        if c is not None:
            try:
                if c.isAlive():
                    return c
            except libvirt.libvirtError:
                pass
            self._conns.pop(host, None)
        c = libvirt.open(self.uris[host])
        self._conns[host] = c
        return c

    def close(self) -> None:
        for c in self._conns.values():
            with contextlib.suppress(libvirt.libvirtError):
                c.close()
        self._conns.clear()

    def reachable(self, host: str) -> bool:
        try:
            self.conn(host).getVersion()
            return True
        except libvirt.libvirtError:
            return False

    # -- inventory -----------------------------------------------------------------------------

    def list_vms(self, host: str) -> list[str]:
        doms = self.conn(host).listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        return sorted(d.name() for d in doms)

    def locate(self, vm: str) -> list[str]:
        """Hosts where the VM is active; an unreachable host is skipped (it runs nothing we
        can see), so a powered-off destination does not count as a second copy."""
        out: list[str] = []
        for host in self.uris:
            try:
                dom = self.conn(host).lookupByName(vm)
                if dom.state()[0] in _ACTIVE:
                    out.append(host)
            except libvirt.libvirtError:
                continue
        return out

    # -- migration -----------------------------------------------------------------------------

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        dom = self.conn(src).lookupByName(vm)  # fail fast, in the caller, if it is not there
        if dom.state()[0] not in _ACTIVE:
            raise RuntimeError(f"{vm} is not running on {src}")
        job_id = f"{vm}@{src}->{dst}#{next(self._ids)}"
        job = _Job(vm, src, dst)
        job.thread = threading.Thread(target=self._run, args=(job, options), daemon=True,
                                      name=f"migrate-{vm}")
        self._jobs[job_id] = job
        job.thread.start()
        return job_id

    def _run(self, job: _Job, options: MigrationOptions) -> None:
        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
                 | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
        if options.auto_converge:
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if _tls(self.migration_uris[job.dst]):  # the memory stream too, not only the control
            flags |= libvirt.VIR_MIGRATE_TLS
        params: dict[str, Any] = {}
        if options.bandwidth_mib_s:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(max(options.bandwidth_mib_s, 1))
        conn = None
        try:
            conn = libvirt.open(self.uris[job.src])  # a connection of its own: the call blocks
            dom = conn.lookupByName(job.vm)
            dom.migrateToURI3(self.migration_uris[job.dst], params, flags)
        except libvirt.libvirtError as exc:
            with job.lock:
                job.error = str(exc.get_error_message() or exc)
        finally:
            with job.lock:
                job.done = True
            if conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    conn.close()

    def poll(self, job_id: str) -> MigrationStatus:
        job = self._jobs[job_id]
        with job.lock:
            done, error, aborted = job.done, job.error, job.aborted
        if done:
            self._jobs.pop(job_id, None)
            if not error:
                return MigrationStatus(MigrationState.COMPLETED, 1.0)
            state = MigrationState.ABORTED if aborted else MigrationState.FAILED
            return MigrationStatus(state, error=error)
        return MigrationStatus(MigrationState.RUNNING, *self._progress(job))

    def _progress(self, job: _Job) -> tuple[float, str, float]:
        try:
            stats = self.conn(job.src).lookupByName(job.vm).jobStats()
        except libvirt.libvirtError:
            return 0.0, "", 0.0
        total = float(stats.get("memory_total", 0) or 0)
        remaining = float(stats.get("memory_remaining", 0) or 0)
        progress = 1.0 - remaining / total if total else 0.0
        return progress, "", remaining / 2**20

    def abort(self, job_id: str) -> None:
        job = self._jobs[job_id]
        with job.lock:
            job.aborted = True
        self.conn(job.src).lookupByName(job.vm).abortJob()
