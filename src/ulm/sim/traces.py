"""Workload traces: PlanetLab CPU traces and the GCD CPU + memory traces, one day per file.

Both formats are gzip-compressed CSV with 288 samples (5 minutes apart) per VM:

* PlanetLab (`planetlab-<date>.csv.gz`): no header; one row per VM: name, then 288 integer CPU
  percentages of the VM's own capacity.
* GCD (`gcd-dayDD.csv.gz`): header `vm,metric,v0,...,v287`; two rows per VM, `cpu` then `mem`,
  percentages with decimals. Memory may exceed 100 % (the VM uses more than its nominal RAM).

Whatever is wrong with a file is reported as a `UlmError` naming the file and the line.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ulm.arrays import F64
from ulm.errors import UlmError

SAMPLES = 288
INTERVAL_S = 300.0


@dataclass(frozen=True, eq=False)
class Trace:
    """One day of load: `cpu` (and `mem`, GCD only) are VMs x 288 fractions of the VM's size."""

    name: str
    kind: str  # "planetlab" | "gcd"
    vm_names: tuple[str, ...]
    cpu: F64
    mem: F64 | None = None

    @property
    def n_vms(self) -> int:
        return len(self.vm_names)

    @property
    def samples(self) -> int:
        return int(self.cpu.shape[1])


def load_trace(path: Path) -> Trace:
    """Reads a PlanetLab or GCD trace; the format is recognised by the first line."""
    text = _read_text(path)
    lines = text.splitlines()
    if not lines or not any(line.strip() for line in lines):
        raise UlmError(f"{path}: empty trace file")
    if lines[0].startswith("vm,metric"):
        return _parse_gcd(path, lines)
    return _parse_planetlab(path, lines)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UlmError(f"{path}: cannot read trace: {exc.strerror or exc}") from None
    if not raw:
        raise UlmError(f"{path}: empty trace file")
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise UlmError(f"{path}: not a gzip-compressed trace ({exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UlmError(f"{path}: not a text trace (byte {exc.start} is not UTF-8)") from None


def _values(path: Path, lineno: int, fields: list[str]) -> list[float]:
    if len(fields) != SAMPLES:
        raise UlmError(f"{path}:{lineno}: expected {SAMPLES} samples, found {len(fields)}")
    out: list[float] = []
    for col, field in enumerate(fields):
        try:
            value = float(field)
        except ValueError:
            raise UlmError(f"{path}:{lineno}: sample {col} is not a number: {field!r}") from None
        if not math.isfinite(value) or value < 0:
            raise UlmError(f"{path}:{lineno}: sample {col} must be a finite percentage >= 0, "
                           f"not {field!r}")
        out.append(value)
    return out


def _parse_planetlab(path: Path, lines: list[str]) -> Trace:
    names: list[str] = []
    rows: list[list[float]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name, *fields = line.split(",")
        if not name:
            raise UlmError(f"{path}:{lineno}: the first column (the VM's name) is empty")
        rows.append(_values(path, lineno, fields))
        names.append(name)
    _unique(path, names)
    return Trace(_stem(path), "planetlab", tuple(names), np.array(rows) / 100.0)


def _parse_gcd(path: Path, lines: list[str]) -> Trace:
    header = lines[0].split(",")
    if len(header) != SAMPLES + 2:
        raise UlmError(f"{path}:1: the header has {len(header) - 2} sample columns, "
                       f"expected {SAMPLES}")
    names: list[str] = []
    cpu: list[list[float]] = []
    mem: list[list[float]] = []
    expect = "cpu"
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < 2:
            raise UlmError(f"{path}:{lineno}: expected vm,metric,{SAMPLES} samples")
        vm, metric, rest = fields[0], fields[1], fields[2:]
        if metric != expect:
            raise UlmError(f"{path}:{lineno}: expected a {expect!r} row, found {metric!r}")
        values = _values(path, lineno, rest)
        if metric == "cpu":
            names.append(vm)
            cpu.append(values)
            expect = "mem"
        else:
            if vm != names[-1]:
                raise UlmError(f"{path}:{lineno}: the mem row of {vm!r} follows the cpu row "
                               f"of {names[-1]!r}")
            mem.append(values)
            expect = "cpu"
    if expect == "mem":
        raise UlmError(f"{path}:{len(lines)}: the last VM has a cpu row but no mem row")
    if not names:
        raise UlmError(f"{path}: the trace has a header but no VMs")
    _unique(path, names)
    return Trace(_stem(path), "gcd", tuple(names), np.array(cpu) / 100.0, np.array(mem) / 100.0)


def _unique(path: Path, names: list[str]) -> None:
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise UlmError(f"{path}: VM {dup!r} appears twice")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name


def chain(traces: list[Trace]) -> Trace:
    """Consecutive days as one trace: the same cluster running on, VMs matched by name.

    A VM missing from a day (its job had not started or had ended) is idle that day: it
    keeps its place and its RAM, and asks for no CPU. Memory use is kept only when every day
    has it (GCD); a VM missing from a GCD day uses no memory then.
    """
    if len(traces) == 1:
        return traces[0]
    names = list(dict.fromkeys(n for t in traces for n in t.vm_names))
    index = {n: i for i, n in enumerate(names)}
    width = sum(t.samples for t in traces)
    cpu = np.zeros((len(names), width))
    with_mem = all(t.mem is not None for t in traces)
    mem = np.zeros((len(names), width)) if with_mem else None
    col = 0
    for t in traces:
        rows = np.array([index[n] for n in t.vm_names], np.int64)
        cpu[rows, col:col + t.samples] = t.cpu
        if mem is not None and t.mem is not None:
            mem[rows, col:col + t.samples] = t.mem
        col += t.samples
    kinds = {t.kind for t in traces}
    return Trace(f"{traces[0].name}..{traces[-1].name}", kinds.pop() if len(kinds) == 1
                 else "mixed", tuple(names), cpu, mem)
