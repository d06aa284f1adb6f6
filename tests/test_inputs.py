"""Hostile snapshots: every bad number, name, size or shape is refused at the edge with the file
and the key path named; `ulm plan` prints names as text and writes strict JSON."""

from __future__ import annotations

import copy
import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_policy import run_ulm
from ulm.inputs import BadInput
from ulm.jsonout import NonFiniteOutput, dumps
from ulm.model import VM, Host, Resources
from ulm.numbers import MAX_SNAPSHOT_BYTES
from ulm.snapshot import Snapshot, SnapshotProblem
from ulm.snapshot_json import load_snapshot, parse_snapshot

#: A snapshot with every numeric key the format has, so that each can be made hostile.
BASE: dict[str, Any] = {
    "taken_at": 1764061200,
    "power_curves": {"std": [120, 150, 180]},
    "hosts": [
        {"name": f"hv{i}", "cpu": 8, "mem_mib": 16384, "cores": 8, "power": "std",
         "cpu_history": [0.5, 0.6], "empty_since": 1764000000, "on_since": 1763000000,
         "power_cycles_24h": 1}
        for i in range(1, 4)
    ],
    "vms": [
        {"name": "db1", "host": "hv1", "cpu": 4, "mem_mib": 8192, "vcpus": 4,
         "load": {"cpu": 3.6, "mem_mib": 4915}, "history": [3.2, 3.6],
         "last_moved_at": 1764000000},
        {"name": "web1", "host": "hv2", "cpu": 2, "mem_mib": 2048,
         "load": {"cpu": 1.0, "mem_mib": 1000}, "history": [1.0]},
    ],
}


def _numeric_paths(doc: Any, at: str = "") -> list[tuple[str, list[str | int]]]:
    """Every number in `doc`: (key path as BadInput names it, the path as indices)."""
    out: list[tuple[str, list[str | int]]] = []
    items: Any = (doc.items() if isinstance(doc, dict) else enumerate(doc)
                  if isinstance(doc, list) else ())
    for k, v in items:
        here = f"{at}[{k}]" if isinstance(k, int) else (f"{at}.{k}" if at else k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float):
            out.append((here, [k]))
        else:
            out += [(p, [k, *rest]) for p, rest in _numeric_paths(v, here)]
    return out


PATHS = _numeric_paths(BASE)


def _with(value: object, where: list[str | int]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    node: Any = doc
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    return doc


def test_the_base_snapshot_is_valid_and_covers_every_kind_of_number() -> None:
    parse_snapshot(copy.deepcopy(BASE), "s.json")
    keys = {p.split(".")[-1].split("[")[0] for p, _ in PATHS}
    assert {"taken_at", "cpu", "mem_mib", "cores", "cpu_history", "empty_since", "on_since",
            "power_cycles_24h", "vcpus", "history", "last_moved_at", "std"} <= keys


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PATHS),
       st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, -1.0, 10**40]))
def test_any_hostile_number_anywhere_is_refused_naming_its_key(
        where: tuple[str, list[str | int]], bad: float) -> None:
    key, path = where
    with pytest.raises(BadInput) as err:
        parse_snapshot(_with(bad, path), "s.json")
    assert err.value.key == key and err.value.source == "s.json"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "1" + "0" * 5000])
def test_json_literals_that_are_not_numbers_are_refused_from_the_file(
        tmp_path: Path, literal: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(BASE).replace('"taken_at": 1764061200', f'"taken_at": {literal}'))
    with pytest.raises(BadInput) as err:
        load_snapshot(path)
    assert err.value.key == "taken_at"


def test_cli_nan_taken_at_and_infinite_load_exit_2_without_a_plan(tmp_path: Path) -> None:
    for where, bad in ((["taken_at"], math.nan), (["vms", 0, "load", "cpu"], math.inf)):
        path = tmp_path / "s.json"
        path.write_text(json.dumps(_with(bad, where)))
        for fmt in ("json", "table"):
            out = run_ulm("plan", "--snapshot", str(path), "--policy", "seed", "--format", fmt)
            assert out.returncode == 2 and out.stdout == "", out.stdout
            assert out.stderr.startswith(f"error: {path}: ") and "Traceback" not in out.stderr
            assert ("taken_at" if len(where) == 1 else "vms[0].load.cpu") in out.stderr


def test_cli_now_must_be_a_finite_time() -> None:
    for bad in ("nan", "inf", "-1", "1e300"):
        out = run_ulm("plan", "--snapshot", "examples/snapshots/hot-host.json", "--policy",
                      "seed", "--now", bad, "--format", "json")
        assert out.returncode == 2 and out.stdout == "" and out.stderr.startswith("error: --now")


def test_power_curve_with_one_point_names_the_curve() -> None:
    doc = copy.deepcopy(BASE)
    doc["power_curves"] = {"std": [100]}
    with pytest.raises(BadInput) as err:
        parse_snapshot(doc, "s.json")
    assert err.value.key == "power_curves.std"


def test_unknown_power_curve_names_the_host() -> None:
    with pytest.raises(BadInput) as err:
        parse_snapshot(_with("nope", ["hosts", 1, "power"]), "s.json")
    assert (err.value.key, err.value.kind) == ("hosts[1].power", "unknown_curve")


