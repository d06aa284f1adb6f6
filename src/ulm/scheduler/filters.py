"""The placement filters, in one ordered table: what each one checks, the reason the explain
table shows when it rejects a host, and its code in the compiled scan.

A host is counted under the first filter that rejects it, so the order here is the order the
scan (`scan._scan`, compiled) applies them — cheapest first — and a test holds the scan's chain
to this table. The codes (`ON`, `CPU`, ...) and the explain texts (`REASONS`) are generated
from it; nothing else lists the filters.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Filter:
    name: str  # the code's name in the compiled scan
    reason: str  # what the explain table and the executor's re-check say
    rule: str  # the rule in one sentence


FILTERS: tuple[Filter, ...] = (
    Filter("ON", "host not on", "the host is ON (CloudSim: any host; the source always)"),
    Filter("EXCLUDED", "source or excluded",
           "not the VM's own host, nor one the question excludes (overloaded, in maintenance)"),
    # The three per-(VM, host) rules, precomputed outside the scan into one mask per class
    # of VMs that share them (`scheduler.masks`): in the scan each is one lookup.
    Filter("RULE", "label rule",
           "the policy's VM-host label rules: a host of every must rule, of no must-not rule"),
    Filter("CPUMODEL", "CPU incompatible",
           "the host's CPU has every feature the VM's CPU definition requires"),
    Filter("BACKOFF", "destination backing off",
           "not a host a move of this VM failed to recently (back-off grows per failure)"),
    Filter("EMPTY", "empty host", "consolidating: the host already runs a VM (none is woken)"),
    Filter("CORES", "too few cores",
           "as many cores as the VM has vCPUs (CloudSim: one core's speed >= the demand)"),
    Filter("CPU", "CPU full", "CPU demand after the move within capacity x overcommit"),
    Filter("MEMORY", "memory full", "memory sizes after the move within memory x overcommit"),
    Filter("AFFINITY", "anti-affinity", "no other VM of one of the VM's anti-affinity groups"),
    Filter("TOGETHER", "keep-together: group mates elsewhere",
           "a host holding a keep-together mate of the VM, if any mate counts (mates on a host "
           "the question excludes, e.g. one being emptied, do not: they leave with the VM)"),
    Filter("SLOTS", "migration slots full",
           "a free migration slot on the source and on the destination"),
    Filter("OVERLOAD", "would overload",
           "not overloaded after the move: memory pressure, the policy's CPU cap after the "
           "move, or its own CPU detector (`limits.exceeds`, as the detectors compare)"),
    Filter("HOT", "would be too hot", "balancing: the host stays below the mean + spread"),
)

CODES: dict[str, int] = {f.name: i for i, f in enumerate(FILTERS)}
REASONS: tuple[str, ...] = tuple(f.reason for f in FILTERS)
N_REASONS = len(FILTERS)
PASS = -1  # no filter rejects the host

# The codes as constants, for the compiled scan (numba freezes module globals at compile time).
ON, EXCLUDED, EMPTY, CORES = CODES["ON"], CODES["EXCLUDED"], CODES["EMPTY"], CODES["CORES"]
RULE, CPUMODEL, BACKOFF = CODES["RULE"], CODES["CPUMODEL"], CODES["BACKOFF"]
MASKED = (RULE, CPUMODEL, BACKOFF)  # the filters the class masks carry, in table order
CPU, MEMORY, AFFINITY = CODES["CPU"], CODES["MEMORY"], CODES["AFFINITY"]
TOGETHER = CODES["TOGETHER"]
SLOTS, OVERLOAD, HOT = CODES["SLOTS"], CODES["OVERLOAD"], CODES["HOT"]
