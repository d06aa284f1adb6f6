"""`Hypervisor` for libvirt: inventory, domain states and peer-to-peer live migration.

`migrateToURI3` blocks until the migration ends, so each migration runs in a thread with its
own connection; `poll` reads the thread's result or the source's job statistics, `abort` calls
`abortJob` on the source. Peer-to-peer mode means the source libvirtd drives the migration: a
ULM that dies mid-migration leaves libvirt to finish or cancel it, and `adopt` finds it again.

Every connection has libvirt keepalive on (that needs libvirt's event loop, run in a thread
of its own): a host whose network is cut, or whose libvirtd hangs, fails the calls in flight
after `keepalive_s * (keepalive_count + 1)` instead of blocking them for ever, and opening a
connection is bounded by `timeout_s`.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import libvirt

from ulm.drivers.base import DomainState, MigrationOptions, MigrationState, MigrationStatus

_ACTIVE = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_BLOCKED)
_STATES = {libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
           libvirt.VIR_DOMAIN_BLOCKED: DomainState.RUNNING,
           libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
           libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
           libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED}
#: Job types that mean "no job running any more" (`virDomainJobType`).
_NO_JOB = (libvirt.VIR_DOMAIN_JOB_NONE, libvirt.VIR_DOMAIN_JOB_COMPLETED,
           libvirt.VIR_DOMAIN_JOB_FAILED, libvirt.VIR_DOMAIN_JOB_CANCELLED)


def _tls(uri: str) -> bool:
    """qemu+tls://, or qemu://host/ (TLS is libvirt's default remote transport)."""
    scheme, _, rest = uri.partition("://")
    return scheme == "qemu+tls" or (scheme == "qemu" and not rest.startswith("/"))


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; ULM reports them itself."""


libvirt.registerErrorHandler(_quiet, None)
_loop_lock = threading.Lock()
_loop_started = False


def _event_loop() -> None:
    """libvirt's default event loop, once per process: keepalive messages need it."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, daemon=True, name="libvirt-events").start()
        _loop_started = True


def state_of(dom: Any) -> DomainState:
    state, reason = dom.state()
    return domain_state(state, reason)


def domain_state(state: int, reason: int) -> DomainState:
    """libvirt's (`virDomainState`, reason) pair in ULM's words (`dom.state()`, or a bulk
    stats record's `state.state` / `state.reason`)."""
    if state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED:
        return DomainState.POSTCOPY_FAILED
    return _STATES.get(state, DomainState.OTHER)