def test_deep_nesting_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    with pytest.raises(BadInput) as err:
        load_snapshot(path)
    assert err.value.kind == "too_deep"
    out = run_ulm("plan", "--snapshot", str(path), "--policy", "seed")
    assert out.returncode == 2 and "nested too deeply" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_file_over_the_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as f:
        f.truncate(MAX_SNAPSHOT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(BadInput) as err:
        load_snapshot(path)
    assert err.value.kind == "too_large"


def test_one_long_history_cannot_blow_up_the_history_table() -> None:
    doc = copy.deepcopy(BASE)
    doc["vms"] = [{"name": f"v{i}", "host": "hv1", "cpu": 1, "mem_mib": 1, "load": {"cpu": 0}}
                  for i in range(7000)]
    doc["vms"][0]["history"] = [1.0] * 10_000
    with pytest.raises(BadInput) as err:
        parse_snapshot(doc, "s.json")
    assert err.value.kind == "too_large"


def test_twin_keys_in_one_object_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(BASE)[:-1] + ', "taken_at": 5}')
    with pytest.raises(BadInput) as err:
        load_snapshot(path)
    assert err.value.kind == "duplicate" and "'taken_at'" in err.value.problem


@pytest.mark.parametrize(("change", "key", "names"), [
    (lambda d: d["hosts"].append(dict(d["hosts"][0])), "hosts[3].name", ("hv1", "hosts[0]")),
    (lambda d: d["vms"].append(dict(d["vms"][0])), "vms[2].name", ("db1", "vms[0]")),
    (lambda d: d["vms"][1].update(host="hv9"), "vms[1].host", ("web1", "hv9")),
    (lambda d: d["vms"][1].update(migrating_to="hv9"), "vms[1].migrating_to", ("web1", "hv9")),
])
def test_integrity_problems_name_the_entries(change: Any, key: str,
                                             names: tuple[str, str]) -> None:
    doc = copy.deepcopy(BASE)
    change(doc)
    with pytest.raises(BadInput) as err:
        parse_snapshot(doc, "s.json")
    assert err.value.key == key
    assert all(n in err.value.problem for n in names), err.value.problem


def test_snapshot_build_reports_twins_as_data() -> None:
    h = Host("hv1", Resources(1, 1))
    with pytest.raises(SnapshotProblem) as err:
        Snapshot.build(0, [h, h], [])
    assert (err.value.key, err.value.kind) == ("hosts[1].name", "duplicate")
    v = VM("v", "hv1", Resources(1, 1), Resources(0, 0))
    with pytest.raises(SnapshotProblem) as err:
        Snapshot.build(0, [h], [v, v])
    assert err.value.key == "vms[1].name"


@pytest.mark.parametrize("name", ["\x1b[31mred", "a\nb", "bell\x07", "rtl\u202eoverride", "",
                                  "x" * 256])
@pytest.mark.parametrize("where", [["vms", 0, "name"], ["hosts", 0, "name"]])
def test_names_must_be_printable_and_short(name: str, where: list[str | int]) -> None:
    with pytest.raises(BadInput) as err:
        parse_snapshot(_with(name, where), "s.json")
    assert err.value.key == f"{where[0]}[0].name"
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)


def test_label_keys_and_values_must_be_printable() -> None:
    doc = copy.deepcopy(BASE)
    doc["vms"][0]["labels"] = {"team": "\x1b]0;pwned\x07"}
    with pytest.raises(BadInput) as err:
        parse_snapshot(doc, "s.json")
    assert err.value.key == "vms[0].labels.team"


def test_plan_table_shows_markup_in_names_as_text(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    doc = json.loads((root / "examples" / "snapshots" / "hot-host.json").read_text())
    moving = next(v for v in doc["vms"] if v["name"] == "db1")
    moving["name"] = "[bold]x[/bold]"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    out = run_ulm("plan", "--snapshot", str(path), "--policy", "seed")
    assert out.returncode == 0, out.stderr
    assert "[bold]x[/bold]: hv1 -> hv2" in out.stdout


def test_render_plan_escapes_control_characters_from_a_stored_plan(
        capsys: pytest.CaptureFixture[str]) -> None:
    from ulm.cli.plan import render_plan
    from ulm.model import Move, Plan

    evil = "\x1b[31mvm[/]"
    render_plan(Plan("snap\x1b[2J", "digest", 0.0, (Move(evil, "a", "b", "because"),),
                     problems=("[red]oops\x07",)))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[31mvm[/]" in out and "[red]oops\\x07" in out


def test_json_output_refuses_non_finite_numbers_naming_them() -> None:
    assert dumps({"a": [1.5, None]}) == '{"a": [1.5, null]}'
    with pytest.raises(NonFiniteOutput) as err:
        dumps({"efficacy": {"peak": [0.5, math.nan]}})
    assert err.value.key == "efficacy.peak[1]"


def test_every_json_dumps_in_ulm_goes_through_the_helper() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "ulm"
    users = [p.relative_to(src).as_posix() for p in src.rglob("*.py")
             if "json.dumps(" in p.read_text() or "json.dump(" in p.read_text()]
    assert users == ["jsonout.py"]


def test_gzip_is_not_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(gzip.compress(b"{}"))
    with pytest.raises(BadInput) as err:
        load_snapshot(path)
    assert err.value.kind == "encoding"
