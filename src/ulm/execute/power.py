"""Power actions of one stage: staggered, awaited together, never a busy host powered off."""

from __future__ import annotations

from collections.abc import Sequence

from ulm.drivers.base import Power, PowerState
from ulm.execute.base import Base
from ulm.execute.types import Cause, Fenced, Outcome, Status
from ulm.model import Action, PowerOff, PowerOn


class PowerActions(Base):
    def _power_all(self, plan_id: str, seq: int,
                   actions: Sequence[Action]) -> list[Outcome]:
        """One stage of power actions: issued `power_stagger_s` apart (fifty servers must not
        draw their inrush current at once), then awaited together, each with its own
        deadline — so a morning's wake-up takes one boot, not one boot per host."""
        outcomes: dict[int, Outcome] = {}
        waiting: list[tuple[int, Action, Power, PowerState, int, float]] = []
        for k, action in enumerate(actions):
            if k and waiting:
                self.clock.sleep(self.limits.power_stagger_s)
            started = self.clock.now()
            issued = self._issue(plan_id, seq + k + 1, action)
            if isinstance(issued, Outcome):
                outcomes[k] = issued
            else:
                driver, want, entry = issued
                waiting.append((k, action, driver, want, entry, started))
        while waiting:
            still = []
            for k, action, driver, want, entry, started in waiting:
                if self._reached(driver, want):
                    outcomes[k] = self._close(plan_id, seq + k + 1, Outcome(
                        action, Status.DONE, "", started, self.clock.now()), entry)
                elif self.clock.now() > started + self.limits.power_timeout_s:
                    host = getattr(action, "host", "")
                    detail = (f"{host} did not reach {want.value} within "
                              f"{self.limits.power_timeout_s:g} s")
                    outcomes[k] = self._close(plan_id, seq + k + 1, Outcome(
                        action, Status.FAILED, detail, started, self.clock.now(), Cause.POWER),
                        entry)
                else:
                    still.append((k, action, driver, want, entry, started))
            waiting = still
            if waiting:
                self.clock.sleep(self.limits.poll_s)
        return [outcomes[k] for k in range(len(actions))]

    def _issue(self, plan_id: str, seq: int,
               action: Action) -> Outcome | tuple[Power, PowerState, int]:
        """Checks and sends one power action; an Outcome if it ends here (skipped, failed)."""
        started = self.clock.now()
        host = action.host if isinstance(action, PowerOn | PowerOff) else ""
        driver = self.power.get(host)

        def skip(cause: Cause, why: str) -> Outcome:
            return self._close(plan_id, seq, Outcome(action, Status.SKIPPED, why, started,
                                                     started, cause), None)

        if driver is None:
            return skip(Cause.NO_DRIVER, f"no power driver for {host}")
        if self._stop_at is not None:
            return skip(Cause.STOPPING, "ULM is stopping")
        held = self.holds.conflict(plan_id, action)
        if held:
            return skip(Cause.HELD, held)
        until = self.backoff.power_until(host, started) if isinstance(action, PowerOff) \
            else None
        if until is not None:  # a plan made before the failure (the planner skips it now)
            return skip(Cause.BACKOFF, f"{host}: back-off for {until - started:.0f} s more "
                                       "after a failed power-off")
        if isinstance(action, PowerOff):
            running = self._still_running(host)
            if running:  # the last line of defence: never power off a host that runs a VM
                return skip(Cause.BUSY_HOST, f"{host} still runs {', '.join(running)}")
        try:
            entry = self.journal.intent(plan_id, seq, action)
        except Fenced as exc:  # another controller leads: this host is not switched
            return skip(Cause.FENCED, str(exc))
        try:
            if isinstance(action, PowerOff):
                driver.power_off()
                self._tell(plan_id, seq, action, None)
                return driver, PowerState.OFF, entry
            driver.power_on()
            self._tell(plan_id, seq, action, None)
            return driver, PowerState.ON, entry
        except Exception as exc:
            return self._close(plan_id, seq, Outcome(action, Status.FAILED, str(exc), started,
                                                     self.clock.now(), Cause.POWER), entry)

    def _still_running(self, host: str) -> list[str]:
        """The VMs on `host`, given `empty_wait_s` to go: right after a live migration the
        source may list the departed domain for a moment while libvirt tears it down."""
        deadline = self.clock.now() + self.limits.empty_wait_s
        while True:
            running = self.hv.list_vms(host)
            if not running or self.clock.now() >= deadline:
                return running
            self.clock.sleep(self.limits.poll_s)

    @staticmethod
    def _reached(driver: Power, want: PowerState) -> bool:
        try:
            return driver.state() is want
        except Exception:  # a BMC that does not answer yet: keep asking until the deadline
            return False
