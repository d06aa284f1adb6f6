"""Power off over ssh (`systemctl poweroff` by default): for hosts without a BMC. It cannot
power a host on; pair it with Wake-on-LAN (`wol+ssh`)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from ulm.drivers.base import PowerState
from ulm.power.ipmi import PowerError


class SshPower:
    def __init__(self, host: str, user: str = "root", key_file: str = "", port: int = 22,
                 command: str = "systemctl poweroff", known_hosts: str = "",
                 probe: Callable[[], bool] | None = None, timeout_s: float = 10.0) -> None:
        self.host = host
        self.user = user
        self.key_file = key_file
        self.port = port
        self.command = command
        self.known_hosts = known_hosts  # empty: the user's own known_hosts, strictly checked
        self.probe = probe
        self.timeout_s = timeout_s

    def argv(self) -> list[str]:
        out = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes",
               "-o", f"ConnectTimeout={int(max(self.timeout_s, 1))}",
               "-o", "StrictHostKeyChecking=yes"]
        if self.known_hosts:
            out += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.key_file:
            out += ["-i", self.key_file, "-o", "IdentitiesOnly=yes"]
        return [*out, f"{self.user}@{self.host}", self.command]

    def power_off(self) -> None:
        try:
            out = subprocess.run(self.argv(), capture_output=True, text=True,
                                 timeout=self.timeout_s + 5)
        except subprocess.TimeoutExpired:
            raise PowerError(f"ssh {self.host}: no answer within {self.timeout_s:g} s") from None
        # A host that powers off may drop the connection before ssh sees the exit status (255).
        if out.returncode not in (0, 255) or (out.returncode == 255 and "closed" not in
                                              out.stderr and out.stderr.strip()):
            raise PowerError(f"ssh {self.host}: {out.stderr.strip() or out.returncode}")

    def power_on(self) -> None:
        raise NotImplementedError("ssh cannot power a host on (use Wake-on-LAN or a BMC)")

    def state(self) -> PowerState:
        if self.probe is None:
            return PowerState.UNKNOWN
        return PowerState.ON if self.probe() else PowerState.OFF
