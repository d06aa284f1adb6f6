"""A standby on the real lab: the leader is killed mid-migration; the standby takes over,
adopts the migration from the journal and sees it to its end: the VM runs exactly once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.lab.helpers import eventually, in_controller
from tests.lab.test_daemon_lab import ULM, configure
from ulm.lab.lab import Lab, exec_prefix
from ulm.store import Store
from ulm.store import schema as t
from ulm.store.lease import holder

pytestmark = pytest.mark.lab


def start(cfg: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    with (cfg.parent / f"{name}.err").open("w") as err:  # the child keeps its descriptor
        return subprocess.Popen([*exec_prefix(), ULM, "run", "-c", str(cfg), "--mode",
                                 "enforce", *args], stdout=subprocess.DEVNULL, stderr=err)


def test_the_standby_finishes_a_killed_leaders_migration_and_starts_none_twice(
        clean_lab: Lab, tmp_path: Path) -> None:
    clean_lab.vm_add("hungry", "labh1", 128, "linux", burn=1)
    clean_lab.set_load("labh1", "90")
    cfg = configure(tmp_path, clean_lab, "bandwidth_mib_s = 4\ndeadline_s = 300")
    leader = start(cfg, "leader")
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    standby = None
    try:
        assert eventually(lambda: store.lock_holder() is not None, timeout=60)
        standby = start(cfg, "standby", "--standby")
        assert eventually(lambda: "standby: " in (tmp_path / "standby.err").read_text(), 60)
        assert eventually(lambda: any(e.state == "started" for e in store.open_entries()),
                          timeout=90), \
            f"the migration never started: {(tmp_path / 'leader.err').read_text()[-2000:]}"
        time.sleep(1.0)
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=30)
        assert eventually(lambda: store.open_entries() == [], timeout=300), \
            (tmp_path / "standby.err").read_text()[-3000:]
        h = holder(store.engine)
        assert h is not None and h.owner.endswith(f":{standby.pid}") and h.epoch == 2
        log = (tmp_path / "standby.err").read_text()
        assert "leading this store (epoch 2" in log and "recovered journal entry" in log
        with store.engine.connect() as c:  # one migration of hungry, by the leader, ever
            rows = c.execute(select(t.journal.c.kind, t.journal.c.epoch)).all()
        assert [tuple(r) for r in rows] == [("move", 1)]
    finally:
        leader.kill()
        if standby is not None:
            standby.send_signal(signal.SIGTERM)
            assert standby.wait(timeout=120) == 0
    where = in_controller(
        "import json, libvirt\n"
        "libvirt.registerErrorHandler(lambda *a: None, None)\n"
        "print(json.dumps([[d.name() for d in libvirt.open(f'qemu+tcp://10.77.0.{i}/system')"
        ".listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)] for i in (1, 2, 3)]))")
    assert [vm for host in where for vm in host] == ["hungry"]  # exactly once
