"""Redfish via sushy: power on, force off, power state of one system of a BMC."""

from __future__ import annotations

from typing import Any

from ulm.drivers.base import PowerState
from ulm.power.ipmi import PowerError


class RedfishPower:
    def __init__(self, url: str, username: str, password: str, system: str = "",
                 verify_tls: bool = True, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self._password = password
        self.system_id = system  # "" = the BMC's only (first) system
        self.verify_tls = verify_tls
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"RedfishPower({self.url}, system={self.system_id or 'first'!r})"

    def _system(self) -> Any:
        import sushy
        from sushy import exceptions

        try:
            root = sushy.Sushy(self.url, username=self.username, password=self._password,
                               verify=self.verify_tls)
            ident = self.system_id or root.get_system_collection().members_identities[0]
            if not ident.startswith("/"):
                ident = f"/redfish/v1/Systems/{ident}"
            return root.get_system(ident)
        except (exceptions.SushyError, IndexError, OSError) as exc:
            raise PowerError(f"Redfish {self.url}: {self._clean(exc)}") from None

    def _clean(self, exc: Exception) -> str:
        text = str(exc) or type(exc).__name__
        return text.replace(self._password, "***") if self._password else text

    def _reset(self, kind: Any) -> None:
        from sushy import exceptions

        system = self._system()
        try:
            system.reset_system(kind)
        except exceptions.SushyError as exc:
            raise PowerError(f"Redfish {self.url}: reset {kind}: {self._clean(exc)}") from None

    def power_on(self) -> None:
        import sushy

        self._reset(sushy.RESET_ON)

    def power_off(self) -> None:
        import sushy

        self._reset(sushy.RESET_FORCE_OFF)  # ULM only powers off hosts it verified empty

    def state(self) -> PowerState:
        raw = self._system().power_state
        state = str(getattr(raw, "value", raw) or "").lower()
        return {"on": PowerState.ON, "off": PowerState.OFF}.get(state, PowerState.UNKNOWN)
