"""`scheduler.nowhere` answers "fits nowhere" from sorted thresholds, and its `_classify`
repeats the scan's filter chain for the filters that do not read the VM's CPU demand. That
is a second reading of the filter table, kept honest in two ways: `test_speed_exact` holds
its counts to the full scan, and this test fails as soon as the table (`filters.FILTERS`)
changes, so a new or reordered filter is taken into `nowhere` (classified, or the shortcut
switched off for it in `nowhere.usable`) before it can miscount an explain row."""

from __future__ import annotations

from ulm.scheduler.filters import FILTERS

#: The chain as `nowhere` knows it: in `_classify` (masked filters, EMPTY, CORES, then
#: MEMORY / SLOTS / memory pressure after CPU), as the two thresholds (CPU, OVERLOAD), as a
#: candidate set (ON, EXCLUDED: `loops.candidates`), or switched off in `usable`
#: (AFFINITY, TOGETHER: groups; HOT: balancing's `max_after`).
KNOWN_TO_NOWHERE = ("ON", "EXCLUDED", "RULE", "CPUMODEL", "BACKOFF", "EMPTY", "CORES", "CPU",
                    "MEMORY", "AFFINITY", "TOGETHER", "SLOTS", "OVERLOAD", "HOT")


def test_the_shortcut_knows_every_filter_of_the_table_in_its_order() -> None:
    assert tuple(f.name for f in FILTERS) == KNOWN_TO_NOWHERE, (
        "the filter table changed: take the change into scheduler/nowhere.py "
        "(_classify, or switch the shortcut off for it in usable), then update this list")
