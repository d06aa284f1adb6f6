"""The fault campaign (`benchmarks/faults.py`) on the session lab, with a few faults."""

from __future__ import annotations

import pytest
from benchmarks.faults import Campaign

from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab


def test_a_short_fault_campaign_loses_duplicates_and_hides_nothing(clean_lab: Lab) -> None:
    # the first three kinds: destination powered off, its QEMU killed, its libvirtd killed
    tally = Campaign(clean_lab, seed=7).run(3)
    print(tally.table())
    # a kill that lands after the migration ended is "missed" (a crashed VM, not a fault)
    assert sum(r["injected"] + r["missed"] for r in tally.rows.values()) == 3
    assert tally.clean(), tally.table()
