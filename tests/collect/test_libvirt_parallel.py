"""libvirt collection side by side: a mute host (accepts, never answers) and a dead one cost the
round one deadline, and the hosts that answer are read as usual. Real libvirt client library,
libvirt's test driver for the host that answers, real sockets on loopback for the others."""

from __future__ import annotations

import time

from tests.collect.prom_fixtures import free_port
from ulm.collect.libvirt_source import LibvirtSource
from ulm.drivers.libvirt import LibvirtHypervisor


def test_mute_and_dead_hosts_cost_one_deadline(mute: int) -> None:
    uris = {"ok": "test:///default", "dead": f"qemu+tcp://127.0.0.1:{free_port()}/system",
            **{f"mute{i}": f"qemu+tcp://127.0.0.1:{mute}/system" for i in range(4)}}
    hv = LibvirtHypervisor(uris)
    src = LibvirtSource(hv.conn, list(uris), time.monotonic, timeout_s=2.0)
    try:
        for _ in range(2):  # the second round finds the mute hosts' first reads still stuck
            t0 = time.monotonic()
            col = src.collect(time.time())
            took = time.monotonic() - t0
            by = {h.host: h for h in col.hosts}
            assert took < 3.5  # one 2 s deadline for all four mute hosts, not 4 x 2 s
            assert by["ok"].ok and by["ok"].cores > 0
            assert [v.vm for v in col.vms] == ["test"]  # the answering host's domain
            assert not by["dead"].ok and by["dead"].error
            assert all(not by[f"mute{i}"].ok for i in range(4))
            assert "no answer" in by["mute0"].error
    finally:
        src.close()
