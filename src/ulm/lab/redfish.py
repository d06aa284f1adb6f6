"""A Redfish BMC for the lab: sushy-tools' emulator in its own namespace `labrf` at
10.77.0.190:8000, one system per host (named like the host), basic auth.

sushy-tools' fake driver only keeps a power state; it has no hypervisor to switch. But it
announces every change of a system to an "external notifier" URL. A small hook listens there,
on the namespace's own loopback, and applies a change that has taken effect to the real host
(`hosts.power_on/off`), as the IPMI BMC's chassis control does. The fake driver applies a power
request 1-11 s later, like a slow BMC, so ULM's polling with a deadline is exercised too.

Only changes made through Redfish reach the host: a host switched by IPMI, Wake-on-LAN or
`ulm lab power` keeps its old Redfish state. Give each host one power driver.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from ulm.errors import UlmError
from ulm.lab import hosts, network
from ulm.lab.paths import NET, REDFISH, LabPaths, host_name
from ulm.lab.system import spawn

NS = REDFISH
IP = f"{NET}.190"
PORT = 8000
HOOK_PORT = 8001  # on the namespace's loopback only
USER, PASSWORD = "admin", "redfish-lab"  # lab only: answers only inside the lab network


def url() -> str:
    return f"http://{IP}:{PORT}"


def system_uuid(i: int) -> str:
    return f"6c61622d-7266-7379-8000-{i:012d}"


def start(paths: LabPaths, n: int) -> None:
    emulator = Path(sys.executable).parent / "sushy-emulator"
    if not emulator.exists():
        raise UlmError("sushy-emulator is missing: bash scripts/setup.sh installs sushy-tools")
    d = paths.root / "redfish"
    d.mkdir(parents=True, exist_ok=True)
    systems = [{"uuid": system_uuid(i), "name": host_name(i),
                "power_state": "On" if hosts.is_on(paths, i) else "Off",
                "external_notifier": True} for i in range(1, n + 1)]
    conf = emulator_config(d, IP, PORT, USER, PASSWORD, systems,
                           notify_url=f"http://127.0.0.1:{HOOK_PORT}/")
    network.attach(NS, IP)
    enter = ["nsenter", f"--net={network.netns_path(NS)}"]
    hook = spawn([*enter, sys.executable, "-m", "ulm.lab.redfish", str(paths.root)],
                 d / "hook.out", start_new_session=True)
    (paths.root / "redfish-hook.pid").write_text(str(hook.pid))
    emu = spawn([*enter, str(emulator), "--config", str(conf)],
                d / "emulator.out", start_new_session=True)
    (paths.root / "redfish.pid").write_text(str(emu.pid))


def emulator_config(d: Path, ip: str, port: int, user: str, password: str,
                    systems: Sequence[Mapping[str, object]], notify_url: str = "") -> Path:
    """Writes sushy-emulator's configuration in `d`: fake driver with `systems`, basic auth
    for `user` (bcrypt htpasswd), state kept in `d/state`. Returns the file to pass."""
    import bcrypt  # sushy-tools' own dependency, for its htpasswd file

    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    (d / "htpasswd").write_text(f"{user}:{digest}\n")
    conf = d / "emulator.conf"
    conf.write_text(
        f"SUSHY_EMULATOR_LISTEN_IP = {ip!r}\n"
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(d / 'state')!r}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(d / 'htpasswd')!r}\n"
        "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
        + (f"EXTERNAL_NOTIFICATION_URL = {notify_url!r}\n" if notify_url else ""))
    return conf


def serve(paths: LabPaths) -> None:
    """The external notifier: applies a system's power state once it has taken effect."""

    class Hook(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.end_headers()
            system = json.loads(body or b"{}")
            name, state = str(system.get("name", "")), system.get("power_state")
            if system.get("pending_power") or not name.startswith("labh"):
                return  # requested, not yet applied: the fake BMC is still "working"
            i = int(name[4:])
            with (paths.host(i) / "power.log").open("a") as f:
                f.write(f"redfish power {state}\n")
            if state == "On":
                hosts.power_on(paths, i, wait=False)
            elif state == "Off":
                hosts.power_off(paths, i)

        def log_message(self, format: str, *args: object) -> None:
            pass

    HTTPServer(("127.0.0.1", HOOK_PORT), Hook).serve_forever()


if __name__ == "__main__":
    serve(LabPaths(Path(sys.argv[1]), LabPaths.default().cache))
