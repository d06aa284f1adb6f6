"""A lab host: a real libvirtd (+ munin-node) in its own namespaces, and its power.

Power off is a hard stop (every process in the host's cgroup gets SIGKILL: libvirtd, its QEMU
guests, munin-node); power on wipes the host's /run and starts a fresh libvirtd. The host's
/etc/libvirt (persistent domain definitions) and its /var overlay survive, like a disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from ulm.errors import UlmError
from ulm.lab.network import netns_path
from ulm.lab.paths import NET, LabPaths, host_ip, host_name
from ulm.lab.secure import start_lines as secure_start
from ulm.lab.system import (
    alive,
    cgroup_dirs,
    cgroup_join,
    cgroup_pids,
    kill_all,
    spawn,
    wait_dead,
)

START = r"""#!/bin/bash
# Runs inside the host's own mount + UTS + cgroup namespace (and its network namespace).
set -e
mount --make-rprivate /
hostname {name}
# cgroup namespace: re-mount every hierarchy so that the host's cgroup is "/" for libvirtd
grep -E ' (cgroup|cgroup2) ' /proc/mounts | grep ' /sys/fs/cgroup/' > /tmp/.ulm-lab-cg-$$ || true
umount -R -l /sys/fs/cgroup
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
while read -r _ mp fstype opts _; do
  mkdir -p "$mp"; mount -t "$fstype" -o "$opts" cgroup "$mp"
done < /tmp/.ulm-lab-cg-$$
rm -f /tmp/.ulm-lab-cg-$$
mount --bind {h}/run /run
mkdir -p /run/libvirt
mount --bind {h}/etc-libvirt /etc/libvirt
mount --bind {root}/hosts /etc/hosts
# libvirt 9 resolves its built-in user 'libvirt-qemu' before reading qemu.conf
mount --bind {root}/passwd /etc/passwd
mount --bind {root}/group /etc/group
mount --bind {h}/proc-stat /proc/stat
mount --bind {h}/proc-meminfo /proc/meminfo
mount --bind {h}/proc-loadavg /proc/loadavg
if [ -f /sys/devices/system/node/node0/meminfo ]; then
  mount --bind {h}/node0-meminfo /sys/devices/system/node/node0/meminfo
fi
mount -t overlay overlay -o lowerdir=/var,upperdir={h}/var-up,workdir={h}/var-work /var
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu
# the QEMU capability probe takes ~4 s on a fresh host; a shared cache skips it
mount --bind {caps} /var/cache/libvirt/qemu
munin-node --config {h}/munin-node.conf || true
{extra}exec /usr/sbin/libvirtd --listen --pid-file /run/libvirtd.pid
"""

LIBVIRTD_CONF = """listen_tls = {tls}
listen_tcp = 1
listen_addr = "{ip}"
auth_tcp = "none"
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_rw_perms = "0770"
host_uuid = "6c61622d-686f-7374-8000-{i:012d}"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
keepalive_interval = 2
keepalive_count = 3
"""

QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
migration_address = "{ip}"
migration_host = "{ip}"
"""

MUNIN_CONF = """log_level 4
log_file {h}/munin-node.log
pid_file /run/munin-node.pid
background 1
setsid 1
user root
group root
host_name {name}
ignore_file [\\#~]$
ignore_file \\.dpkg-(tmp|new|old|dist)$
allow ^127\\.0\\.0\\.1$
allow ^{net}\\.[0-9]+$
host {ip}
port 4949
"""


def cgroups(i: int) -> list[Path]:
    return cgroup_dirs(f"ulm-lab/{host_name(i)}")


