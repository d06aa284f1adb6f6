"""A day of what ULM recorded, as a trace the simulator reads (`ulm export samples`).

The format is the GCD trace format (docs/simulator.md): a header `vm,metric,v0,...,v287`, then
per VM a `cpu` row and a `mem` row of 288 five-minute means, in percent of the VM's own size
(vCPUs, and memory given). Chosen so that `ulm simulate --trace` replays a recorded day exactly
like a published one, and so that a day can be shared without the store. A five-minute bucket
in which a VM has no sample is 0 (the VM was absent or unmeasured): the simulator's rule for a
VM missing from a day.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Mapping

import numpy as np

from ulm.sim.traces import INTERVAL_S, SAMPLES

DAY_S = SAMPLES * INTERVAL_S


def exportable(name: str) -> bool:
    """A name the trace format can hold: no field separator, no line break."""
    return bool(name) and not any(c in name for c in ",\r\n")


def day_trace(start: float, samples: Iterable[tuple[float, str, float | None, float | None]],
              sizes: Mapping[str, tuple[int, float]]) -> bytes:
    """gzip'd GCD-format CSV of [start, start + 24 h): `samples` are (ts, vm, cpu cores busy,
    memory used MiB); `sizes` vm -> (vCPUs, memory MiB). VMs without a size are left out, and
    so are names the CSV cannot hold (see `exportable`)."""
    names = sorted(n for n in sizes if exportable(n))
    index = {n: i for i, n in enumerate(names)}
    total = np.zeros((2, len(names), SAMPLES))
    count = np.zeros((2, len(names), SAMPLES))
    for ts, vm, cpu, mem in samples:
        i = index.get(vm)
        k = int((ts - start) // INTERVAL_S)
        if i is None or not 0 <= k < SAMPLES:
            continue
        vcpus, mib = sizes[vm]
        if cpu is not None and vcpus > 0:
            total[0, i, k] += 100.0 * cpu / vcpus
            count[0, i, k] += 1
        if mem is not None and mib > 0:
            total[1, i, k] += 100.0 * mem / mib
            count[1, i, k] += 1
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    mean[0] = np.clip(mean[0], 0.0, 100.0)  # a VM cannot use more than its vCPUs
    out = io.StringIO()
    out.write("vm,metric," + ",".join(f"v{k}" for k in range(SAMPLES)) + "\n")
    for i, name in enumerate(names):
        for row, metric in ((0, "cpu"), (1, "mem")):
            out.write(f"{name},{metric}," + ",".join(f"{v:.2f}" for v in mean[row, i]) + "\n")
    return gzip.compress(out.getvalue().encode(), mtime=0)
