"""Workload traces: PlanetLab CPU traces and the GCD CPU + memory traces, one day per file.

Both formats are gzip-compressed CSV with 288 samples (5 minutes apart) per VM:

* PlanetLab (`planetlab-<date>.csv.gz`): no header; one row per VM: name, then 288 integer CPU
  percentages of the VM's own capacity.
* GCD (`gcd-dayDD.csv.gz`): header `vm,metric,v0,...,v287`; two rows per VM, `cpu` then `mem`,
  percentages with decimals. Memory may exceed 100 % (the VM uses more than its nominal RAM).
  A day ULM recorded (`ulm export samples`, docs/replay.md) is written in this format.

Whatever is wrong with a file is reported as a `UlmError` naming the file and the line.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain as concat
from pathlib import Path

import numpy as np

from ulm.arrays import F64
from ulm.inputs import BadInput
from ulm.numbers import MAX_TRACE_BYTES, MAX_TRACE_CELLS, MAX_TRACE_MEM_PERCENT

SAMPLES = 288
INTERVAL_S = 300.0
CPU_PERCENT = 100.0  # CPU is a share of the VM's own capacity: never above all of it
_CHUNK = 1 << 20


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


Line = tuple[int, str]


def load_trace(path: Path) -> Trace:
    """Reads a PlanetLab or GCD trace; the format is recognised by the first line."""
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise BadInput(str(path), "empty trace file", kind="empty")
    if first[1].startswith("vm,metric"):
        return _parse_gcd(path, first, lines)
    return _parse_planetlab(path, concat([first], lines))


def _lines(path: Path) -> Iterator[Line]:
    """The file's non-blank lines with their numbers, decompressed a chunk at a time.

    Never more than `MAX_TRACE_BYTES` decompressed: a small gzip can expand a thousandfold.
    Runs of blank lines are skipped a chunk at a time, without a Python step per line.
    """
    source, total, lineno, carry = str(path), 0, 0, b""
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > MAX_TRACE_BYTES:
                    raise BadInput(source, f"decompresses to more than "
                                   f"{MAX_TRACE_BYTES // 2**20} MiB: not a trace ULM reads",
                                   line=lineno + 1, kind="too_large")
                if not carry and not chunk.strip():
                    lineno += chunk.count(b"\n")
                    carry = chunk[chunk.rfind(b"\n") + 1:]
                    continue
                *full, carry = (carry + chunk).split(b"\n")
                for raw in full:
                    lineno += 1
                    if raw.strip():
                        yield lineno, _decode(source, lineno, raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise BadInput(source, f"not a gzip-compressed trace ({exc})", kind="encoding") from None
    except OSError as exc:
        raise BadInput(source, f"cannot read trace: {exc.strerror or exc}",
                       kind="unreadable") from None
    if carry.strip():
        yield lineno + 1, _decode(source, lineno + 1, carry)


def _decode(source: str, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(source, f"not a text trace (byte {exc.start} of the line is not UTF-8)",
                       line=lineno, kind="encoding") from None


def _values(path: Path, lineno: int, fields: list[str], top: float) -> list[float]:
    if len(fields) != SAMPLES:
        raise BadInput(str(path), f"expected {SAMPLES} samples, found {len(fields)}",
                       line=lineno, kind="shape")
    out: list[float] = []
    for col, field in enumerate(fields):
        try:
            value = float(field)
        except ValueError:
            raise BadInput(str(path), f"sample {col} is not a number: {field!r}",
                           line=lineno, kind="not_a_number") from None
        if not (math.isfinite(value) and 0 <= value <= top):
            raise BadInput(str(path), f"sample {col} must be a finite percentage from 0 to "
                           f"{top:g}, not {field!r}", line=lineno, kind="out_of_range")
        out.append(value)
    return out


def _name(path: Path, lineno: int, name: str) -> str:
    if not name:
        raise BadInput(str(path), "the first column (the VM's name) is empty", line=lineno,
                       kind="empty_name")
    if len(name) > 255 or not name.isprintable():
        raise BadInput(str(path), f"the VM's name {name[:60]!r} must be 1 to 255 printable "
                       "characters", line=lineno, kind="bad_name")
    return name


def _parse_planetlab(path: Path, lines: Iterable[Line]) -> Trace:
    names: list[str] = []
    rows: list[list[float]] = []
    for lineno, line in lines:
        name, *fields = line.split(",")
        name = _name(path, lineno, name)
        rows.append(_values(path, lineno, fields, CPU_PERCENT))
        names.append(name)
    _unique(path, names)
    return Trace(_stem(path), "planetlab", tuple(names), np.array(rows) / 100.0)


def _parse_gcd(path: Path, head: Line, lines: Iterator[Line]) -> Trace:
    header = head[1].split(",")
    if len(header) != SAMPLES + 2:
        raise BadInput(str(path), f"the header has {len(header) - 2} sample columns, "
                       f"expected {SAMPLES}", line=head[0], kind="shape")
    names: list[str] = []
    cpu: list[list[float]] = []
    mem: list[list[float]] = []
    expect, lineno = "cpu", head[0]
    for lineno, line in lines:
        fields = line.split(",")
        if len(fields) < 2:
            raise BadInput(str(path), f"expected vm,metric,{SAMPLES} samples", line=lineno,
                           kind="shape")
        vm, metric, rest = _name(path, lineno, fields[0]), fields[1], fields[2:]
        if metric != expect:
            raise BadInput(str(path), f"expected a {expect!r} row, found {metric[:60]!r}",
                           line=lineno, kind="shape")
        values = _values(path, lineno, rest,
                         CPU_PERCENT if metric == "cpu" else MAX_TRACE_MEM_PERCENT)
        if metric == "cpu":
            names.append(vm)
            cpu.append(values)
            expect = "mem"
        else:
            if vm != names[-1]:
                raise BadInput(str(path), f"the mem row of {vm!r} follows the cpu row of "
                               f"{names[-1]!r}", line=lineno, kind="shape")
            mem.append(values)
            expect = "cpu"
    if expect == "mem":
        raise BadInput(str(path), "the last VM has a cpu row but no mem row", line=lineno,
                       kind="shape")
    if not names:
        raise BadInput(str(path), "the trace has a header but no VMs", kind="empty")
    _unique(path, names)
    return Trace(_stem(path), "gcd", tuple(names), np.array(cpu) / 100.0, np.array(mem) / 100.0)


def _unique(path: Path, names: list[str]) -> None:
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise BadInput(str(path), f"VM {dup!r} appears twice", kind="duplicate")


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
    first = traces[0]
    for t in traces[1:]:
        # PlanetLab and GCD days measure different things (CPU only; CPU + memory) on
        # different machines: one run over both would be neither.
        if t.kind != first.kind:
            raise BadInput("--chain", f"{t.name} is a {t.kind} trace, {first.name} a "
                           f"{first.kind} trace: only days of one kind are one cluster",
                           kind="mismatch")
    names = list(dict.fromkeys(n for t in traces for n in t.vm_names))
    index = {n: i for i, n in enumerate(names)}
    width = sum(t.samples for t in traces)
    if len(names) * width > MAX_TRACE_CELLS:
        raise BadInput("--chain", f"{len(names)} VMs x {width} samples exceed "
                       f"{MAX_TRACE_CELLS:,} cells: chain fewer days", kind="too_large")
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
    return Trace(f"{first.name}..{traces[-1].name}", first.kind, tuple(names), cpu, mem)
