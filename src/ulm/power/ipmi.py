"""IPMI over LAN (RMCP+) via pyghmi: power on, hard power off, power state.

The password comes from the config (a file or an environment variable is better) and never
appears in an error message or a log line.
"""

from __future__ import annotations

from typing import Any

from ulm.drivers.base import PowerState


class PowerError(Exception):
    pass


class IpmiPower:
    def __init__(self, address: str, username: str, password: str, port: int = 623,
                 timeout_s: float = 10.0) -> None:
        self.address = address
        self.port = port
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self._cmd: Any = None  # one session per BMC, reused: pyghmi keeps it alive

    def __repr__(self) -> str:
        return f"IpmiPower({self.address}:{self.port}, user={self.username!r})"

    def _command(self) -> Any:
        from pyghmi.ipmi import command

        if self._cmd is not None and not getattr(self._cmd.ipmi_session, "broken", False):
            return self._cmd
        try:
            self._cmd = command.Command(bmc=self.address, userid=self.username,
                                        password=self._password, port=self.port)
        except Exception as exc:  # pyghmi raises plain Exceptions for session failures
            raise PowerError(f"BMC {self.address}:{self.port}: {self._clean(exc)}") from None
        return self._cmd

    def _clean(self, exc: Exception) -> str:
        text = str(exc)
        if text in ("", "None"):  # pyghmi's timeout carries no message
            return "no answer from the BMC (timeout)"
        return text.replace(self._password, "***") if self._password else text

    def _set(self, state: str) -> None:
        cmd = self._command()
        try:
            cmd.set_power(state, wait=False)
        except Exception as exc:
            self._cmd = None
            raise PowerError(f"BMC {self.address}: power {state}: {self._clean(exc)}") from None

    def power_on(self) -> None:
        self._set("on")

    def power_off(self) -> None:
        self._set("off")  # hard off: ULM only powers off hosts it verified empty

    def state(self) -> PowerState:
        cmd = self._command()
        try:
            answer = cmd.get_power().get("powerstate")
        except Exception as exc:
            self._cmd = None
            raise PowerError(f"BMC {self.address}: {self._clean(exc)}") from None
        return {"on": PowerState.ON, "off": PowerState.OFF}.get(str(answer),
                                                               PowerState.UNKNOWN)

