"""Small system helpers for the lab: commands, processes, cgroups."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ulm.errors import UlmError
from ulm.procs import alive

__all__ = ["alive"]

#: Long-lived children (libvirtd launchers, the load driver) stay referenced here: they outlive
#: the call that started them, and a dropped `Popen` of a running child warns.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: Sequence[str], log: Path, **kw: object) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                close_fds=True, **kw)  # type: ignore[call-overload]
    CHILDREN[proc.pid] = proc
    reap()
    return proc


def reap() -> None:
    """Collects the exit status of children that ended (killed by the lab's teardown, say):
    an unreaped one stays a zombie, and its dropped `Popen` warns at interpreter exit."""
    for pid, child in list(CHILDREN.items()):
        if child.poll() is not None:
            del CHILDREN[pid]


atexit.register(reap)


def run(argv: Sequence[str], check: bool = True, timeout: float = 60.0) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise UlmError(f"{argv[0]} is not installed (run `ulm lab setup`)") from None
    if check and out.returncode != 0:
        raise UlmError(f"{' '.join(argv)} failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def kill_all(pids: Sequence[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_dead(pids: Sequence[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()  # our own children among them are zombies until reaped
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


# -- cgroups: one directory per lab host in every hierarchy, below our own placement ---------

def _mountpoints() -> tuple[dict[str, str], str | None]:
    v1: dict[str, str] = {}
    v2 = None
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        mp, fstype, opts = parts[1], parts[2], parts[3].split(",")
        if fstype == "cgroup2" and v2 is None:
            v2 = mp
        elif fstype == "cgroup":
            for o in opts:
                v1.setdefault(o, mp)
    return v1, v2


def cgroup_dirs(sub: str) -> list[Path]:
    """`<hierarchy mount><our placement>/<sub>` for every hierarchy this process is in."""
    v1, v2 = _mountpoints()
    out: list[Path] = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if ctrls:
            first = ctrls.split(",")[0]
            mp = v1.get(first) or v1.get(ctrls)
        else:
            mp = v2
        if mp:
            out.append(Path(mp + path.rstrip("/")) / sub)
    if not out:
        raise UlmError("no cgroup hierarchy is visible (entered with `ip netns exec`?); "
                       "the lab needs /sys/fs/cgroup")
    return out


def cgroup_make(dirs: Sequence[Path]) -> None:
    """Creates the directories; cpuset needs cpus/mems filled in before a task can join."""
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "cpuset.cpus").exists():
            continue
        for level in (d.parent, d):  # ".../lab" first, then ".../lab/labhI"
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (level / name).read_text().strip():
                    (level / name).write_text((level.parent / name).read_text())


def cgroup_join(dirs: Sequence[Path], pid: int) -> None:
    for d in dirs:
        (d / "cgroup.procs").write_text(str(pid))


def cgroup_pids(dirs: Sequence[Path]) -> list[int]:
    """Every process in the subtree (the pids hierarchy has them all)."""
    pids: set[int] = set()
    for d in dirs:
        if not d.is_dir():
            continue
        for procs in d.rglob("cgroup.procs"):
            try:
                pids.update(int(x) for x in procs.read_text().split())
            except OSError:
                continue
        if pids:
            break
    return sorted(pids)


def cgroup_remove(dirs: Sequence[Path], timeout: float = 20.0) -> None:
    """Removes the lab's cgroups. A cgroup cannot be removed while a task is in it, and on a
    loaded machine a killed QEMU or libvirtd may take a while to go: kill what is still
    listed, reap our own children, and try again until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = [d for d in dirs if d.is_dir()]
        for d in left:
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()),
                              key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                d.rmdir()
        left = [d for d in dirs if d.is_dir()]
        if not left or time.monotonic() > deadline:
            return
        kill_all(sorted(_tasks(left) - {os.getpid(), os.getppid()}))
        reap()
        time.sleep(0.1)


def _tasks(dirs: Sequence[Path]) -> set[int]:
    """Every task still in the subtrees (v1 `tasks`, v2 `cgroup.procs`)."""
    out: set[int] = set()
    for d in dirs:
        for f in [*d.rglob("tasks"), *d.rglob("cgroup.procs")]:
            with contextlib.suppress(OSError, ValueError):
                out.update(int(x) for x in f.read_text().split())
    return out


def cpu_usage_ns(dirs: Sequence[Path]) -> int | None:
    """CPU time used by the subtree (cpuacct), for load that follows the real guests."""
    for d in dirs:
        f = d / "cpuacct.usage"
        if f.exists():
            return int(f.read_text())
        stat = d / "cpu.stat"
        if stat.exists():
            for line in stat.read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) * 1000
    return None
