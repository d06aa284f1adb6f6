"""Redfish via sushy: power on, force off (or graceful shutdown), power state of one system.

The session (and the system resource) is kept between calls: a BMC has few session slots and
the executor asks for the state every half second while it waits.
"""

from __future__ import annotations

from typing import Any

from ulm.drivers.base import PowerState
from ulm.power.errors import PasswordSource, PowerError, redact, reveal, where


class RedfishPower:
    def __init__(self, url: str, username: str, password_source: PasswordSource,
                 system: str = "", verify_tls: bool = True, timeout_s: float = 10.0, *,
                 soft: bool = False, host: str = "") -> None:
        self.url = url.rstrip("/")
        self.username = username
        self._password_source = password_source
        self.system_id = system  # "" = the BMC's first system
        self.verify_tls = verify_tls
        self.timeout_s = timeout_s
        self.soft = soft
        self.host = host
        self._system: Any = None
        self._secret = ""

    def __repr__(self) -> str:
        return f"RedfishPower({where(self.host, self.url)}, system={self.system_id or 'first'!r})"

    def power_on(self) -> None:
        import sushy

        self._reset(sushy.RESET_ON)

    def power_off(self) -> None:
        import sushy

        # ForceOff: ULM only powers off hosts it verified empty (see ipmi.py for why).
        self._reset(sushy.RESET_GRACEFUL_SHUTDOWN if self.soft else sushy.RESET_FORCE_OFF)

    def state(self) -> PowerState:
        def read(system: Any) -> Any:
            system.refresh(force=True)  # a cached resource would report the old state forever
            return system.power_state

        raw = self._call(read, "power state")
        state = str(getattr(raw, "value", raw) or "").lower()
        return {"on": PowerState.ON, "off": PowerState.OFF}.get(state, PowerState.UNKNOWN)

    def _reset(self, kind: Any) -> None:
        name = getattr(kind, "value", kind)  # ResetType.FORCE_OFF -> "ForceOff"
        self._call(lambda system: system.reset_system(kind), f"reset {name}")

    def _call(self, op: Any, what: str) -> Any:
        from sushy import exceptions

        try:
            return op(self._connect())
        except (exceptions.SushyError, IndexError, OSError) as exc:
            self._system = None  # reconnect next time (new session, fresh resource)
            text = redact(str(exc) or type(exc).__name__, self._secret)
            raise PowerError(f"{where(self.host, 'Redfish ' + self.url)}: {what}: {text}"
                             ) from None

    def _connect(self) -> Any:
        import sushy

        if self._system is not None:
            return self._system
        self._secret = reveal(self._password_source)
        # One try per call, bounded by timeout_s: the executor's poll loop is the retry.
        root = sushy.Sushy(self.url, username=self.username, password=self._secret,
                           verify=self.verify_tls, read_timeout=self.timeout_s,
                           connect_timeout=self.timeout_s, server_side_retries=1,
                           server_side_retries_delay=1)
        systems = root.get_system_collection()
        ident = self.system_id or systems.members_identities[0]
        if not ident.startswith("/"):  # an id or a name: the BMC redirects a name to the id
            ident = f"{systems.path.rstrip('/')}/{ident}"
        self._system = root.get_system(ident)
        return self._system
