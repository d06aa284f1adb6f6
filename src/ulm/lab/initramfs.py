"""A tiny busybox initramfs for lab guests (newc cpio, gzip), written without a cpio binary.

The guest's behaviour comes from its kernel command line: `lab.burn=N` starts N busy loops
(guest CPU load), `lab.dirty=M` keeps rewriting an M MiB tmpfs file (dirty memory, which makes
live migration work harder).
"""

from __future__ import annotations

import gzip
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
i=0; while [ $i -lt $burn ]; do (while :; do :; done) & i=$((i+1)); done
if [ "$dirty" -gt 0 ]; then
  mkdir -p /scratch; mount -t tmpfs -o size=$((dirty+4))m tmpfs /scratch
  (while :; do dd if=/dev/urandom of=/scratch/d bs=1M count=$dirty 2>/dev/null; done) &
fi
echo "LABGUEST READY burn=$burn dirty=$dirty"
while :; do echo "LABGUEST alive $(cut -d' ' -f1 /proc/uptime)"; sleep 10; done
"""

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
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(cpio.buf.getvalue())
    tmp.replace(out)
