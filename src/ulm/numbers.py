"""The limits every input is held to, in one place (documented in docs/snapshot.md,
docs/policy.md and docs/simulator.md).

Why limits at all: NaN compares false with everything, so a NaN load passes every `>= 0` check
and comes out of the scheduler as a NaN plan; an infinite or 1e300 capacity overflows sums into
inf and NaN; a huge count makes numpy allocate without end. Each bound is far beyond any real
cluster and far below where the arithmetic breaks.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from ulm.inputs import BadInput

#: Seconds since the epoch (or on the simulator's clock): up to the year 5138. Well inside
#: `datetime`'s range, so that a calendar can still look a day ahead.
MAX_TIME = 1e11
#: CPU in cpu units (cores; the simulator uses MIPS): a billion.
MAX_CPU = 1e9
#: Memory in MiB: 2**40 MiB is one exbibyte.
MAX_MEM_MIB = float(2**40)
#: Watts drawn by one host: a megawatt.
MAX_WATTS = 1e6
#: Cores, vCPUs, power cycles, moves, reserves: a million.
MAX_COUNT = 1_000_000
#: Samples of history per VM or host in a snapshot (a week of one-minute samples).
MAX_HISTORY = 10_080
#: Points of a power curve (SPECpower has 11).
MAX_CURVE_POINTS = 101
#: Hosts in a snapshot or a simulated cluster.
MAX_HOSTS = 100_000
#: VMs in a snapshot.
MAX_VMS = 1_000_000
#: Cells of a snapshot's history table ((VMs + hosts) x the longest history): 512 MiB.
MAX_HISTORY_CELLS = 64 * 2**20
#: Bytes of a snapshot file.
MAX_SNAPSHOT_BYTES = 256 * 2**20
#: Bytes of a policy or configuration file.
MAX_TOML_BYTES = 2**20
#: Bytes of one trace file, after decompression (a real day is about 1 MiB).
MAX_TRACE_BYTES = 64 * 2**20
#: Trace files in one `ulm simulate` (a year of days).
MAX_TRACES = 366
#: Cells of the simulated load (VMs x samples, all days chained): 400 MiB of float64.
MAX_TRACE_CELLS = 50_000_000
#: Memory use in a trace, in % of the VM's nominal RAM (GCD reaches 215 %).
MAX_TRACE_MEM_PERCENT = 1000.0
#: Host boot time in the simulator, seconds.
MAX_BOOT_S = 3600.0
#: Random seeds: what numpy's generators take without complaint.
MAX_SEED = 2**63 - 1

Time = Annotated[float, Field(ge=0, le=MAX_TIME)]
Seconds = Annotated[float, Field(ge=0, le=MAX_TIME)]  # a duration
Cpu = Annotated[float, Field(ge=0, le=MAX_CPU)]
CpuSize = Annotated[float, Field(gt=0, le=MAX_CPU)]
Mem = Annotated[float, Field(ge=0, le=MAX_MEM_MIB)]
MemSize = Annotated[float, Field(gt=0, le=MAX_MEM_MIB)]
Watts = Annotated[float, Field(ge=0, le=MAX_WATTS)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
PositiveCount = Annotated[int, Field(ge=1, le=MAX_COUNT)]


def bounded(option: str, value: float, lo: float, hi: float) -> float:
    """A command-line number, finite and in [lo, hi], or a `BadInput` naming the option.

    click's own ranges let NaN through (every comparison with NaN is false), so CLI numbers
    come here instead.
    """
    if not (_finite(value) and lo <= value <= hi):
        raise BadInput(option, f"must be a finite number from {_show(lo)} to {_show(hi)}, "
                       f"got {_show(value)}", kind="out_of_range")
    return value


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float: finite, and out of every range
        return True


def _show(value: float) -> str:
    if isinstance(value, int) or (_finite(value) and value == int(value) and abs(value) < 1e16):
        text = f"{int(value):,}"
        return text if len(text) <= 30 else text[:27] + "..."
    return repr(value)
#: `ulm simulate --jobs`: processes at once (each holds a trace and a simulated cluster)
MAX_JOBS = 256
