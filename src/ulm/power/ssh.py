"""Power off over ssh (`systemctl poweroff` by default): for hosts without a BMC. It cannot
power a host on; pair it with Wake-on-LAN (`wol+ssh`). It runs the `ssh` binary, so the
admin's ssh setup (keys, known_hosts, ProxyJump in ~/.ssh/config) applies as it is."""

from __future__ import annotations

import subprocess
from typing import Literal

from ulm.drivers.base import PowerState
from ulm.power.errors import PowerError
from ulm.power.probe import Probe, probed

HostKeyChecking = Literal["yes", "accept-new"]  # never "no": that hands root to anyone


class SshPower:
    def __init__(self, host: str, user: str = "root", key_file: str = "", port: int = 22,
                 command: str = "systemctl poweroff", known_hosts: str = "",
                 probe: Probe | None = None, timeout_s: float = 10.0,
                 host_key_checking: HostKeyChecking = "yes") -> None:
        self.host = host
        self.user = user
        self.key_file = key_file
        self.port = port
        self.command = command
        self.known_hosts = known_hosts  # empty: the user's own known_hosts
        self.probe = probe
        self.timeout_s = timeout_s
        self.host_key_checking = host_key_checking

    def __repr__(self) -> str:
        return f"SshPower({self.user}@{self.host}:{self.port}, {self.command!r})"

    def argv(self) -> list[str]:
        out = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes",  # never prompt
               "-o", f"ConnectTimeout={max(round(self.timeout_s), 1)}",
               "-o", f"StrictHostKeyChecking={self.host_key_checking}"]
        if self.known_hosts:
            out += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.key_file:
            out += ["-i", self.key_file, "-o", "IdentitiesOnly=yes"]
        return [*out, "--", f"{self.user}@{self.host}", self.command]

    def power_off(self) -> None:
        try:
            out = subprocess.run(self.argv(), capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=self.timeout_s + 5)
        except subprocess.TimeoutExpired:
            raise PowerError(f"ssh {self.host}: no answer within {self.timeout_s:g} s") from None
        except OSError as exc:
            raise PowerError(f"ssh {self.host}: cannot run ssh: {exc.strerror}") from None
        if not _powered_off(out.returncode, out.stderr):
            why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
            raise PowerError(f"ssh {self.host}: {self.command!r} failed "
                             f"(exit {out.returncode}){': ' + why if why else ''}")

    def power_on(self) -> None:
        raise NotImplementedError("ssh cannot power a host on (use Wake-on-LAN or a BMC)")

    def state(self) -> PowerState:
        return probed(self.probe)


def _powered_off(returncode: int, stderr: str) -> bool:
    """Exit 0, or the connection dropped under us because the host went down (ssh exits 255
    then, with "closed by remote host" or nothing at all on stderr)."""
    if returncode == 0:
        return True
    return returncode == 255 and ("closed" in stderr or not stderr.strip())
