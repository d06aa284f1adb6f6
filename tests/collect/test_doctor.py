"""`ulm doctor` against real endpoints on loopback: a real munin-node, libvirt's test driver,
a refused port and a mute one (accepts, never answers)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.collect.test_munin import free_port, munin  # noqa: F401  (the real munin-node)

ULM = str(Path(sys.executable).parent / "ulm")


def _config(tmp_path: Path, hosts: str) -> Path:
    store = tmp_path / "ulm.db"
    cfg = tmp_path / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{store}"\n[collect]\ntimeout_s = 2\n{hosts}')
    subprocess.run([ULM, "store", "init", "--config", str(cfg)], check=True,
                   capture_output=True, timeout=120)
    return cfg


def _doctor(cfg: Path) -> tuple[int, dict[tuple[str, str], dict[str, object]], float]:
    t0 = time.monotonic()
    out = subprocess.run([ULM, "doctor", "--config", str(cfg), "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    rows = {(c["component"], c["target"]): c for c in json.loads(out.stdout)}
    return out.returncode, rows, took


def test_everything_answers(tmp_path: Path, munin: str) -> None:  # noqa: F811
    cfg = _config(tmp_path, '[[hosts]]\nname = "h1"\nlibvirt_uri = "test:///default"\n'
                            f'munin = "{munin}"\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, rows, _ = _doctor(cfg)
    assert rc == 0, rows
    assert rows[("store", "store")]["ok"] and "sqlite" in str(rows[("store", "store")]["detail"])
    assert "running domain" in str(rows[("libvirt", "h1")]["detail"])
    assert rows[("munin", "h1")]["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # read-only: nothing written


def test_a_dead_and_a_mute_host_are_named_and_cost_one_deadline(tmp_path: Path,
                                                                mute: int) -> None:
    dead = free_port()
    cfg = _config(tmp_path,
                  '[[hosts]]\nname = "ok"\nlibvirt_uri = "test:///default"\n'
                  f'[[hosts]]\nname = "dead"\nlibvirt_uri = "qemu+tcp://127.0.0.1:{dead}/system"\n'
                  f'munin = "127.0.0.1:{dead}"\n'
                  f'[[hosts]]\nname = "mute1"\nlibvirt_uri = "test:///default"\n'
                  f'munin = "127.0.0.1:{mute}"\n'
                  f'[[hosts]]\nname = "mute2"\nlibvirt_uri = "test:///default"\n'
                  f'munin = "127.0.0.1:{mute}"\n')
    rc, rows, took = _doctor(cfg)
    assert rc == 1
    assert rows[("libvirt", "ok")]["ok"]
    assert not rows[("libvirt", "dead")]["ok"] and not rows[("munin", "dead")]["ok"]
    assert not rows[("munin", "mute1")]["ok"] and not rows[("munin", "mute2")]["ok"]
    # the two mute endpoints were asked side by side: one deadline (2 s), not two, plus start-up
    assert float(rows[("munin", "mute1")]["seconds"]) < 4
    assert took < 30
