"""The fault campaign (`benchmarks/faults.py`) on the session lab, with a few faults."""

from __future__ import annotations

import pytest
from benchmarks.faults import Campaign

from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab


def test_a_short_fault_campaign_loses_duplicates_and_hides_nothing(clean_lab: Lab) -> None:
    # Destination powered off, its libvirtd killed, a deadline. Not its QEMU killed: in the
    # instant after the switchover that kill destroys the only copy of the VM (a crash that
    # libvirt reports as a successful migration), which the full benchmark counts and shows.
    tally = Campaign(clean_lab, seed=7).run(3, ("dst_power_off", "dst_libvirtd_kill",
                                                "deadline"))
    print(tally.table())
    # a kill that lands after the migration ended is "missed" (a crashed VM, not a fault)
    assert sum(r["injected"] + r["missed"] for r in tally.rows.values()) == 3
    assert tally.clean(), tally.table()
