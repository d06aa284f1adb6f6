"""IPMI over LAN (RMCP+, "lanplus") via pyghmi: power on, power off, power state.

Power off is a hard off by default: ULM only powers off hosts it has just verified empty, and
an ACPI soft off can hang on a guest-less host for minutes. `soft=True` asks the OS to shut down
instead. Every call is bounded by `timeout_s`; errors name the host and BMC, never the password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ulm.drivers.base import PowerState
from ulm.power.deadline import Deadline, within
from ulm.power.errors import PasswordSource, PowerError, redact, reveal, where

__all__ = ["IpmiPower", "PowerError"]  # PowerError is also importable from here (lab tests)

T = TypeVar("T")
_STATES = {"on": PowerState.ON, "off": PowerState.OFF}


class IpmiPower:
    def __init__(self, address: str, username: str, password_source: PasswordSource,
                 port: int = 623, timeout_s: float = 10.0, *, soft: bool = False,
                 host: str = "", power_sensor: str = "") -> None:
        self.address = address
        self.port = port
        self.username = username
        self._password_source = password_source
        self.timeout_s = timeout_s
        self.soft = soft
        self.host = host
        self.power_sensor = power_sensor  # "" = the first sensor that reads watts
        self._cmd: Any = None  # one session per BMC, reused: pyghmi keeps it alive
        self._secret = ""  # the last password read, only to redact it from messages

    def __repr__(self) -> str:
        return (f"IpmiPower({where(self.host, self._bmc())}, user={self.username!r}, "
                f"soft={self.soft})")

    def _bmc(self) -> str:
        return f"BMC {self.address}:{self.port}"

    def power_on(self) -> None:
        self._call(lambda c: c.set_power("on", wait=False), "power on")

    def power_off(self) -> None:
        # "shutdown" is the ACPI soft off of IPMI's chassis control; "off" pulls the plug.
        kind = "shutdown" if self.soft else "off"
        self._call(lambda c: c.set_power(kind, wait=False), f"power {kind}")

    def state(self) -> PowerState:
        answer = self._call(lambda c: c.get_power(), "power status")
        return _STATES.get(str(answer.get("powerstate")), PowerState.UNKNOWN)

    def reading_w(self) -> float | None:
        """The BMC's power meter: a sensor in watts (e.g. "Pwr Consumption"), named by
        `power_sensor` or the first one found; None when the BMC has none or it reads nothing."""

        def read(c: Any) -> float | None:
            for r in c.get_sensor_data():
                if r.units != "W" or (self.power_sensor and r.name != self.power_sensor):
                    continue
                if r.value is None or r.unavailable:
                    return None
                return float(r.value)
            return None

        return self._call(read, "power reading")

    def _call(self, op: Callable[[Any], T], what: str) -> T:
        """Logs in if needed, runs `op` on the session; any failure becomes a PowerError."""
        try:
            return within(self.timeout_s, lambda: op(self._command()))
        except Deadline:
            self._cmd = None
            raise PowerError(f"{where(self.host, self._bmc())}: {what}: no answer from the "
                             f"BMC within {self.timeout_s:g} s") from None
        except Exception as exc:  # pyghmi raises IpmiException and plain Exceptions
            self._cmd = None  # a broken session is not reused
            raise PowerError(f"{where(self.host, self._bmc())}: {what}: "
                             f"{self._describe(exc)}") from None

    def _command(self) -> Any:
        from pyghmi.ipmi import command  # late: only IPMI hosts need pyghmi

        if self._cmd is not None and not getattr(self._cmd.ipmi_session, "broken", False):
            return self._cmd
        self._secret = reveal(self._password_source)
        # bytes, not str: pyghmi 1.6.19 files a session under the str credentials but removes
        # it under their encoded bytes, so with str a second session to the same BMC in one
        # process (a reconnect, another driver object) waits forever for a login that is done.
        self._cmd = command.Command(bmc=self.address, userid=self.username.encode(),
                                    password=self._secret.encode(), port=self.port)
        return self._cmd

    def _describe(self, exc: Exception) -> str:
        text = str(exc)
        if text in ("", "None"):  # pyghmi's own timeout carries no message
            return "no answer from the BMC (timeout)"
        return redact(text, self._secret)
