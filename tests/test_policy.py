"""Policies: every built-in loads; every kind of bad input gets one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ulm.errors import ConfigError
from ulm.policy import Policy, builtin_names, load_policy, resolve_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.toml"))


def test_examples_are_the_builtins() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"seed", "balance", "power-save"} <= names
    assert names == set(builtin_names())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_policy_loads(path: Path) -> None:
    pol = load_policy(path)
    assert pol.name == path.stem
    assert resolve_policy(path.stem) == pol


def test_seed_is_the_original_design() -> None:
    seed = resolve_policy("seed")
    assert (seed.overload.detector, seed.overload.threshold) == ("threshold", 0.75)
    assert (seed.overload.sustain, seed.overload.window) == (3, 4)
    assert seed.selection.rule == "largest"
    assert seed.placement.strategy == "first-fit"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "bad.toml: policy file is empty"),
        ("this is = = not toml", "bad.toml: not valid TOML: "),
        ("[overload]\nthreshold = 1.7\n",
         "bad.toml: overload.threshold (line 2): Input should be less than or equal to 1, "
         "got 1.7"),
        ("[overload]\nthreshold = 'high'\n",
         "bad.toml: overload.threshold (line 2): Input should be a valid number"),
        ("name = 'x'\n[overload]\nthresold = 0.8\n",
         "bad.toml: overload.thresold (line 3): unknown key"),
        ("[selection]\nrule = 'biggest'\n",
         "bad.toml: selection.rule (line 2): Input should be 'largest', 'mmt', 'mc', 'mu', "
         "'rs' or 'cost', got 'biggest'"),
        ("[gates]\nmax_moves_per_round = -1\n",
         "bad.toml: gates.max_moves_per_round (line 2): Input should be greater than or equal "
         "to 0"),
        ("[overload]\nsustain = 5\nwindow = 4\n",
         "bad.toml: overload (line 1): sustain (5) must not exceed window (4)"),
        ("colour = 'blue'\n", "bad.toml: colour (line 1): unknown key"),
        ("overload = 3\n", "bad.toml: overload (line 1): Input should be a valid dictionary"),
    ],
)
def test_bad_policy_names_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    message = str(err.value).replace(str(tmp_path) + "/", "")
    assert message.startswith(expected), message
    assert "\n" not in message


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown policy 'nope'.*seed"):
        resolve_policy("nope")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: policy file not found"):
        resolve_policy("missing.toml")


def test_digest_changes_with_the_policy() -> None:
    assert Policy().digest == Policy().digest
    assert Policy().digest != resolve_policy("seed").digest


def run_ulm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ulm", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_check_prints_effective_policy_with_defaults() -> None:
    out = run_ulm("policy", "check", "examples/policies/seed.toml")
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout
    assert "[consolidation]" in out.stdout  # a default section the file does not have
    assert "threshold = 0.75" in out.stdout


def test_cli_bad_policy_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[overload]\nthreshold = 1.7\n")
    out = run_ulm("policy", "check", str(bad))
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "p.toml: overload.threshold (line 2)" in out.stderr