def prepare(paths: LabPaths, i: int, mem_mib: int, secure: bool = False) -> None:
    """Writes the host's configuration and its fake /proc files (real copies, resized);
    `secure` adds the TLS listener and an sshd (their keys come from `secure.prepare`)."""
    h = paths.host(i)
    for sub in ("run", "etc-libvirt", "var-up", "var-work"):
        (h / sub).mkdir(parents=True, exist_ok=True)
    ip = host_ip(i)
    (h / "etc-libvirt" / "libvirtd.conf").write_text(LIBVIRTD_CONF.format(ip=ip, i=i,
                                                                       tls=int(secure)))
    (h / "etc-libvirt" / "qemu.conf").write_text(QEMU_CONF.format(ip=ip))
    (h / "munin-node.conf").write_text(MUNIN_CONF.format(
        h=h, name=host_name(i), net=NET.replace(".", "\\."), ip=ip))
    start = h / "start.sh"
    extra = secure_start(h) if secure else ""
    start.write_text(START.format(name=host_name(i), h=h, root=paths.root, caps=paths.caps,
                                  extra=extra))
    start.chmod(0o755)
    (h / "proc-stat").write_text(Path("/proc/stat").read_text())
    (h / "proc-loadavg").write_text(Path("/proc/loadavg").read_text())
    (h / "proc-meminfo").write_text(_meminfo(mem_mib))
    node0 = Path("/sys/devices/system/node/node0/meminfo")
    if node0.exists():
        (h / "node0-meminfo").write_text(_resized(node0.read_text(), mem_mib, "Node 0 "))


def _meminfo(mem_mib: int) -> str:
    """The real /proc/meminfo with the totals of a host of `mem_mib`."""
    return _resized(Path("/proc/meminfo").read_text(), mem_mib, "")


def _resized(text: str, mem_mib: int, prefix: str) -> str:
    """A meminfo file as a host of `mem_mib` would show it, 90 % free."""
    kib = mem_mib * 1024
    values = {"MemTotal": kib, "MemFree": kib * 9 // 10, "MemAvailable": kib * 9 // 10,
              "MemUsed": kib // 10, "Buffers": 0, "Cached": 0}
    out = []
    for line in text.splitlines():
        key = line.removeprefix(prefix).split(":")[0].strip()
        if key in values:
            line = f"{prefix}{key}:{' ' * max(15 - len(key), 1)}{values[key]} kB"
        out.append(line)
    return "\n".join(out) + "\n"


def is_on(paths: LabPaths, i: int) -> bool:
    pid_file = paths.host(i) / "run" / "libvirtd.pid"
    try:
        return alive(int(pid_file.read_text().strip()))
    except (OSError, ValueError):
        return False


def power_on(paths: LabPaths, i: int, wait: bool = True) -> None:
    if is_on(paths, i):
        return
    h = paths.host(i)
    shutil.rmtree(h / "run", ignore_errors=True)
    (h / "run").mkdir()
    dirs = cgroups(i)
    # The child joins the host's cgroups before it execs, so every process of the host —
    # libvirtd, QEMU, munin-node — is in them and a power-off can find them all.
    proc = spawn(
        ["nsenter", f"--net={netns_path(host_name(i))}", "unshare", "--mount", "--uts",
         "--cgroup", "setsid", str(h / "start.sh")],
        h / "libvirtd.out", preexec_fn=lambda: cgroup_join(dirs, os.getpid()))
    (h / "launcher.pid").write_text(str(proc.pid))
    if wait:
        wait_answering(paths, i, proc)


def wait_answering(paths: LabPaths, i: int, proc: subprocess.Popen[bytes] | None = None,
                   timeout: float = 30.0) -> None:
    import libvirt

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = (paths.host(i) / "libvirtd.out").read_text(errors="replace")[-800:]
            raise UlmError(f"{host_name(i)}: libvirtd died: {tail.strip()}")
        if paths.socket(i).exists():
            try:
                libvirt.open(paths.unix_uri(i)).close()
                return
            except libvirt.libvirtError:
                pass
        time.sleep(0.1)
    raise UlmError(f"{host_name(i)}: libvirtd did not answer within {timeout:.0f} s")


def power_off(paths: LabPaths, i: int) -> None:
    """Hard power-off: SIGKILL every process of the host."""
    dirs = cgroups(i)
    for _ in range(5):
        pids = cgroup_pids(dirs)
        if not pids:
            break
        kill_all(pids)
        wait_dead(pids, 2.0)
    (paths.host(i) / "run" / "libvirtd.pid").unlink(missing_ok=True)