@dataclass
class _Job:
    vm: str
    src: str
    dst: str
    thread: threading.Thread | None = None
    error: str = ""
    aborted: bool = False
    done: bool = False
    #: No client call is waiting on it (adopted after a restart, or the call's connection
    #: was lost): libvirtd may still be running it, so its end is read from the source.
    detached: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class LibvirtHypervisor:
    """One connection per host, opened on first use and re-opened after an error."""

    def __init__(self, uris: Mapping[str, str], migration_uris: Mapping[str, str] | None = None,
                 timeout_s: float = 10.0, keepalive_s: int = 5, keepalive_count: int = 3) -> None:
        self.uris = dict(uris)
        self.migration_uris = {h: (migration_uris or {}).get(h) or u for h, u in uris.items()}
        self.timeout_s = timeout_s
        self.keepalive = (keepalive_s, keepalive_count)
        self._conns: dict[str, Any] = {}
        self._jobs: dict[str, _Job] = {}
        self._ids = itertools.count(1)
        _event_loop()

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
        c = self._open(self.uris[host])
        self._conns[host] = c
        return c

    def _open(self, uri: str) -> Any:
        """`libvirt.open` with keepalive on, given `timeout_s`: against a hung libvirtd the
        handshake never ends, so it runs in a thread that is abandoned when it is late."""
        got: list[Any] = []
        failed: list[BaseException] = []

        def run() -> None:
            try:
                got.append(libvirt.open(uri))
            except BaseException as exc:  # handed to the caller below
                failed.append(exc)

        opener = threading.Thread(target=run, daemon=True, name="libvirt-open")
        opener.start()
        opener.join(self.timeout_s)
        if failed:
            raise failed[0]
        if not got:
            raise libvirt.libvirtError(f"{uri}: no answer within {self.timeout_s:g} s")
        c = got[0]
        with contextlib.suppress(libvirt.libvirtError):
            c.setKeepAlive(*self.keepalive)
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

    def states(self, vm: str) -> dict[str, DomainState]:
        """Every reachable host that knows the domain, with its state there; an unreachable
        host is skipped (it runs nothing we can see)."""
        out: dict[str, DomainState] = {}
        for host in self.uris:
            try:
                out[host] = state_of(self.conn(host).lookupByName(vm))
            except libvirt.libvirtError:
                continue
        return out

    def locate(self, vm: str) -> list[str]:
        """Hosts where the VM is active (running or paused): a powered-off destination does
        not count as a second copy, a stale inactive definition neither."""
        return [h for h, s in self.states(vm).items()
                if s not in (DomainState.SHUTOFF, DomainState.CRASHED)]

    def resume(self, vm: str, host: str) -> None:
        self.conn(host).lookupByName(vm).resume()

    # -- migration -----------------------------------------------------------------------------

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        dom = self.conn(src).lookupByName(vm)  # fail fast, in the caller, if it is not there
        if dom.state()[0] not in _ACTIVE:
            raise RuntimeError(f"{vm} is not running on {src}")
        job = _Job(vm, src, dst)
        job.thread = threading.Thread(target=self._run, args=(job, options), daemon=True,
                                      name=f"migrate-{vm}")
        job_id = self._add(job)
        job.thread.start()
        return job_id

    def _add(self, job: _Job) -> str:
        job_id = f"{job.vm}@{job.src}->{job.dst}#{next(self._ids)}"
        self._jobs[job_id] = job
        return job_id

    def adopt(self, vm: str, src: str, dst: str) -> str | None:
        try:
            kind = self.conn(src).lookupByName(vm).jobInfo()[0]
        except libvirt.libvirtError:
            return None  # gone from the source (it moved), or the source is unreachable
        if kind in _NO_JOB:
            return None
        return self._add(_Job(vm, src, dst, detached=True))

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
            conn = self._open(self.uris[job.src])  # a connection of its own: the call blocks
            dom = conn.lookupByName(job.vm)
            dom.migrateToURI3(self.migration_uris[job.dst], params, flags)
        except libvirt.libvirtError as exc:
            with job.lock:
                job.error = str(exc.get_error_message() or exc)
                # The call's connection died (keepalive): libvirtd may still run the job.
                job.detached = exc.get_error_domain() == libvirt.VIR_FROM_RPC
        finally:
            with job.lock:
                job.done = True
            if conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    conn.close()

    def poll(self, job_id: str) -> MigrationStatus:
        job = self._jobs[job_id]
        with job.lock:
            done, error, aborted, detached = job.done, job.error, job.aborted, job.detached
        if detached:
            return self._poll_source(job_id, job)
        if done:
            self._jobs.pop(job_id, None)
            if not error:
                return MigrationStatus(MigrationState.COMPLETED, 1.0)
            state = MigrationState.ABORTED if aborted else MigrationState.FAILED
            return MigrationStatus(state, error=error)
        if aborted:
            # Cancelling: its progress no longer matters, and `jobStats` would ask the source
            # QEMU's monitor (query-migrate) while it handles the cancel, every poll.
            return MigrationStatus(MigrationState.RUNNING)
        return MigrationStatus(MigrationState.RUNNING, *self._progress(job))

    def _poll_source(self, job_id: str, job: _Job) -> MigrationStatus:
        """A job nobody's call waits on: running while the source says it has a job."""
        try:
            kind = self.conn(job.src).lookupByName(job.vm).jobInfo()[0]
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise  # the source does not answer: the caller's deadline decides
            kind = libvirt.VIR_DOMAIN_JOB_NONE
        if kind in _NO_JOB:
            self._jobs.pop(job_id, None)
            return MigrationStatus(MigrationState.ENDED, error=job.error)
        return MigrationStatus(MigrationState.RUNNING, *self._progress(job))

    def _progress(self, job: _Job) -> tuple[float, str, float]:
        try:
            stats = self.conn(job.src).lookupByName(job.vm).jobStats()
        except libvirt.libvirtError:
            return 0.0, "", 0.0
        total = float(stats.get("memory_total", 0) or 0)
        remaining = float(stats.get("memory_remaining", 0) or 0)
        progress = 1.0 - remaining / total if total else 0.0
        data = float(stats.get("data_remaining", remaining) or 0)  # memory + disks
        return progress, "", data / 2**20

    def abort(self, job_id: str) -> None:
        job = self._jobs[job_id]
        with job.lock:
            job.aborted = True
        self.conn(job.src).lookupByName(job.vm).abortJob()
