"""Lab guests: a Debian cloud kernel + busybox initramfs (or memtest86+, or nothing at all),
built once from Debian packages into the lab cache, and their libvirt domain XML."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from ulm.errors import UlmError
from ulm.lab import initramfs
from ulm.lab.system import run

KINDS = ("linux", "memtest", "idle")
#: Inside a host: where each guest's control port (its ttyS1) listens. /etc/libvirt is the
#: host's "disk" (`ulm.lab.hosts`): it survives a power cycle, and the root namespace sees it.
CONSOLE_DIR = "/etc/libvirt/lab-console"


def build(guest_dir: Path) -> None:
    """Downloads the packages with `apt-get download` (nothing is installed) and unpacks them."""
    initrd = guest_dir / "initrd.gz"
    if (guest_dir / "vmlinuz").exists() and initrd.exists() \
            and (guest_dir / "memtest86+x64.bin").exists():
        stamp = initrd.with_suffix(".stamp")
        if not stamp.exists() or stamp.read_text().strip() != initramfs.STAMP:
            initramfs.refresh(initrd)  # an older init: the same files, the current script
        return
    guest_dir.mkdir(parents=True, exist_ok=True)
    deps = run(["apt-cache", "depends", "linux-image-cloud-amd64"])
    kernel = next((line.split()[1] for line in deps.splitlines()
                   if line.strip().startswith("Depends: linux-image-")), None)
    if kernel is None:
        raise UlmError("cannot find the Debian cloud kernel package (run `apt-get update`)")
    with tempfile.TemporaryDirectory(prefix="ulm-guest-") as tmp:
        work = Path(tmp)
        import subprocess
        out = subprocess.run(["apt-get", "download", kernel, "busybox-static", "memtest86+"],
                             cwd=work, capture_output=True, text=True)
        if out.returncode != 0:
            raise UlmError(f"apt-get download failed: {out.stderr.strip()}")
        root = work / "root"
        for deb in work.glob("*.deb"):
            run(["dpkg-deb", "-x", str(deb), str(root)])
        shutil.copy(next(root.glob("boot/vmlinuz-*")), guest_dir / "vmlinuz")
        shutil.copy(root / "boot" / "memtest86+x64.bin", guest_dir / "memtest86+x64.bin")
        initramfs.build(root, guest_dir / "initrd.gz")


def domain_xml(name: str, mem_mib: int, kind: str, guest_dir: Path, vcpus: int = 1,
               burn: int = 0, dirty_mib: int = 0) -> str:
    if kind not in KINDS:
        raise UlmError(f"unknown guest kind {kind!r} (use {', '.join(KINDS)})")
    if kind == "linux" and mem_mib < 96:
        raise UlmError(f"a linux guest needs at least 96 MiB (got {mem_mib})")
    if kind == "linux":
        args = f"console=ttyS0 quiet panic=-1 lab.burn={burn} lab.dirty={dirty_mib}"
        os_boot = (f"<kernel>{guest_dir}/vmlinuz</kernel><initrd>{guest_dir}/initrd.gz</initrd>"
                   f"<cmdline>{args}</cmdline>")
    elif kind == "memtest":
        os_boot = (f"<kernel>{guest_dir}/memtest86+x64.bin</kernel>"
                   "<cmdline>console=ttyS0,115200</cmdline>")
    else:
        os_boot = ""
    # a linux guest's ttyS1: its control port (`ulm.lab.burn`)
    control = (f"""    <serial type='unix'>
      <source mode='bind' path='{CONSOLE_DIR}/{escape(name)}.sock'/>
      <target port='1'/>
    </serial>
""" if kind == "linux" else "")
    return f"""<domain type='qemu'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{mem_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>{os_boot}</os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/{escape(name)}.serial' append='on'/>
      <target port='0'/>
    </serial>
{control}
    <memballoon model='virtio'><stats period='2'/></memballoon>
  </devices>
</domain>
"""
