"""`ulm lab ...`: a real libvirt cluster on this machine (root)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.errors import UlmError
from ulm.jsonout import dumps
from ulm.lab.lab import Lab, exec_prefix, require_root
from ulm.procs import run_forwarding

lab_app = typer.Typer(help="A real libvirt lab on this machine: hosts in network namespaces.",
                      no_args_is_help=True)
vm_app = typer.Typer(help="Guests in the lab.", no_args_is_help=True)
lab_app.add_typer(vm_app, name="vm")
app.add_typer(lab_app, name="lab")

PACKAGES = ("libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients", "libvirt-dev",
            "qemu-system-x86", "munin-node", "iproute2", "util-linux",
            "openssh-server", "openssh-client", "openssl")  # the last three: `up --secure`


@lab_app.command("setup")
@user_errors
def setup() -> None:
    """Install the Debian packages the lab needs (not libvirt-daemon-system: no services)."""
    require_root()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600",
                  "--no-install-recommends", *PACKAGES]):
        if subprocess.run(argv, env=env).returncode != 0:
            raise UlmError(f"{' '.join(argv[:2])} failed")
    console.print("lab packages installed")


@lab_app.command("up")
@user_errors
def up(
    hosts: Annotated[int, typer.Option("--hosts", help="Number of hosts.")] = 3,
    host_mem_mib: Annotated[int, typer.Option(help="Memory each host reports (MiB).")] = 4096,
    redfish: Annotated[bool, typer.Option(
        "--redfish", help="Also a Redfish BMC (sushy-tools) at 10.77.0.190:8000 whose power "
                          "actions switch the hosts (`ulm lab config --power redfish`).")] = False,
    secure: Annotated[bool, typer.Option(
        "--secure", help="Also an sshd (keys only) and a TLS libvirtd listener per host, with a "
                         "lab CA (`ulm lab config --transport ssh|tls`).")] = False,
) -> None:
    """Start N libvirtd hosts labh1..labhN, a controller namespace labctl, munin per host,
    an IPMI BMC and a Wake-on-LAN listener per host."""
    t = time.monotonic()
    Lab().up(hosts, host_mem_mib, redfish=redfish, secure=secure)
    console.print(f"lab up: {hosts} host(s) in {time.monotonic() - t:.1f} s "
                  "(controller namespace labctl at 10.77.0.100)")


@lab_app.command("down")
@user_errors
def down() -> None:
    """Stop everything the lab started and remove its namespaces, cgroups and route."""
    Lab().down()
    console.print("lab down")


@lab_app.command("status")
@user_errors
def status(fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Hosts, whether libvirtd answers, their guests and forced load."""
    rows = Lab().status()
    if fmt is Format.json:
        print(dumps([r.__dict__ for r in rows], indent=2))
        return
    table = Table("host", "address", "power", "libvirt", "VMs", "load")
    for r in rows:
        table.add_row(r.name, r.address, "on" if r.on else "off",
                      "answers" if r.answering else "-", ", ".join(r.vms) or "-",
                      r.load if r.load == "auto" else f"{r.load} % (forced)")
    console.print(table)


@lab_app.command("load")
@user_errors
def load(host: str,
         percent: Annotated[str | None, typer.Argument(
             help="0-100 (a forced figure, for tests that need an exact number), or 'auto'.")
         ] = None,
         burn: Annotated[int | None, typer.Option(
             "--burn", min=0, max=64,
             help="Instead: the host's linux guests really burn CPU, N busy loops each "
                  "(0 stops them); the host's figure follows them (auto).")] = None) -> None:
    """Make a host hot: its guests really burn CPU (--burn N), or force its CPU figure (as
    libvirt and munin see it); 'auto' follows its guests again."""
    if (percent is None) == (burn is None):
        raise UlmError("give a percentage (or 'auto') or --burn N, not both or neither")
    lab = Lab()
    if burn is None:
        assert percent is not None
        lab.set_load(host, percent)
        return
    lab.set_load(host, "auto")  # the figure is the guests' own from now on
    told = lab.burn(host, burn)
    console.print(f"{host}: {', '.join(told)} burn {burn} busy loop(s) each")


@lab_app.command("power")
@user_errors
def power(host: str, state: Annotated[str, typer.Argument(help="on or off")]) -> None:
    """Power a lab host off (every process killed) or on (a fresh libvirtd)."""
    if state not in ("on", "off"):
        raise UlmError(f"state must be 'on' or 'off' (got {state!r})")
    Lab().power(host, state == "on")


@lab_app.command("config")
@user_errors
def config(
    power: Annotated[str, typer.Option(
        "--power", help="How ULM switches the hosts: ipmi+wol (default) or redfish.")] = "ipmi+wol",
    transport: Annotated[str, typer.Option(
        "--transport", help="How ULM reaches libvirt: tcp (default, no authentication), ssh "
                            "(qemu+ssh://) or tls (qemu+tls://); ssh and tls need "
                            "`ulm lab up --secure`.")] = "tcp",
) -> None:
    """Print a ready ulm.toml for the lab."""
    if power not in ("ipmi+wol", "redfish"):
        raise UlmError(f"--power must be ipmi+wol or redfish (got {power!r})")
    print(Lab().config_toml(power, transport))


@lab_app.command("exec", context_settings={"allow_extra_args": True,
                                           "ignore_unknown_options": True})
@user_errors
def exec_cmd(ctx: typer.Context) -> None:
    """Run a command inside the controller namespace: ulm lab exec -- CMD ..."""
    require_root()
    Lab().state()
    if not ctx.args:
        raise UlmError("usage: ulm lab exec -- COMMAND [ARGS...]")
    sys.exit(run_forwarding([*exec_prefix(), *ctx.args]))  # killing it stops the command too


@vm_app.command("add")
@user_errors
def vm_add(
    name: str,
    host: Annotated[str, typer.Option("--host", help="labhN")],
    mem: Annotated[int, typer.Option("--mem", help="MiB")] = 128,
    kind: Annotated[str, typer.Option(help="linux, memtest or idle")] = "linux",
    burn: Annotated[int, typer.Option(help="busy loops in the guest")] = 0,
    dirty: Annotated[int, typer.Option(help="MiB of memory the guest keeps rewriting")] = 0,
    vcpus: Annotated[int, typer.Option()] = 1,
) -> None:
    """Define and start a diskless TCG guest on a lab host."""
    Lab().vm_add(name, host, mem, kind, burn, dirty, vcpus)


@vm_app.command("rm")
@user_errors
def vm_rm(name: str) -> None:
    """Destroy and undefine a guest."""
    Lab().vm_rm(name)


@vm_app.command("list")
@user_errors
def vm_list() -> None:
    for host, vms in Lab().vms().items():
        print(f"{host}: {' '.join(vms) or '-'}")
