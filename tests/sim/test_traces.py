"""Trace parsing: the real files load; every malformed file names the file and the line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.sim.conftest import GCD, planetlab
from ulm.errors import UlmError
from ulm.sim.traces import load_trace

ROW = "vm1," + ",".join(["10"] * 288)
GCD_HEAD = "vm,metric," + ",".join(f"v{i}" for i in range(288))
GCD_CPU = "vm_1,cpu," + ",".join(["5.5"] * 288)
GCD_MEM = "vm_1,mem," + ",".join(["150"] * 288)


def test_planetlab_day_loads_as_fractions() -> None:
    tr = load_trace(planetlab("20110303"))
    assert tr.kind == "planetlab" and tr.cpu.shape == (1052, 288) and tr.mem is None
    assert tr.vm_names[0] == "146-179_surfsnel_dsl_internl_net_colostate_557"
    assert tr.cpu[0, :3].tolist() == [0.24, 0.34, 0.29]


def test_gcd_day_loads_cpu_and_memory_above_100_percent() -> None:
    tr = load_trace(GCD / "gcd-day02.csv.gz")
    assert tr.kind == "gcd" and tr.cpu.shape == (148, 288)
    assert tr.mem is not None and tr.mem.shape == (148, 288)
    assert tr.mem.max() == pytest.approx(2.1531)  # 215.31 %: accepted, not clipped


def _gz(tmp_path: Path, text: str, name: str = "t.csv.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    return path


@pytest.mark.parametrize(("content", "message"), [
    (ROW + "\nvm2," + ",".join(["1"] * 287), ":2: expected 288 samples, found 287"),
    (ROW + "\nvm2," + ",".join(["1"] * 100 + ["x"] + ["1"] * 187),
     ":2: sample 100 is not a number"),
    ("\n".join([ROW, ROW.replace("vm1", "vm2"), "vm3," + ",".join(["1"] * 289)]),
     ":3: expected 288 samples, found 289"),
    (ROW + "\nvm2," + ",".join(["-1"] + ["1"] * 287), ":2: sample 0 must be a finite"),
    (ROW + "\nvm2," + ",".join(["nan"] + ["1"] * 287), ":2: sample 0 must be a finite"),
    ("," + ",".join(["1"] * 288), ":1: the first column (the VM's name) is empty"),
    (ROW + "\n" + ROW, "VM 'vm1' appears twice"),
    ("", "empty trace file"),
    ("\n\n", "empty trace file"),
    (GCD_HEAD + "\n" + GCD_CPU + "\n" + GCD_CPU, ":3: expected a 'mem' row, found 'cpu'"),
    (GCD_HEAD + "\n" + GCD_CPU, "cpu row but no mem row"),
    (GCD_HEAD + "\n" + GCD_CPU + "\n" + GCD_MEM.replace("vm_1", "vm_2"),
     ":3: the mem row of 'vm_2' follows the cpu row of 'vm_1'"),
    (GCD_HEAD + "\n" + GCD_CPU + "\n" + GCD_MEM.replace(",150", ",1e", 1), ":3: sample 0"),
    ("vm,metric,v0\n", ":1: the header has 1 sample columns"),
])
def test_malformed_trace_names_file_and_line(tmp_path: Path, content: str,
                                             message: str) -> None:
    path = _gz(tmp_path, content)
    with pytest.raises(UlmError) as err:
        load_trace(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_not_gzip_and_empty_and_missing_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv.gz"
    plain.write_text(ROW)
    with pytest.raises(UlmError, match=r"plain\.csv\.gz: not a gzip-compressed trace"):
        load_trace(plain)
    empty = tmp_path / "empty.csv.gz"
    empty.write_bytes(b"")
    with pytest.raises(UlmError, match=r"empty\.csv\.gz: empty trace file"):
        load_trace(empty)
    with pytest.raises(UlmError, match=r"nothere\.csv\.gz: cannot read trace"):
        load_trace(tmp_path / "nothere.csv.gz")
    binary = _gz(tmp_path, "", "bin.csv.gz")
    binary.write_bytes(gzip.compress(b"\xff\xfe\x00"))
    with pytest.raises(UlmError, match=r"bin\.csv\.gz:1: not a text trace"):
        load_trace(binary)
