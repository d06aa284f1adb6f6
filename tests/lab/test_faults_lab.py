"""The fault campaign (`benchmarks/faults.py`) on the session lab, with a few faults."""

from __future__ import annotations

import pytest
from benchmarks.faults import Campaign

from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab


def test_a_short_fault_campaign_loses_duplicates_and_hides_nothing(clean_lab: Lab) -> None:
    # Destination powered off, its libvirtd killed, a deadline; then ULM itself SIGKILLed
    # mid-migration (a new process must recover the journal entry) and SIGTERMed
    # mid-migration (bounded grace, the journal closed). Ground truth is the QEMU processes
    # each host runs, so a VM that moved to a host whose libvirtd then died counts as
    # running (the campaign restarts that libvirtd, as an admin would).
    kinds = ("dst_power_off", "dst_libvirtd_kill", "deadline", "ulm_kill", "sigterm")
    campaign = Campaign(clean_lab, seed=7)
    try:
        tally = campaign.run(len(kinds), kinds)
    finally:
        campaign.remove()
    print(tally.table())
    # a fault that would land after the migration job ended is "missed", not injected
    assert sum(r["injected"] + r["missed"] for r in tally.rows.values()) == len(kinds)
    assert tally.rows["deadline"]["injected"] == 1
    assert tally.clean(), tally.table()
