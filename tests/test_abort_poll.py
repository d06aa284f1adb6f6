"""Polling a migration ULM aborted is a flag read, not a libvirt call: libvirt's cancel has the
source QEMU's monitor to itself, and the executor may look every `ABORT_POLL_S` (issue 10:
the deadline's overshoot)."""

from __future__ import annotations

from typing import Any

import pytest

from ulm.drivers.base import MigrationState
from ulm.drivers.libvirt import LibvirtHypervisor, _Job
from ulm.execute.migrate import ABORT_POLL_S, OVERSHOOT_S


def test_an_aborted_job_is_polled_without_asking_libvirt(monkeypatch: pytest.MonkeyPatch) -> None:
    hv = LibvirtHypervisor({"t1": "test:///default", "t2": "test:///default"})
    try:
        job = _Job("test", "t1", "t2")
        job_id = hv._add(job)
        asked: list[str] = []
        real = hv.conn

        def counted(host: str) -> Any:
            asked.append(host)
            return real(host)

        monkeypatch.setattr(hv, "conn", counted)
        assert hv.poll(job_id).state is MigrationState.RUNNING
        assert asked == ["t1"]  # running: its progress is read from the source
        job.aborted = True
        for _ in range(20):
            assert hv.poll(job_id).state is MigrationState.RUNNING
        assert asked == ["t1"]  # cancelling: nothing more asked
        job.done, job.error = True, "operation aborted: migration out job: canceled by client"
        status = hv.poll(job_id)
        assert status.state is MigrationState.ABORTED and "canceled" in status.error
    finally:
        hv.close()
    assert ABORT_POLL_S * 10 <= OVERSHOOT_S  # looked at often within the promised bound
