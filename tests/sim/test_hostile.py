"""Hostile input to `ulm simulate`: out-of-range samples, decompression bombs, absurd options
and mixed chains are refused with one line naming the file (and line) or the option."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from tests.sim.conftest import GCD, planetlab
from tests.test_policy import run_ulm
from ulm.inputs import BadInput
from ulm.numbers import MAX_HOSTS, MAX_TRACE_BYTES
from ulm.sim.hosttypes import parse_hosts
from ulm.sim.traces import chain, load_trace

GCD_HEAD = "vm,metric," + ",".join(f"v{i}" for i in range(288))


def _gz(tmp_path: Path, text: str | bytes, name: str = "t.csv.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode() if isinstance(text, str) else text))
    return path


def _row(name: str, value: str, bad_at: int = -1, bad: str = "") -> str:
    return name + "," + ",".join(bad if i == bad_at else value for i in range(288))


@pytest.mark.parametrize("bad", ["250", "1e9", "100.5"])
def test_planetlab_cpu_above_100_percent_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = _gz(tmp_path, _row("vm1", "10") + "\n\n" + _row("vm2", "10", 7, bad))
    with pytest.raises(BadInput) as err:
        load_trace(path)
    assert (err.value.source, err.value.line, err.value.kind) == (str(path), 3, "out_of_range")
    assert "sample 7" in err.value.problem


def test_gcd_cpu_is_capped_at_100_and_memory_at_1000_percent(tmp_path: Path) -> None:
    ok = _gz(tmp_path, "\n".join([GCD_HEAD, _row("vm_1,cpu", "100"), _row("vm_1,mem", "999")]))
    assert load_trace(ok).mem is not None
    for rows, line in (([_row("vm_1,cpu", "100.01"), _row("vm_1,mem", "5")], 2),
                       ([_row("vm_1,cpu", "5"), _row("vm_1,mem", "1000.5")], 3)):
        path = _gz(tmp_path, "\n".join([GCD_HEAD, *rows]), "bad.csv.gz")
        with pytest.raises(BadInput) as err:
            load_trace(path)
        assert (err.value.line, err.value.kind) == (line, "out_of_range")


def test_cli_cpu_out_of_range_exit_2(tmp_path: Path) -> None:
    path = _gz(tmp_path, _row("vm1", "250"))
    out = run_ulm("simulate", "--trace", str(path), "--hosts", "2")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"error: {path}:1: sample 0 must be a finite percentage")


def test_a_newline_bomb_stops_at_the_limit_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        block = b"\n" * (1 << 20)
        for _ in range(MAX_TRACE_BYTES // len(block) + 8):
            f.write(block)
    assert path.stat().st_size < 1 << 20
    began = time.perf_counter()
    with pytest.raises(BadInput) as err:
        load_trace(path)
    assert err.value.kind == "too_large"
    assert time.perf_counter() - began < 10  # it read 64 MiB, not everything (was ~27 s)


def test_line_numbers_count_the_blank_lines_skipped_in_bulk(tmp_path: Path) -> None:
    path = _gz(tmp_path, _row("vm1", "1") + "\n" * 3_000_000 + _row("vm2", "1", 0, "x"))
    with pytest.raises(BadInput) as err:
        load_trace(path)
    assert err.value.line == 3_000_001


def test_control_characters_in_trace_vm_names_are_refused(tmp_path: Path) -> None:
    path = _gz(tmp_path, _row("vm\x1b[31m", "1"))
    with pytest.raises(BadInput) as err:
        load_trace(path)
    assert (err.value.line, err.value.kind) == (1, "bad_name")


@pytest.mark.parametrize("spec", ["99999999999999999999", str(MAX_HOSTS + 1), "1000000",
                                  "g4:99999999999999999999", "g4:60000,g5:60000",
                                  "1" + "0" * 5000])
def test_absurd_host_counts_are_refused(spec: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_hosts(spec)
    assert (err.value.source, err.value.kind) == ("--hosts", "too_large")


def test_the_host_limit_itself_is_accepted() -> None:
    assert parse_hosts(str(MAX_HOSTS)).n == MAX_HOSTS
    assert parse_hosts("g4:2,g5:3").n == 5


@pytest.mark.parametrize(("option", "value"), [
    ("--boot-s", "nan"), ("--boot-s", "inf"), ("--boot-s", "-1"), ("--boot-s", "1e9"),
    ("--seed", "-1"), ("--seed", "99999999999999999999999"),
    ("--hosts", "99999999999999999999"), ("--start", "9999-12-31"),
])
def test_cli_numeric_options_are_finite_and_in_range(option: str, value: str) -> None:
    out = run_ulm("simulate", "--trace", str(planetlab("20110303")), option, value)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"error: {option}") and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1  # one line


def test_chaining_a_planetlab_day_with_a_gcd_day_is_refused() -> None:
    with pytest.raises(BadInput) as err:
        chain([load_trace(planetlab("20110303")), load_trace(GCD / "gcd-day01.csv.gz")])
    assert (err.value.source, err.value.kind) == ("--chain", "mismatch")
    out = run_ulm("simulate", "--trace", str(planetlab("20110303")), "--trace",
                  str(GCD / "gcd-day01.csv.gz"), "--chain", "--hosts", "10")
    assert out.returncode == 2 and "gcd-day01" in out.stderr and "planetlab" in out.stderr


def test_trace_names_are_not_markup_in_the_table(tmp_path: Path) -> None:
    path = _gz(tmp_path, _row("vm1", "10"), "[red]day.csv.gz")
    out = run_ulm("simulate", "--trace", str(path), "--hosts", "2")
    assert out.returncode == 0, out.stderr
    assert "[red]day" in out.stdout
