"""Shared helpers: the real traces beside the clone (`../shared/traces`), and small cuts of them."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest

from ulm.sim.traces import Trace, load_trace

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
PLANETLAB = TRACES / "planetlab"
GCD = TRACES / "gcd"
DAYS = ("20110303", "20110306", "20110309", "20110322", "20110325", "20110403")


def planetlab(day: str) -> Path:
    path = PLANETLAB / f"planetlab-{day}.csv.gz"
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared/traces beside the clone")
    return path


def cut(trace: Trace, vms: int, samples: int) -> Trace:
    """The first `vms` VMs over the first `samples` samples: a short run on real data."""
    mem = None if trace.mem is None else trace.mem[:vms, :samples]
    return dataclasses.replace(trace, vm_names=trace.vm_names[:vms],
                               cpu=trace.cpu[:vms, :samples], mem=mem)


def write_cut(tmp: Path, day: str, vms: int) -> Path:
    """A real PlanetLab file with only its first `vms` rows, for CLI runs."""
    with gzip.open(planetlab(day), "rt") as f:
        rows = f.read().splitlines()[:vms]
    out = tmp / f"planetlab-{day}-{vms}.csv.gz"
    with gzip.open(out, "wt") as f:
        f.write("\n".join(rows) + "\n")
    return out


@pytest.fixture(scope="session")
def day0303() -> Trace:
    return load_trace(planetlab("20110303"))
