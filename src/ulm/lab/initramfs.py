"""A tiny busybox initramfs for lab guests (newc cpio, gzip), written without a cpio binary.

The guest's behaviour comes from its kernel command line: `lab.burn=N` starts N busy loops
(guest CPU load), `lab.dirty=M` keeps rewriting an M MiB tmpfs file (dirty memory, which makes
live migration work harder). While it runs, "burn N" lines on its second serial port (ttyS1, a
unix socket on its host: `ulm.lab.burn`) change the number of busy loops.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
from pathlib import Path

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         virtio_balloon; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
burn=0; dirty=0
for a in $(cat /proc/cmdline); do
  case "$a" in lab.burn=*) burn=${a#lab.burn=};; lab.dirty=*) dirty=${a#lab.dirty=};; esac
done
burners=""
setburn() {
  for p in $burners; do kill $p 2>/dev/null; done
  burners=""; i=0
  while [ $i -lt "$1" ]; do (while :; do :; done) & burners="$burners $!"; i=$((i+1)); done
}
setburn "$burn"
if [ "$dirty" -gt 0 ]; then
  mkdir -p /scratch; mount -t tmpfs -o size=$((dirty+4))m tmpfs /scratch
  (while :; do dd if=/dev/urandom of=/scratch/d bs=1M count=$dirty 2>/dev/null; done) &
fi
echo "LABGUEST READY burn=$burn dirty=$dirty"
(while :; do echo "LABGUEST alive $(cut -d' ' -f1 /proc/uptime)"; sleep 10; done) &
# Control lines on the second serial port (`ulm lab load HOST --burn N`): "burn N" sets the
# number of busy loops. No such port (an older domain): the loop is skipped, nothing spins.
stty -F /dev/ttyS1 -echo 2>/dev/null
while read -r cmd n; do
  case "$cmd" in
    burn) case "$n" in ''|*[!0-9]*) ;; *) setburn "$n"; echo "LABGUEST burn=$n";; esac;;
  esac
done </dev/ttyS1 2>/dev/null
while :; do sleep 3600; done
"""

#: Changes whenever INIT does: a cached initramfs with another stamp is rebuilt.
STAMP = hashlib.sha256(INIT.encode()).hexdigest()[:16]

MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
           "virtio_pci", "virtio_balloon")


class _Cpio:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        n = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(n), 0)
        head = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.ino += 1
        self.buf.write(head + n + b"\0" * (-(len(head) + len(n)) % 4))
        self.buf.write(data + b"\0" * (-len(data) % 4))


def _entries(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """The (name, mode, data, rdev) of a newc archive, in order (TRAILER!!! left out)."""
    out: list[tuple[str, int, bytes, tuple[int, int]]] = []
    pos = 0
    while True:
        head = data[pos:pos + 110]
        if head[:6] != b"070701":
            raise ValueError("not a newc cpio archive")
        f = [int(head[6 + 8 * k:14 + 8 * k], 16) for k in range(13)]
        mode, size, rdev, namesize = f[1], f[6], (f[9], f[10]), f[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize + (-(110 + namesize) % 4)
        body = data[pos:pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, body, rdev))


def refresh(path: Path) -> None:
    """Gives a cached initramfs the current INIT without downloading anything again."""
    cpio = _Cpio()
    with gzip.open(path, "rb") as f:
        entries = _entries(f.read())
    for name, mode, body, rdev in entries:
        cpio.add(name, mode, INIT.encode() if name == "init" else body, rdev)
    cpio.add("TRAILER!!!", 0)
    _write(cpio, path)


def _write(cpio: _Cpio, out: Path) -> None:
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(cpio.buf.getvalue())
    tmp.replace(out)  # guests running already read the old one at their start
    out.with_suffix(".stamp").write_text(STAMP + "\n")


def build(extracted: Path, out: Path) -> None:
    """`extracted`: where busybox-static and the cloud kernel .debs were unpacked."""
    virtio = next(extracted.glob("lib/modules/*/kernel/drivers/virtio"))
    cpio = _Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "usr",
              "usr/bin", "usr/sbin"):
        cpio.add(d, stat.S_IFDIR | 0o755)
    cpio.add("bin/busybox", stat.S_IFREG | 0o755, (extracted / "bin/busybox").read_bytes())
    cpio.add("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
    cpio.add("init", stat.S_IFREG | 0o755, INIT.encode())
    for m in MODULES:
        cpio.add(f"lib/modules/{m}.ko", stat.S_IFREG | 0o644, (virtio / f"{m}.ko").read_bytes())
    cpio.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))  # early output before devtmpfs
    cpio.add("TRAILER!!!", 0)
    _write(cpio, out)
