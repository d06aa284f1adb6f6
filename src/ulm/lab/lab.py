"""The lab as a whole: up, down, status, guests, forced load, a ready `ulm.toml`."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ulm.errors import UlmError
from ulm.jsonout import dumps
from ulm.lab import bmc, guest, hosts, network
from ulm.lab import burn as lab_burn
from ulm.lab import redfish as lab_redfish
from ulm.lab import secure as lab_secure
from ulm.lab.paths import (
    CONTROLLER,
    CONTROLLER_IP,
    MAX_HOSTS,
    NET,
    LabPaths,
    host_index,
    host_ip,
    host_name,
)
from ulm.lab.system import (
    cgroup_dirs,
    cgroup_make,
    cgroup_remove,
    kill_all,
    spawn,
    wait_dead,
)

NEEDED = ("ip", "nsenter", "unshare", "/usr/sbin/libvirtd", "qemu-system-x86_64", "munin-node",
          "apt-get", "dpkg-deb")
NEEDED_SECURE = ("/usr/sbin/sshd", "ssh", "ssh-keygen", "openssl", "virt-ssh-helper")


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    on: bool
    answering: bool
    vms: list[str]
    load: str


def require_root() -> None:
    if os.geteuid() != 0:
        raise UlmError("the lab needs root (network namespaces, cgroups, libvirtd)")


def missing_tools(secure: bool = False) -> list[str]:
    tools = (*NEEDED, *NEEDED_SECURE) if secure else NEEDED
    return [t for t in tools if shutil.which(t) is None and not Path(t).exists()]


class Lab:
    def __init__(self, paths: LabPaths | None = None) -> None:
        self.paths = paths or LabPaths.default()

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.paths.state_file.read_text())
            return data
        except (OSError, ValueError):
            raise UlmError("the lab is not up (run `ulm lab up`)") from None

    def is_up(self) -> bool:
        return self.paths.state_file.exists()

    @property
    def n_hosts(self) -> int:
        return int(self.state()["hosts"])

    def index(self, host: str) -> int:
        try:
            i = host_index(host)
        except ValueError as exc:
            raise UlmError(str(exc)) from None
        if not 1 <= i <= self.n_hosts:
            raise UlmError(f"unknown lab host {host!r} (the lab has labh1..labh{self.n_hosts})")
        return i

    # -- up and down ---------------------------------------------------------------------------

    def up(self, n: int, host_mem_mib: int = 4096, power: bool = True,
           redfish: bool = False, secure: bool = False) -> None:
        """`secure`: also an sshd and a TLS listener per host (`ulm lab up --secure`)."""
        require_root()
        if not 1 <= n <= MAX_HOSTS:
            raise UlmError(f"--hosts must be between 1 and {MAX_HOSTS} (got {n})")
        if host_mem_mib < 256:
            raise UlmError(f"--host-mem-mib must be at least 256 (got {host_mem_mib})")
        gone = missing_tools(secure)
        if gone:
            raise UlmError(f"missing: {', '.join(gone)} (run `ulm lab setup`)")
        if self.is_up():
            raise UlmError("the lab is already up (run `ulm lab down` first)")
        self.down()  # whatever a crashed `up` left behind
        guest.build(self.paths.guest)
        self.paths.caps.mkdir(parents=True, exist_ok=True)
        root = self.paths.root
        root.mkdir(parents=True, exist_ok=True)
        self._system_files(n)
        try:
            network.switch_up()  # installs the safety route first
            network.controller_up()
            for i in range(1, n + 1):
                network.attach(host_name(i), host_ip(i))
                hosts.prepare(self.paths, i, host_mem_mib, secure)
                cgroup_make(hosts.cgroups(i))
            lab_burn.prepare(self.paths, n)
            if secure:
                lab_secure.prepare(self.paths, n)
            macs = {host_name(i): network.mac(host_name(i)) for i in range(1, n + 1)}
            self.paths.state_file.write_text(dumps(
                {"hosts": n, "host_mem_mib": host_mem_mib, "macs": macs, "power": power,
                 "redfish": redfish, "secure": secure}))
            for i in range(1, n + 1):
                hosts.power_on(self.paths, i, wait=False)
            for i in range(1, n + 1):
                hosts.wait_answering(self.paths, i)
                if power:  # a BMC (IPMI) and a Wake-on-LAN listener per host
                    bmc.start_bmc(self.paths, i)
                    bmc.start_wol(self.paths, i)
            if redfish:  # one sushy-tools Redfish BMC for all hosts
                lab_redfish.start(self.paths, n)
            self._start_fakeload(n)
        except BaseException:
            self.down()
            raise

    def _system_files(self, n: int) -> None:
        root = self.paths.root
        lines = ["127.0.0.1 localhost", f"{CONTROLLER_IP} {CONTROLLER}"]
        lines += [f"{host_ip(i)} {host_name(i)}" for i in range(1, n + 1)]
        (root / "hosts").write_text("\n".join(lines) + "\n")
        passwd = Path("/etc/passwd").read_text()
        group = Path("/etc/group").read_text()
        if "\nlibvirt-qemu:" not in "\n" + passwd:
            passwd += "libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n"
        if "\nlibvirt-qemu:" not in "\n" + group:
            group += "libvirt-qemu:x:64055:\n"
        if "\nkvm:" not in "\n" + group:
            group += "kvm:x:64056:\n"
        (root / "passwd").write_text(passwd)
        (root / "group").write_text(group)

    def _start_fakeload(self, n: int) -> None:
        proc = spawn([sys.executable, "-m", "ulm.lab.fakeload", str(self.paths.root), str(n)],
                     self.paths.root / "fakeload.out", start_new_session=True)
        (self.paths.root / "fakeload.pid").write_text(str(proc.pid))

    def down(self) -> None:
        """Removes every process, namespace, cgroup and route the lab made. Idempotent."""
        require_root()
        root = self.paths.root
        self.paths.state_file.unlink(missing_ok=True)  # tells fakeload to stop
        for pid_file in [*root.glob("*.pid"), *root.glob("h*/bmc.pid"), *root.glob("h*/wol.pid")]:
            try:
                pid = int(pid_file.read_text())
            except ValueError:
                continue
            kill_all([pid])
            wait_dead([pid], 5.0)
        for h in sorted(root.glob("h[0-9]*")):
            if h.name[1:].isdigit():
                hosts.power_off(self.paths, int(h.name[1:]))
        network.down()
        cgroup_remove(cgroup_dirs("ulm-lab"))
        shutil.rmtree(root, ignore_errors=True)

    # -- looking -------------------------------------------------------------------------------

    def status(self) -> list[HostStatus]:
        out = []
        for i in range(1, self.n_hosts + 1):
            on = hosts.is_on(self.paths, i)
            vms: list[str] = []
            answering = False
            if on:
                try:
                    conn = self.connect(i)
                    vms = sorted(d.name() for d in conn.listAllDomains())
                    conn.close()
                    answering = True
                except UlmError:
                    pass
            load_file = self.paths.host(i) / "load"
            load = load_file.read_text().strip() if load_file.exists() else "auto"
            out.append(HostStatus(host_name(i), host_ip(i), on, answering, vms, load))
        return out

    def connect(self, i: int) -> Any:
        import libvirt

        import ulm.drivers.libvirt  # noqa: F401  (silences libvirt's own stderr printing)
        try:
            return libvirt.open(self.paths.unix_uri(i))
        except libvirt.libvirtError as exc:
            raise UlmError(f"{host_name(i)}: {exc.get_error_message()}") from None

    # -- guests --------------------------------------------------------------------------------

    def vm_add(self, name: str, host: str, mem_mib: int, kind: str = "linux", burn: int = 0,
               dirty_mib: int = 0, vcpus: int = 1) -> None:
        import libvirt
        i = self.index(host)
        if mem_mib <= 0 or vcpus <= 0 or burn < 0 or dirty_mib < 0:
            raise UlmError("--mem and --vcpus must be positive, --burn and --dirty not negative")
        if self.find(name):
            raise UlmError(f"a VM named {name!r} already exists on {self.find(name)}")
        if kind == "linux":
            guest.build(self.paths.guest)  # an initramfs cached by an older version: refreshed
            lab_burn.prepare(self.paths, self.n_hosts)
        xml = guest.domain_xml(name, mem_mib, kind, self.paths.guest, vcpus, burn, dirty_mib)
        conn = self.connect(i)
        try:
            conn.defineXML(xml).create()
        except libvirt.libvirtError as exc:
            raise UlmError(f"cannot start {name} on {host}: {exc.get_error_message()}") from None
        finally:
            conn.close()

    def find(self, name: str) -> str:
        """The host the VM is active on ('' if none)."""
        import libvirt
        for i in range(1, self.n_hosts + 1):
            if not hosts.is_on(self.paths, i):
                continue
            conn = self.connect(i)
            try:
                if conn.lookupByName(name).isActive():
                    return host_name(i)
            except libvirt.libvirtError:
                continue
            finally:
                conn.close()
        return ""

    def vm_rm(self, name: str) -> None:
        import libvirt
        found = False
        for i in range(1, self.n_hosts + 1):
            if not hosts.is_on(self.paths, i):
                continue
            conn = self.connect(i)
            try:
                dom = conn.lookupByName(name)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
                found = True
            except libvirt.libvirtError:
                pass
            finally:
                conn.close()
        if not found:
            raise UlmError(f"no VM named {name!r} in the lab")

    def vms(self) -> dict[str, list[str]]:
        return {s.name: s.vms for s in self.status()}

    # -- load, power, config -------------------------------------------------------------------

    def set_load(self, host: str, value: str) -> None:
        i = self.index(host)
        if value != "auto":
            try:
                pct = float(value.rstrip("%"))
            except ValueError:
                raise UlmError(f"load must be a percentage 0-100 or 'auto' (got {value!r})"
                               ) from None
            if not 0 <= pct <= 100:
                raise UlmError(f"load must be between 0 and 100 (got {pct:g})")
            value = f"{pct:g}"
        (self.paths.host(i) / "load").write_text(value + "\n")

    def burn(self, host: str, loops: int) -> list[str]:
        """The linux guests on `host` really burn CPU: `loops` busy loops each (0: none)."""
        i = self.index(host)
        if not hosts.is_on(self.paths, i):
            raise UlmError(f"{host} is off")
        conn = self.connect(i)
        try:
            vms = sorted(d.name() for d in conn.listAllDomains() if d.isActive()
                         and f"{guest.CONSOLE_DIR}/" in d.XMLDesc())
        finally:
            conn.close()
        if not vms:
            raise UlmError(f"{host} runs no linux guest with a control port")
        return lab_burn.burn(self.paths, i, vms, loops)

    def power(self, host: str, on: bool) -> None:
        i = self.index(host)
        if on:
            hosts.power_on(self.paths, i)
        else:
            hosts.power_off(self.paths, i)

    def config_toml(self, power_driver: str = "ipmi+wol", transport: str = "tcp") -> str:
        """A ready ulm.toml; `power_driver` "redfish" needs `ulm lab up --redfish`, `transport`
        "ssh" or "tls" needs `ulm lab up --secure`."""
        n = self.n_hosts
        if transport not in ("tcp", "ssh", "tls"):
            raise UlmError(f"--transport must be tcp, ssh or tls (got {transport!r})")
        if transport != "tcp" and not self.state().get("secure"):
            raise UlmError(f"the lab has no {transport} listeners: `ulm lab up --secure`")
        lines = ["# ULM configuration for the local lab (ulm lab config)",
                 "# Run ULM inside the lab's controller namespace: ulm lab exec -- ulm run ...",
                 "[store]", f'url = "sqlite:///{self.paths.root}/ulm.db"', "",
                 "[collect]", "interval_s = 3", "",
                 "[executor]", "power_stagger_s = 2  # a lab host draws no inrush current", ""]
        power = bool(self.state().get("power"))
        use_redfish = power_driver == "redfish"
        if use_redfish and not self.state().get("redfish"):
            raise UlmError("the lab has no Redfish BMC: `ulm lab up --redfish`")
        macs = self.state().get("macs", {})
        for i in range(1, n + 1):
            lines += ["[[hosts]]", f'name = "{host_name(i)}"', *self._uris(i, transport),
                      f'munin = "{host_ip(i)}:4949"']
            if use_redfish:
                lines += [f"power = {{ driver = \"redfish\", address = \"{lab_redfish.url()}\", "
                          f"system = \"{host_name(i)}\", username = \"{lab_redfish.USER}\", "
                          f"password = \"{lab_redfish.PASSWORD}\", timeout_s = 5 }}"]
            elif power:
                lines += [f"power = {{ driver = \"ipmi+wol\", address = \"{bmc.bmc_ip(i)}\", "
                          f"username = \"{bmc.USER}\", password = \"{bmc.PASSWORD}\", "
                          f"mac = \"{macs.get(host_name(i), '')}\", "
                          f"broadcast = \"{NET}.255\" }}"]
            lines.append("")
        return "\n".join(lines)

    def _uris(self, i: int, transport: str) -> list[str]:
        """The controller's URI for host i and, for ssh and tls, the one the *source host's*
        libvirtd uses in a peer-to-peer migration: its own key and known hosts (its /etc/ssh),
        its own client certificate (its /etc/libvirt/pki)."""
        if transport == "ssh":
            return [f'libvirt_uri = "{lab_secure.ssh_uri(self.paths, i)}"',
                    f'migration_uri = "qemu+ssh://root@{host_ip(i)}/system"']
        if transport == "tls":
            ctl = lab_secure.controller_pki(self.paths)
            return [f'libvirt_uri = "{lab_secure.tls_uri(i, ctl)}"',
                    f'migration_uri = "{lab_secure.tls_uri(i, lab_secure.PKI)}"']
        return [f'libvirt_uri = "{LabPaths.tcp_uri(i)}"']


def exec_prefix() -> list[str]:
    """argv prefix that runs a command inside the controller namespace (cgroups stay visible,
    unlike `ip netns exec`, which remounts /sys); in a secure lab with the controller's own
    /etc/ssh (its known hosts)."""
    return ["nsenter", f"--net={network.netns_path(CONTROLLER)}",
            *lab_secure.controller_prefix(LabPaths.default())]
